"""``initialize``: apply an ``init_cfg`` to a module.

The semantics are MMEngine's, so a migrated ``init_cfg`` touches the same tensors:

* ``init_cfg`` is a dict or a list of dicts, applied in order; where two touch the
  same tensor, the later one wins.
* Each dict is built from ``WEIGHT_INITIALIZERS`` (``type`` is a registered name or
  the class) and called on the whole module; ``layer`` selects the submodules it
  fills (class name or a direct base's name, anywhere in the subtree).
* ``override`` (a dict or a list of dicts) then re-initialises the child named
  ``name``: every ``weight``/``bias`` inside it, whatever the class. An override with
  only ``name`` reuses the outer dict (without ``layer``); one with more keys must
  carry its own ``type``.

Beyond MMEngine: a dict with neither ``layer`` nor ``override`` initialises nothing
and says so with an :class:`InitCfgWarning` (MMEngine stays silent); a dotted
``name`` (``'backbone.conv1'``) reaches a nested child; a missing ``name`` lists the
children there are.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

from torch import nn

from camshaft.init import _initializers  # noqa: F401  (registers the built-in types)
from camshaft.init._registry import WEIGHT_INITIALIZERS
from camshaft.registry import ConfigError

__all__ = ["InitCfgWarning", "initialize"]


class InitCfgWarning(UserWarning):
    """An ``init_cfg`` entry that is valid but initialises nothing."""


def initialize(module: nn.Module, init_cfg: Mapping[str, Any] | list[Mapping[str, Any]]) -> None:
    """Initialise ``module``'s weights as ``init_cfg`` describes.

    Args:
        module: The module to initialise; ``layer`` is matched against it and every
            submodule, ``override`` names are looked up on it.
        init_cfg: One initializer config or a list of them, applied in order. Keys:
            ``type`` (required), the initializer's own arguments, ``layer`` and
            ``override``. Not modified.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``, or ``init_cfg`` (or one of
            its entries) is not a dict / list of dicts.
        camshaft.registry.RegistryError: a ``type`` is not registered (the message
            lists the closest registered names).
        camshaft.registry.BuildError: an initializer rejected its arguments.
        camshaft.registry.ConfigError: an ``override`` has no ``name``, names a child
            that does not exist, or gives arguments without a ``type``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
        >>> initialize(
        ...     net,
        ...     [
        ...         dict(type="Kaiming", layer="Conv2d"),
        ...         dict(type="Constant", val=0, layer="Conv2d", override=dict(name="2")),
        ...     ],
        ... )
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    if isinstance(init_cfg, Mapping):
        cfgs: list[Any] = [init_cfg]
        labels = ["init_cfg"]
    elif isinstance(init_cfg, list):
        cfgs = list(init_cfg)
        labels = [f"init_cfg[{index}]" for index in range(len(cfgs))]
    else:
        raise TypeError(
            f"`init_cfg` must be a dict or a list of dicts, got {type(init_cfg).__name__}: "
            f"{init_cfg!r}"
        )
    for label, cfg in zip(labels, cfgs, strict=True):
        if not isinstance(cfg, Mapping):
            raise TypeError(f"`{label}` must be a dict, got {type(cfg).__name__}: {cfg!r}")
        _apply(module, cfg, label)


def _apply(module: nn.Module, cfg: Mapping[str, Any], label: str) -> None:
    """Apply one ``init_cfg`` dict: its ``layer`` matching, then its overrides."""
    own = copy.deepcopy(dict(cfg))
    override = own.pop("override", None)
    initializer = _build(own, label)
    if not own.get("layer") and override is None and not _whole_module(initializer):
        warnings.warn(
            f"`{label}` = {dict(cfg)!r} has neither `layer` nor `override`, so it initialises "
            "nothing. Add layer='<class name>' to pick submodules by class, or "
            "override=dict(name='<child>') to pick a child.",
            InitCfgWarning,
            stacklevel=3,
        )
        return
    initializer(module)
    if override is None:
        return
    inherited = {key: value for key, value in own.items() if key != "layer"}
    if isinstance(override, list):
        for index, entry in enumerate(override):
            _apply_override(module, entry, inherited, f"{label}['override'][{index}]")
    else:
        _apply_override(module, override, inherited, f"{label}['override']")


def _apply_override(
    module: nn.Module, override: object, inherited: dict[str, Any], where: str
) -> None:
    """Initialise the child ``override['name']`` of ``module`` as a whole."""
    if not isinstance(override, Mapping):
        raise TypeError(
            f"`{where}` must be a dict with a 'name' key, got {type(override).__name__}: "
            f"{override!r}"
        )
    cfg = dict(override)
    name = cfg.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"`{where}` = {dict(override)!r} needs `name`, the child module to "
            "initialise (e.g. name='conv2'), got "
            f"{name!r}"
        )
    target = _child(module, name, where)
    if not cfg:
        cfg = copy.deepcopy(inherited)
    elif "type" not in cfg:
        raise ConfigError(
            f"`{where}` = {dict(override)!r} gives {sorted(cfg)} but no `type`. Add the "
            "initializer, e.g. type='Xavier', or give only `name` to reuse the outer "
            "cfg's type and arguments."
        )
    initializer = _build(cfg, where)
    init_module = getattr(initializer, "init_module", None)
    if _whole_module(initializer) or init_module is None:
        initializer(target)
        return
    for sub in target.modules():
        init_module(sub)


def _child(module: nn.Module, name: str, where: str) -> nn.Module:
    """Resolve ``name`` (dots go deeper) to a submodule of ``module``."""
    current = module
    for depth, part in enumerate(name.split(".")):
        found = getattr(current, part, None) if part else None
        if isinstance(found, nn.Module):
            current = found
            continue
        owner = type(current).__name__
        path = ".".join(name.split(".")[:depth]) or "the module"
        children = [child for child, _ in current.named_children()]
        if found is None:
            problem = f"{path} ({owner}) has no child {part!r}"
        else:
            problem = f"{path}.{part} is a {type(found).__name__}, not an nn.Module"
        raise ConfigError(
            f"`{where}` has name={name!r}, but {problem}. Its children are: {children}"
        )
    return current


def _build(cfg: dict[str, Any], label: str) -> Any:
    """Build an initializer, adding which ``init_cfg`` entry it came from to errors."""
    try:
        return WEIGHT_INITIALIZERS.build(cfg)
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"while building `{label}` = {cfg!r}")
        raise


def _whole_module(initializer: object) -> bool:
    return getattr(initializer, "matches_whole_module", False) is True
