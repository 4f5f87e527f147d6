"""camshaft.runner.optim — optimizer wrappers, their builders, and parameter schedulers.

* :class:`OptimWrapper` hides backward, step, zero_grad, gradient accumulation and
  clipping behind ``update_params(loss)``; :class:`AmpOptimWrapper` adds mixed
  precision (float16 with a loss scaler, or bfloat16, on GPU or CPU);
  :class:`OptimWrapperDict` holds one wrapper per sub-model (GANs).
* :func:`build_optim_wrapper` turns the runner's ``optim_wrapper`` config into them,
  through :class:`DefaultOptimWrapperConstructor` (``paramwise_cfg``). torch's
  optimizers are found in ``OPTIMIZERS`` by class name without being registered at
  import time.
* The parameter schedulers (``LinearLR``, ``CosineAnnealingLR``, ...) come from
  :mod:`camshaft.runner.optim.scheduler` and are re-exported here.

Example:
    >>> import torch
    >>> from camshaft.runner.optim import build_optim_wrapper
    >>> model = torch.nn.Linear(2, 1)
    >>> optim_wrapper = build_optim_wrapper(
    ...     model, dict(optimizer=dict(type='AdamW', lr=1e-3), clip_grad=dict(max_norm=1.0)))
    >>> optim_wrapper.update_params(model(torch.ones(3, 2)).pow(2).mean())
"""

from camshaft.runner.optim import scheduler as scheduler
from camshaft.runner.optim._amp_optim_wrapper import AmpOptimWrapper
from camshaft.runner.optim._builder import build_optim_wrapper
from camshaft.runner.optim._constructor import DefaultOptimWrapperConstructor
from camshaft.runner.optim._nonfinite import NonFiniteGuard, NonFiniteLossError
from camshaft.runner.optim._optim_wrapper import OptimWrapper
from camshaft.runner.optim._optim_wrapper_dict import OptimWrapperDict
from camshaft.runner.optim.scheduler import *  # noqa: F403

__all__ = [
    "OptimWrapper",
    "AmpOptimWrapper",
    "OptimWrapperDict",
    "DefaultOptimWrapperConstructor",
    "build_optim_wrapper",
    "NonFiniteGuard",
    "NonFiniteLossError",
    *scheduler.__all__,
]
