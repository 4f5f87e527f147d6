"""Building the Runner's parts from what the user gave: objects or config dicts.

Every function accepts the built object (returned as is) or its config, checks it,
and names the Runner argument in its errors.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from camshaft.registry import ConfigError

__all__ = [
    "DEFAULT_HOOKS",
    "check_triples",
    "build_model",
    "merge_default_hooks",
    "build_evaluator",
    "build_loop",
    "scale_lr",
    "install_guards",
]

DEFAULT_HOOKS: dict[str, dict[str, Any]] = {
    "runtime_info": {"type": "RuntimeInfoHook"},
    "timer": {"type": "IterTimerHook"},
    "sampler_seed": {"type": "DistSamplerSeedHook"},
    "logger": {"type": "LoggerHook"},
    "param_scheduler": {"type": "ParamSchedulerHook"},
    "checkpoint": {"type": "CheckpointHook", "interval": 1},
}
"""The hooks every Runner has unless ``default_hooks`` removes them (name → config)."""

_TRIPLES = {
    "train": ("train_dataloader", "train_cfg", "optim_wrapper"),
    "val": ("val_dataloader", "val_cfg", "val_evaluator"),
    "test": ("test_dataloader", "test_cfg", "test_evaluator"),
}


def check_triples(given: Mapping[str, Any]) -> None:
    """Each of train/val/test must be configured completely or not at all.

    Args:
        given: The Runner arguments by name.

    Raises:
        ConfigError: some but not all of a triple are given; the message names the
            missing ones.
    """
    for mode, names in _TRIPLES.items():
        present = [name for name in names if given.get(name) is not None]
        if present and len(present) != len(names):
            missing = [name for name in names if name not in present]
            raise ConfigError(
                f"{mode} is half configured: got {', '.join(present)} but not "
                f"{', '.join(missing)}. Give all of {', '.join(names)} to {mode}, or none."
            )


def build_model(model: nn.Module | Mapping[str, Any], data_preprocessor: Any = None) -> nn.Module:
    """Return ``model``, built from the ``MODELS`` registry when it is a config.

    Raises:
        TypeError: ``model`` is neither an ``nn.Module`` nor a config dict.
    """
    if isinstance(model, nn.Module):
        if data_preprocessor is not None:
            raise ConfigError(
                "`data_preprocessor` can only be given with a model config dict; the "
                "model was given built, so pass the preprocessor to its constructor"
            )
        return model
    if not isinstance(model, Mapping):
        raise TypeError(
            "`model` must be an nn.Module or a config dict, got "
            f"{type(model).__name__}: {model!r:.200}"
        )
    from camshaft.model import MODELS

    cfg = dict(model)
    if data_preprocessor is not None:
        cfg.setdefault("data_preprocessor", data_preprocessor)
    built = MODELS.build(cfg)
    if not isinstance(built, nn.Module):
        raise TypeError(
            f"`model` config {model!r:.200} built a {type(built).__name__}, not an nn.Module"
        )
    return built


def merge_default_hooks(default_hooks: Mapping[str, Any] | None) -> list[Any]:
    """Apply the user's ``default_hooks`` to :data:`DEFAULT_HOOKS`.

    A dict without ``type`` updates the default of that name (``dict(checkpoint=
    dict(interval=2))``); one with a ``type`` or a built hook replaces it; ``None``
    removes it; a new name adds a hook.

    Returns:
        Hook configs and instances, in default order then the added ones.

    Raises:
        TypeError: ``default_hooks`` is not a dict, or an entry has a bad type.
        ConfigError: a new name comes without a ``type``.
    """
    merged: dict[str, Any] = {name: dict(cfg) for name, cfg in DEFAULT_HOOKS.items()}
    if default_hooks is None:
        return list(merged.values())
    if not isinstance(default_hooks, Mapping):
        raise TypeError(
            "`default_hooks` must be a dict of name -> hook config, got "
            f"{type(default_hooks).__name__}"
        )
    for name, value in default_hooks.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, Mapping):
            if "type" in value or name not in merged:
                if "type" not in value:
                    raise ConfigError(
                        f"`default_hooks[{name!r}]` = {dict(value)!r} needs a 'type': {name!r} "
                        f"is not a default hook (those are {', '.join(DEFAULT_HOOKS)})"
                    )
                merged[name] = copy.copy(dict(value))
            else:
                merged[name] = {**merged[name], **value}
        elif hasattr(value, "get_triggered_stages"):
            merged[name] = value
        else:
            raise TypeError(
                f"`default_hooks[{name!r}]` must be a hook, a config dict or None, got "
                f"{type(value).__name__}: {value!r:.200}"
            )
    return list(merged.values())


def build_evaluator(evaluator: Any) -> Any:
    """An ``Evaluator`` from an evaluator, a metric, a config, a list, or ``dict(metrics=...)``.

    Raises:
        TypeError: the value cannot describe metrics.
    """
    from camshaft.runner._registry import EVALUATOR
    from camshaft.runner.evaluator import Evaluator

    if isinstance(evaluator, Evaluator):
        return evaluator
    if isinstance(evaluator, Mapping):
        kind = evaluator.get("type")
        if kind is not None and _is_evaluator_type(kind, EVALUATOR):
            return EVALUATOR.build(dict(evaluator))
        if "metrics" in evaluator and kind is None:
            return Evaluator(evaluator["metrics"])
    if evaluator is None or isinstance(evaluator, str | bytes):
        raise TypeError(
            f"the evaluator must be an Evaluator, a metric, a metric config or a list of "
            f"them, got {evaluator!r}"
        )
    return Evaluator(evaluator)


def _is_evaluator_type(kind: Any, registry: Any) -> bool:
    from camshaft.runner.evaluator import Evaluator

    if isinstance(kind, type):
        return issubclass(kind, Evaluator)
    if isinstance(kind, str):
        try:
            return registry.get(kind) is not None
        except Exception:
            return False
    return False


def build_loop(
    runner: Any, cfg: Mapping[str, Any] | Any, mode: str, dataloader: Any, evaluator: Any = None
) -> Any:
    """Build the ``mode`` loop from ``train_cfg``/``val_cfg``/``test_cfg``.

    ``train_cfg`` picks :class:`EpochBasedTrainLoop` (``by_epoch=True``, the
    default) or :class:`IterBasedTrainLoop` (``by_epoch=False``) unless it names a
    ``type``; ``val_cfg``/``test_cfg`` build :class:`ValLoop`/:class:`TestLoop`.

    Raises:
        TypeError: ``cfg`` is not a dict (or a built loop).
        ConfigError: ``by_epoch`` is given together with ``type``, or the epoch
            count is missing.
    """
    from camshaft.runner._registry import LOOPS
    from camshaft.runner.loops import BaseLoop

    if isinstance(cfg, BaseLoop):
        return cfg
    if not isinstance(cfg, Mapping):
        raise TypeError(f"`{mode}_cfg` must be a dict, got {type(cfg).__name__}: {cfg!r:.200}")
    cfg = dict(cfg)
    # Built here, not inside the loop, so their errors reach the user unwrapped.
    defaults: dict[str, Any] = {"runner": runner, "dataloader": runner.build_dataloader(dataloader)}
    if mode == "train":
        by_epoch = cfg.pop("by_epoch", None)
        if "type" in cfg:
            if by_epoch is not None:
                raise ConfigError(
                    f"`train_cfg` gives both type={cfg['type']!r} and by_epoch={by_epoch!r}; "
                    "the loop type decides, so drop by_epoch"
                )
        else:
            by_epoch = True if by_epoch is None else by_epoch
            cfg["type"] = "EpochBasedTrainLoop" if by_epoch else "IterBasedTrainLoop"
            needed = "max_epochs" if by_epoch else "max_iters"
            if needed not in cfg:
                raise ConfigError(
                    f"`train_cfg` = {cfg!r} has by_epoch={by_epoch} but no {needed!r}; "
                    f"add e.g. {needed}=10"
                )
    else:
        cfg.setdefault("type", "ValLoop" if mode == "val" else "TestLoop")
        defaults["evaluator"] = build_evaluator(evaluator)
    return LOOPS.build(cfg, default_args=defaults)


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (None → empty)."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | Mapping):
        return list(value)
    return [value]


def optim_wrappers(optim_wrapper: Any) -> list[Any]:
    """The single wrappers inside an OptimWrapper or an OptimWrapperDict (none for None)."""
    if optim_wrapper is None:
        return []
    if hasattr(optim_wrapper, "update_params") and not hasattr(optim_wrapper, "items"):
        return [optim_wrapper]
    return list(optim_wrapper.values())


def unique_name(base: str, exists: Any) -> str:
    """``base``, or ``base_1``, ``base_2``... when ``exists(name)`` says it is taken."""
    name, suffix = base, 1
    while exists(name):
        name = f"{base}_{suffix}"
        suffix += 1
    return name


def plain(value: Any) -> Any:
    """A Config/ConfigDict value as plain dicts and lists (objects kept)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def build_visualizer(visualizer: Any, name: str, log_dir: str) -> Any:
    """A Visualizer from an instance or a config; the default writes scalars locally."""
    from camshaft.runner.visualization import Visualizer

    if isinstance(visualizer, Visualizer):
        return visualizer
    if visualizer is None:
        cfg: dict[str, Any] = {"vis_backends": [{"type": "LocalVisBackend"}]}
    elif isinstance(visualizer, Mapping):
        cfg = copy.copy(dict(visualizer))
        kind = cfg.pop("type", "Visualizer")
        if kind not in ("Visualizer", Visualizer):
            raise ConfigError(
                f"`visualizer` type must be 'Visualizer', got {kind!r}; configure outputs "
                "through vis_backends=[dict(type='LocalVisBackend'), ...]"
            )
        cfg.pop("name", None)
    else:
        raise TypeError(
            f"`visualizer` must be a Visualizer or a config dict, got {type(visualizer).__name__}"
        )
    cfg.setdefault("save_dir", os.path.join(log_dir, "vis_data"))
    unique = unique_name(name, Visualizer.check_instance_created)
    return Visualizer.get_instance(unique, **cfg)


def scale_lr(runner: Any, auto_scale_lr: Mapping[str, Any] | None) -> None:
    """Apply ``auto_scale_lr``: scale every group's lr by world size x batch size / base.

    Raises:
        ConfigError: ``auto_scale_lr`` is enabled without ``base_batch_size``.
    """
    cfg = dict(auto_scale_lr or {})
    if not cfg.get("enable", False):
        return
    if "base_batch_size" not in cfg:
        raise ConfigError(f"`auto_scale_lr` = {cfg!r} needs 'base_batch_size'")
    batch_size = runner.train_loop.dataloader.batch_size or 1
    ratio = runner.world_size * batch_size / cfg["base_batch_size"]
    for wrapper in optim_wrappers(runner._optim_wrapper_if_built()):
        for group in wrapper.param_groups:
            group["lr"] = group["lr"] * ratio
    runner.logger.info("auto_scale_lr: learning rates scaled by %.4g", ratio)


def install_guards(runner: Any) -> None:
    """Give every optim wrapper the run's non-finite loss guard (``cfg.nonfinite``)."""
    from camshaft.runner.optim import NonFiniteGuard

    policy = runner.cfg.get("nonfinite", "error")
    for wrapper in optim_wrappers(runner._optim_wrapper_if_built()):
        wrapper.loss_guard = NonFiniteGuard.create(
            policy,
            terms_source=runner.unwrapped_model,
            position=runner._position,
            distributed=runner.world_size > 1,
            on_skip=runner.logger.warning,
        )
