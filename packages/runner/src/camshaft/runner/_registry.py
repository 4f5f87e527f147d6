"""The runner's registries: everything a config can name above the model.

Each registry lists the modules that register into it as ``locations``; they are
imported the first time a name is missing, so ``import camshaft.runner`` stays cheap
and a config can still name any built-in class. torch's own optimizers are found in
:data:`OPTIMIZERS` the same way, without being registered at import time.
"""

from __future__ import annotations

from typing import Any

from camshaft.registry import Registry

__all__ = [
    "DATASETS",
    "DATA_SAMPLERS",
    "EVALUATOR",
    "HOOKS",
    "LOG_PROCESSORS",
    "LOOPS",
    "METRICS",
    "OPTIMIZERS",
    "OPTIM_WRAPPERS",
    "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS",
    "VISBACKENDS",
]

OPTIMIZERS = Registry(
    "optimizer", scope="camshaft", locations=["camshaft.runner.optim._torch_optimizers"]
)
"""Optimizers by name: every ``torch.optim.Optimizer`` subclass, plus yours."""

OPTIM_WRAPPERS = Registry(
    "optimizer wrapper", scope="camshaft", locations=["camshaft.runner.optim"]
)
"""``OptimWrapper``, ``AmpOptimWrapper`` and your own wrappers."""

OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    "optimizer wrapper constructor", scope="camshaft", locations=["camshaft.runner.optim"]
)
"""Builders of optimizer wrappers from ``optim_wrapper`` configs (``paramwise_cfg``)."""


def _build_param_scheduler(cfg: Any, registry: Registry, default_args: Any = None) -> Any:
    # Imported on first build: the scheduler package imports this module.
    from camshaft.runner.optim.scheduler import build_scheduler_from_cfg

    return build_scheduler_from_cfg(cfg, registry, default_args)


PARAM_SCHEDULERS = Registry(
    "parameter scheduler",
    build_func=_build_param_scheduler,
    scope="camshaft",
    locations=["camshaft.runner.optim"],
)
"""Learning-rate and momentum schedulers."""

METRICS = Registry("metric", scope="camshaft", locations=["camshaft.runner.evaluator"])
"""Metrics (``BaseMetric`` subclasses)."""

EVALUATOR = Registry("evaluator", scope="camshaft", locations=["camshaft.runner.evaluator"])
"""Evaluators that run a list of metrics."""

LOG_PROCESSORS = Registry("log processor", scope="camshaft", locations=["camshaft.runner.logging"])
"""Turn the message hub into log lines."""

HOOKS = Registry("hook", scope="camshaft", locations=["camshaft.runner.hooks"])
"""Hooks the runner calls at each point of the loop."""

LOOPS = Registry("loop", scope="camshaft", locations=["camshaft.runner.loops"])
"""Training, validation and test loops."""

DATASETS = Registry("dataset", scope="camshaft")
"""Datasets that dataloader configs can name."""

DATA_SAMPLERS = Registry("data sampler", scope="camshaft", locations=["camshaft.runner.data"])
"""Samplers that dataloader configs can name."""

VISBACKENDS = Registry(
    "visualization backend", scope="camshaft", locations=["camshaft.runner.visualization"]
)
"""Where scalars and images are written (local files, TensorBoard, ...)."""
