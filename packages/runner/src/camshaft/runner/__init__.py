"""camshaft.runner — the engine: optimizer wrappers, schedulers, evaluator, logging.

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
    from camshaft.runner.evaluator import BaseMetric, DumpResults, Evaluator
    from camshaft.runner.logging import LogProcessor, MessageHub, MMLogger, print_log
    from camshaft.runner.optim import (
        AmpOptimWrapper,
        DefaultOptimWrapperConstructor,
        OptimWrapper,
        OptimWrapperDict,
        build_optim_wrapper,
        build_param_schedulers,
    )

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
