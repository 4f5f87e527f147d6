"""Checking a module's ``init_cfg`` and applying it in the order ``init_weights`` needs.

``BaseModule`` applies its ``init_cfg`` in two parts: every entry that is not a
checkpoint first, then (after the children's own ``init_weights``) the entries whose
initializer is a :class:`~camshaft.init.PretrainedInit`, so that loaded weights win over
everything. This module validates the shape of an ``init_cfg`` (early, when the module
is built, and again when ``init_weights`` runs, since ``init_cfg`` is a public,
assignable attribute), tells the two parts apart and applies a part entry by entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from camshaft.init import WEIGHT_INITIALIZERS, PretrainedInit, initialize

__all__ = [
    "InitCfg",
    "LabelledCfg",
    "apply_cfgs",
    "check_init_cfg",
    "is_pretrained",
    "split_cfgs",
]

InitCfg = dict[str, Any] | list[dict[str, Any]]
"""What ``init_cfg`` accepts: one initializer config or a list of them."""

LabelledCfg = tuple[str, Mapping[str, Any]]
"""An ``init_cfg`` entry with the label errors use for it, e.g. ``'init_cfg[1]'``."""


def check_init_cfg(init_cfg: object, where: str) -> list[LabelledCfg]:
    """Validate the shape of an ``init_cfg`` and label its entries.

    Args:
        init_cfg: The value to check: None, a dict, or a list of dicts.
        where: How errors name it, e.g. ``'init_cfg'`` or ``'ToyNet.init_cfg'``.

    Returns:
        ``(label, entry)`` pairs in order; empty for None.

    Raises:
        TypeError: ``init_cfg`` is none of the accepted types, or a list entry is not
            a dict.
    """
    if init_cfg is None:
        return []
    if isinstance(init_cfg, Mapping):
        return [(where, init_cfg)]
    if isinstance(init_cfg, list):
        labelled: list[LabelledCfg] = []
        for index, entry in enumerate(init_cfg):
            label = f"{where}[{index}]"
            if not isinstance(entry, Mapping):
                raise TypeError(
                    f"`{label}` must be a dict such as dict(type='Kaiming', layer='Conv2d'), "
                    f"got {type(entry).__name__}: {entry!r}"
                )
            labelled.append((label, entry))
        return labelled
    raise TypeError(
        f"`{where}` must be a dict, a list of dicts or None, got {type(init_cfg).__name__}: "
        f"{init_cfg!r}. Example: init_cfg=dict(type='Kaiming', layer='Conv2d'), or "
        "init_cfg=[dict(type='Kaiming', layer='Conv2d'), dict(type='Constant', val=1, "
        "layer='BatchNorm2d')]"
    )


def is_pretrained(cfg: Mapping[str, Any]) -> bool:
    """Whether ``cfg`` builds a :class:`~camshaft.init.PretrainedInit` (or a subclass).

    An unknown ``type`` counts as not pretrained; applying it raises the registry's
    error, which lists the closest registered names.
    """
    kind = cfg.get("type")
    if isinstance(kind, str):
        kind = WEIGHT_INITIALIZERS.get(kind)
    return isinstance(kind, type) and issubclass(kind, PretrainedInit)


def split_cfgs(cfgs: list[LabelledCfg]) -> tuple[list[LabelledCfg], list[LabelledCfg]]:
    """``cfgs`` as (entries applied first, checkpoint entries applied last)."""
    first = [item for item in cfgs if not is_pretrained(item[1])]
    last = [item for item in cfgs if is_pretrained(item[1])]
    return first, last


def apply_cfgs(module: nn.Module, cfgs: list[LabelledCfg]) -> None:
    """Apply each entry with :func:`camshaft.init.initialize`, in order.

    Errors raised by an entry get a note naming it (Python >= 3.11 shows notes).
    """
    for label, cfg in cfgs:
        try:
            initialize(module, cfg)
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"while applying `{label}` = {dict(cfg)!r}")
            raise
