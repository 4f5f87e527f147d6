"""``build_optim_wrapper``: the runner's ``optim_wrapper`` argument, turned into a wrapper.

``cfg`` may be, checked in this order:

1. an :class:`OptimWrapper` or :class:`OptimWrapperDict` — returned as it is;
2. a config with an already built optimizer, ``dict(optimizer=torch.optim.SGD(...),
   ...)`` — the wrapper is built around it;
3. a config with ``optimizer``, ``type`` or ``constructor`` at its top level — one
   wrapper, built by the constructor named by ``constructor`` (default
   ``'DefaultOptimWrapperConstructor'``) with ``paramwise_cfg``;
4. otherwise a dict of such configs (or built wrappers), one per sub-model, keyed by
   the sub-model's attribute name: ``dict(generator=dict(optimizer=...),
   discriminator=dict(optimizer=...))`` — each is built for
   ``model.<name>`` alone, and the result is an :class:`OptimWrapperDict`. (MMEngine
   needs a custom constructor for this; a ``constructor`` key at the top level still
   hands the whole config to that constructor, as case 3.)

The caller's config is never modified: constructors receive a deep copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from camshaft.runner._registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from camshaft.runner.optim._optim_wrapper import OptimWrapper
from camshaft.runner.optim._optim_wrapper_dict import OptimWrapperDict

__all__ = ["build_optim_wrapper"]

_SINGLE_KEYS = ("optimizer", "type", "constructor")


def build_optim_wrapper(
    model: nn.Module, cfg: Mapping[str, Any] | OptimWrapper | OptimWrapperDict
) -> OptimWrapper | OptimWrapperDict:
    """Build the optimizer wrapper(s) that ``cfg`` describes for ``model``.

    Args:
        model: The model to optimise (a DDP-style wrapper is unwrapped through
            ``.module``).
        cfg: A wrapper, a wrapper config, or a dict of wrapper configs by sub-model
            name; see the module docstring. Not modified.

    Returns:
        An :class:`OptimWrapper` (or the registered wrapper type the config names),
        or an :class:`OptimWrapperDict` for several sub-models.

    Raises:
        TypeError: ``cfg`` or an entry of it has the wrong type, or ``model`` is not
            an ``nn.Module``.
        ValueError: ``cfg`` is empty, combines a built optimizer with
            ``paramwise_cfg``/``constructor``, or names a sub-model that ``model``
            lacks.
        RegistryError: an optimizer, wrapper or constructor ``type`` is not
            registered (the message lists the closest names).
        BuildError: an optimizer or wrapper rejected its arguments.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> optim_wrapper = build_optim_wrapper(model, dict(
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
        ...     clip_grad=dict(max_norm=1.0), accumulative_counts=2))
        >>> type(optim_wrapper).__name__, optim_wrapper.get_lr()
        ('OptimWrapper', {'lr': [0.01]})
    """
    if isinstance(cfg, (OptimWrapper, OptimWrapperDict)):
        return cfg
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}.")
    if not isinstance(cfg, Mapping):
        raise TypeError(
            f"`optim_wrapper` must be a dict (config), an OptimWrapper or an "
            f"OptimWrapperDict, got {type(cfg).__name__}: {cfg!r:.200}. Example: "
            "optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01))."
        )
    if not cfg:
        raise ValueError(
            "`optim_wrapper` is an empty dict; give at least the optimizer: "
            "optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01))."
        )
    if any(key in cfg for key in _SINGLE_KEYS):
        return _build_one(model, cfg, "optim_wrapper")
    return _build_per_submodule(model, cfg)


def _build_one(model: nn.Module, cfg: Mapping[str, Any], where: str) -> OptimWrapper:
    optimizer = cfg.get("optimizer")
    if isinstance(optimizer, torch.optim.Optimizer):
        extra = [key for key in ("constructor", "paramwise_cfg") if key in cfg]
        if extra:
            raise ValueError(
                f"`{where}` has an optimizer that is already built, so {extra} cannot be "
                "applied to it; give the optimizer as a config instead, "
                "optimizer=dict(type='SGD', lr=...)."
            )
        wrapper_cfg = dict(cfg)
        wrapper_cfg.setdefault("type", "OptimWrapper")
        built: OptimWrapper = OPTIM_WRAPPERS.build(wrapper_cfg)
        return built
    wrapper_cfg = copy.deepcopy(dict(cfg))
    constructor_type = wrapper_cfg.pop("constructor", "DefaultOptimWrapperConstructor")
    paramwise_cfg = wrapper_cfg.pop("paramwise_cfg", None)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        {"type": constructor_type, "optim_wrapper_cfg": wrapper_cfg, "paramwise_cfg": paramwise_cfg}
    )
    built = constructor(model)
    return built


def _build_per_submodule(model: nn.Module, cfg: Mapping[str, Any]) -> OptimWrapperDict:
    inner = getattr(model, "module", None)
    target = inner if isinstance(inner, nn.Module) else model
    children = [name for name, _ in target.named_children()]
    wrappers: dict[str, OptimWrapper] = {}
    for name, sub_cfg in cfg.items():
        if isinstance(sub_cfg, OptimWrapper):
            wrappers[str(name)] = sub_cfg
            continue
        if not isinstance(sub_cfg, Mapping) or not any(key in sub_cfg for key in _SINGLE_KEYS):
            raise TypeError(
                f"`optim_wrapper[{name!r}]` must be a wrapper config with an 'optimizer' (or a "
                f"built OptimWrapper), got {sub_cfg!r:.200}. A config with no 'optimizer', "
                "'type' or 'constructor' at its top level is read as one config per "
                "sub-model, e.g. dict(generator=dict(optimizer=...), "
                "discriminator=dict(optimizer=...)); for a single optimizer write "
                "optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01))."
            )
        submodule = getattr(target, name, None) if isinstance(name, str) else None
        if not isinstance(submodule, nn.Module):
            raise ValueError(
                f"`optim_wrapper` has an entry {name!r} for a sub-model, but "
                f"{type(target).__name__} has no sub-module of that name; its children are "
                f"{children}."
            )
        wrappers[name] = _build_one(submodule, sub_cfg, f"optim_wrapper[{name!r}]")
    return OptimWrapperDict(**wrappers)
