"""camshaft.runner — the engine: the Runner, loops, hooks, optimizer wrappers, schedulers, logging.

Subpackages hold the parts (``camshaft.runner.optim``, ``.evaluator``, ``.logging``);
the everyday names are re-exported here, as MMEngine users expect. Re-exports are
resolved on first use (PEP 562), so ``import camshaft.runner`` costs only its
registries, and a subpackage is imported when one of its names is first asked for.

Example:
    >>> import torch
    >>> from camshaft.runner import build_optim_wrapper
    >>> model = torch.nn.Linear(4, 2)
    >>> wrapper = build_optim_wrapper(
    ...     model, dict(optimizer=dict(type='SGD', lr=0.1), accumulative_counts=2))
    >>> wrapper.get_lr()
    {'lr': [0.1]}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from camshaft.runner._registry import (
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    VISBACKENDS,
)

if TYPE_CHECKING:
    from camshaft.runner._runner import Runner
    from camshaft.runner.data import DefaultSampler, InfiniteSampler, build_dataloader
    from camshaft.runner.evaluator import BaseMetric, DumpResults, Evaluator
    from camshaft.runner.hooks import (
        CheckpointHook,
        DistSamplerSeedHook,
        EarlyStoppingHook,
        EMAHook,
        EmptyCacheHook,
        Hook,
        IterTimerHook,
        LoggerHook,
        ParamSchedulerHook,
        Priority,
        RuntimeInfoHook,
        SyncBuffersHook,
    )
    from camshaft.runner.logging import LogProcessor, MessageHub, MMLogger, print_log
    from camshaft.runner.loops import (
        BaseLoop,
        EpochBasedTrainLoop,
        IterBasedTrainLoop,
        TestLoop,
        ValLoop,
    )
    from camshaft.runner.optim import (
        AmpOptimWrapper,
        DefaultOptimWrapperConstructor,
        NonFiniteLossError,
        OptimWrapper,
        OptimWrapperDict,
        build_optim_wrapper,
        build_param_schedulers,
    )
    from camshaft.runner.visualization import LocalVisBackend, TensorboardVisBackend, Visualizer

__version__ = "0.1.0"

_LAZY = {
    "OptimWrapper": "camshaft.runner.optim",
    "AmpOptimWrapper": "camshaft.runner.optim",
    "OptimWrapperDict": "camshaft.runner.optim",
    "DefaultOptimWrapperConstructor": "camshaft.runner.optim",
    "build_optim_wrapper": "camshaft.runner.optim",
    "build_param_schedulers": "camshaft.runner.optim",
    "BaseMetric": "camshaft.runner.evaluator",
    "Evaluator": "camshaft.runner.evaluator",
    "DumpResults": "camshaft.runner.evaluator",
    "MessageHub": "camshaft.runner.logging",
    "MMLogger": "camshaft.runner.logging",
    "print_log": "camshaft.runner.logging",
    "LogProcessor": "camshaft.runner.logging",
    "Runner": "camshaft.runner._runner",
    "BaseLoop": "camshaft.runner.loops",
    "EpochBasedTrainLoop": "camshaft.runner.loops",
    "IterBasedTrainLoop": "camshaft.runner.loops",
    "ValLoop": "camshaft.runner.loops",
    "TestLoop": "camshaft.runner.loops",
    "NonFiniteLossError": "camshaft.runner.optim",
    "Visualizer": "camshaft.runner.visualization",
    "LocalVisBackend": "camshaft.runner.visualization",
    "TensorboardVisBackend": "camshaft.runner.visualization",
    "DefaultSampler": "camshaft.runner.data",
    "InfiniteSampler": "camshaft.runner.data",
    "build_dataloader": "camshaft.runner.data",
    "Hook": "camshaft.runner.hooks",
    "Priority": "camshaft.runner.hooks",
    **dict.fromkeys(
        (
            "RuntimeInfoHook",
            "IterTimerHook",
            "DistSamplerSeedHook",
            "LoggerHook",
            "ParamSchedulerHook",
            "CheckpointHook",
            "EMAHook",
            "EarlyStoppingHook",
            "EmptyCacheHook",
            "SyncBuffersHook",
        ),
        "camshaft.runner.hooks",
    ),
}

__all__ = [
    "__version__",
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
    "OptimWrapper",
    "AmpOptimWrapper",
    "OptimWrapperDict",
    "DefaultOptimWrapperConstructor",
    "build_optim_wrapper",
    "build_param_schedulers",
    "BaseMetric",
    "Evaluator",
    "DumpResults",
    "MessageHub",
    "MMLogger",
    "print_log",
    "LogProcessor",
    "Runner",
    "BaseLoop",
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "ValLoop",
    "TestLoop",
    "NonFiniteLossError",
    "Visualizer",
    "LocalVisBackend",
    "TensorboardVisBackend",
    "DefaultSampler",
    "InfiniteSampler",
    "build_dataloader",
    "Hook",
    "Priority",
    "RuntimeInfoHook",
    "IterTimerHook",
    "DistSamplerSeedHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "CheckpointHook",
    "EMAHook",
    "EarlyStoppingHook",
    "EmptyCacheHook",
    "SyncBuffersHook",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'camshaft.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
