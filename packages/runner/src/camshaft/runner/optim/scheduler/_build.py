"""Build the ``param_scheduler`` of a config: a list of schedulers chained by their windows.

What it promises:

* A config is a dict, a list of dicts (built schedulers may stand among them), or
  None. The caller's dicts are never modified.
* ``convert_to_iter_based=True`` in a dict builds an epoch-based schedule stepped
  every iteration, through the class's ``build_iter_from_epoch`` (``epoch_length``
  must be known: the runner passes ``len(train_dataloader)``).
* A dict without ``end`` ends with training: ``max_epochs`` for an epoch-based
  scheduler, ``max_iters`` for an iteration-based one, when the caller gives them
  (MMEngine's runner does the same).
* For an ``OptimWrapperDict`` the result is a dict of lists, one per wrapper: the
  config is either one list used for every wrapper, or a dict keyed by wrapper name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from camshaft.registry import Registry, build_from_cfg
from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._base import _ParamScheduler

__all__ = ["build_param_schedulers", "build_scheduler_from_cfg"]


def build_scheduler_from_cfg(
    cfg: Mapping[str, Any],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build one scheduler from its config, honouring ``convert_to_iter_based``.

    It has the signature of a registry's ``build_func``, so a registry built with
    ``Registry('parameter scheduler', build_func=build_scheduler_from_cfg)`` gives
    ``registry.build(cfg, default_args=dict(optimizer=..., epoch_length=...))`` the
    same meaning as in MMEngine. ``epoch_length`` in ``default_args`` is used only
    for a conversion and is never passed to a constructor.

    Args:
        cfg: ``dict(type=..., **arguments)``, optionally with
            ``convert_to_iter_based=True``. Not modified.
        registry: Where ``type`` names are looked up (``PARAM_SCHEDULERS``).
        default_args: Arguments the cfg does not set, usually ``optimizer`` and
            ``epoch_length``. Not modified.

    Returns:
        The scheduler.

    Raises:
        ValueError: ``convert_to_iter_based=True`` without an ``epoch_length``.
        TypeError: ``convert_to_iter_based`` is not a bool, or ``type`` has no
            ``build_iter_from_epoch``.
        camshaft.registry.BuildError: the cfg is malformed or the constructor
            raised (its error is chained).
        camshaft.registry.RegistryError: ``type`` is not registered.
    """
    if not isinstance(cfg, Mapping) or (
        default_args is not None and not isinstance(default_args, Mapping)
    ):
        return build_from_cfg(cfg, registry, default_args)  # raises the registry's error
    kwargs = dict(cfg)
    defaults = dict(default_args or {})
    default_epoch_length = defaults.pop("epoch_length", None)
    convert = kwargs.pop("convert_to_iter_based", False)
    if not isinstance(convert, bool):
        raise TypeError(f"`convert_to_iter_based` must be a bool, got {convert!r} in {dict(cfg)}")
    if not convert:
        return build_from_cfg(kwargs, registry, defaults)
    epoch_length = kwargs.pop("epoch_length", default_epoch_length)
    scheduler_type = kwargs.get("type", defaults.get("type"))
    if epoch_length is None:
        raise ValueError(
            f"{scheduler_type!r} has convert_to_iter_based=True, which needs `epoch_length` "
            "(iterations per epoch); pass epoch_length=len(train_dataloader)"
        )
    target = registry.get(scheduler_type) if isinstance(scheduler_type, str) else scheduler_type
    if target is None or not callable(target):
        return build_from_cfg(kwargs, registry, defaults)  # raises the registry's error
    build_iter = getattr(target, "build_iter_from_epoch", None)
    if build_iter is None:
        raise TypeError(
            f"convert_to_iter_based=True needs a parameter scheduler with "
            f"build_iter_from_epoch, got {scheduler_type!r}"
        )
    kwargs["type"] = build_iter
    kwargs["epoch_length"] = epoch_length
    return build_from_cfg(kwargs, registry, defaults)


def build_param_schedulers(
    optimizer: Any,
    cfgs: Any,
    *,
    epoch_length: int | None = None,
    max_epochs: int | None = None,
    max_iters: int | None = None,
) -> list[_ParamScheduler] | dict[str, list[_ParamScheduler]]:
    """Build the schedulers of a ``param_scheduler`` config, in order.

    The runner steps them in this order; each acts only inside its own
    ``[begin, end)`` window, so a warm-up followed by a decay is simply two entries.

    Args:
        optimizer: A torch optimizer or an ``OptimWrapper``; or an ``OptimWrapperDict``
            (anything with ``items()`` and ``keys()``), which gives one list per wrapper.
        cfgs: A scheduler config dict, a list of them (built schedulers allowed), or
            None. With an ``OptimWrapperDict``, also a dict keyed by wrapper names.
        epoch_length: Iterations per epoch, for ``convert_to_iter_based=True``.
        max_epochs: The default ``end`` of epoch-based schedulers.
        max_iters: The default ``end`` of iteration-based schedulers.

    Returns:
        A list of schedulers, or a dict of lists keyed by wrapper name.

    Raises:
        TypeError: an entry is neither a dict nor a scheduler, or built schedulers
            are shared between several wrappers.
        ValueError: a per-wrapper config names a wrapper that does not exist.

    Example:
        >>> import torch
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> schedulers = build_param_schedulers(sgd, [
        ...     dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
        ...     dict(type='CosineAnnealingLR', by_epoch=True, begin=1, convert_to_iter_based=True),
        ... ], epoch_length=50, max_epochs=10)
        >>> [type(s).__name__ for s in schedulers], schedulers[1].end
        (['LinearLR', 'CosineAnnealingLR'], 500)
    """
    if not _is_wrapper_dict(optimizer):
        return _build_list(optimizer, cfgs, epoch_length, max_epochs, max_iters)
    wrappers = dict(optimizer.items())
    if isinstance(cfgs, Mapping) and "type" not in cfgs:
        unknown = sorted(str(name) for name in cfgs if name not in wrappers)
        if unknown:
            raise ValueError(
                f"param_scheduler names optimizer wrappers {unknown} that the "
                f"OptimWrapperDict does not have; its wrappers are {sorted(wrappers)}"
            )
        per_wrapper = {name: cfgs.get(name) for name in wrappers}
    else:
        if len(wrappers) > 1 and any(isinstance(c, _ParamScheduler) for c in _as_list(cfgs)):
            raise TypeError(
                "a built scheduler belongs to one optimizer and cannot serve every wrapper of "
                "an OptimWrapperDict; give configs, or a dict of lists keyed by wrapper name"
            )
        per_wrapper = dict.fromkeys(wrappers, cfgs)
    return {
        name: _build_list(wrapper, per_wrapper[name], epoch_length, max_epochs, max_iters)
        for name, wrapper in wrappers.items()
    }


def _build_list(
    optimizer: Any,
    cfgs: Any,
    epoch_length: int | None,
    max_epochs: int | None,
    max_iters: int | None,
) -> list[_ParamScheduler]:
    schedulers: list[_ParamScheduler] = []
    for index, item in enumerate(_as_list(cfgs)):
        if isinstance(item, _ParamScheduler):
            schedulers.append(item)
            continue
        if not isinstance(item, Mapping):
            raise TypeError(
                f"param_scheduler[{index}] must be a config dict or a built scheduler, "
                f"got {type(item).__name__}: {item!r}"
            )
        cfg = dict(item)
        if "end" not in cfg:
            default_end = max_epochs if cfg.get("by_epoch", True) else max_iters
            if default_end is not None:
                cfg["end"] = default_end
        default_args = {"optimizer": optimizer, "epoch_length": epoch_length}
        schedulers.append(build_scheduler_from_cfg(cfg, PARAM_SCHEDULERS, default_args))
    return schedulers


def _as_list(cfgs: Any) -> list[Any]:
    if cfgs is None:
        return []
    if isinstance(cfgs, (Mapping, _ParamScheduler)):
        return [cfgs]
    if isinstance(cfgs, Sequence) and not isinstance(cfgs, (str, bytes)):
        return list(cfgs)
    raise TypeError(
        "`param_scheduler` must be a config dict, a list of them, or None, "
        f"got {type(cfgs).__name__}: {cfgs!r}"
    )


def _is_wrapper_dict(optimizer: object) -> bool:
    if isinstance(optimizer, Mapping):
        return True
    return callable(getattr(optimizer, "items", None)) and callable(
        getattr(optimizer, "keys", None)
    )
