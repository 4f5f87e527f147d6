"""Validation of LogProcessor's ``custom_cfg``: every mistake named at construction.

Each entry is ``dict(data_src=..., method_name=..., window_size=..., log_name=...)``:
``data_src`` names a scalar (without the ``'train/'`` prefix), ``method_name`` a
registered :class:`~camshaft.runner.logging.HistoryBuffer` statistic, ``window_size``
a positive int, ``'epoch'`` (only when logging by epoch) or ``'global'`` (not with
``'current'``), and ``log_name`` the name to log under (``data_src`` when absent; no
two entries may share one). The caller's list is copied, never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from camshaft.runner.logging._history_buffer import HistoryBuffer

__all__ = ["check_custom_cfg"]

_WINDOW_WORDS = ("epoch", "global")
_CFG_KEYS = ("data_src", "log_name", "method_name", "window_size")


def check_custom_cfg(
    custom_cfg: Sequence[Mapping[str, Any]] | None, by_epoch: bool
) -> list[dict[str, Any]]:
    """Validate ``custom_cfg`` and return a copy (the caller's list is never changed)."""
    if custom_cfg is None:
        return []
    if isinstance(custom_cfg, (str, Mapping)) or not isinstance(custom_cfg, Sequence):
        raise ValueError(f"`custom_cfg` must be a list of dicts, got {type(custom_cfg).__name__}")
    checked: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, raw in enumerate(custom_cfg):
        where = f"custom_cfg[{index}]"
        if not isinstance(raw, Mapping):
            raise ValueError(f"`{where}` must be a dict, got {type(raw).__name__}")
        cfg = dict(raw)
        unknown = sorted(set(cfg) - set(_CFG_KEYS))
        if unknown:
            raise ValueError(f"`{where}` has unknown keys {unknown}; allowed: {list(_CFG_KEYS)}")
        if not isinstance(cfg.get("data_src"), str):
            raise ValueError(
                f"`{where}['data_src']` must name a scalar, got {cfg.get('data_src')!r}"
            )
        method = cfg.get("method_name")
        if method not in HistoryBuffer._statistics_methods:
            raise ValueError(
                f"`{where}['method_name']` must be one of "
                f"{sorted(HistoryBuffer._statistics_methods)}, got {method!r}"
            )
        window = cfg.get("window_size")
        if "window_size" in cfg:
            if method == "current":
                raise ValueError(f"`{where}`: method_name='current' takes no window_size")
            valid_int = isinstance(window, int) and not isinstance(window, bool) and window > 0
            if not valid_int and window not in _WINDOW_WORDS:
                raise ValueError(
                    f"`{where}['window_size']` must be a positive int, 'epoch' or "
                    f"'global', got {window!r}"
                )
            if window == "epoch" and not by_epoch:
                raise ValueError(f"`{where}['window_size']` cannot be 'epoch' when by_epoch=False")
        name = cfg.get("log_name", cfg["data_src"])
        if name in names:
            raise ValueError(
                f"`{where}` logs under {name!r}, which an earlier entry already uses; "
                "give it a distinct 'log_name'"
            )
        names.add(name)
        checked.append(cfg)
    return checked
