"""Parameter schedulers: learning rate and momentum over the course of training.

Every scheduler changes one param-group entry (``lr``, ``momentum``) of an optimizer
or ``OptimWrapper`` each time ``step()`` is called, and only inside its window
``[begin, end)`` of global steps; ``by_epoch`` tells the runner whether a step is an
epoch or an iteration. Schedulers are chained by listing them: each computes from
the current value, so a warm-up followed by a cosine decay is two entries whose
windows meet. The names, arguments and defaults are MMEngine's, and every class is
registered in ``PARAM_SCHEDULERS``.

Example:
    >>> import torch
    >>> from camshaft.runner.optim.scheduler import build_param_schedulers
    >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> schedulers = build_param_schedulers(sgd, [
    ...     dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3),
    ...     dict(type='CosineAnnealingLR', by_epoch=False, begin=3, end=10),
    ... ])
    >>> lrs = []
    >>> for _ in range(10):
    ...     lrs.append(round(sgd.param_groups[0]['lr'], 4))
    ...     for scheduler in schedulers:
    ...         scheduler.step()
    >>> lrs
    [0.05, 0.075, 0.1, 0.1, 0.095, 0.0812, 0.0611, 0.0389, 0.0188, 0.005]
"""

from camshaft.runner.optim.scheduler._annealing import (
    CosineAnnealingParamScheduler,
    CosineRestartParamScheduler,
    PolyParamScheduler,
)
from camshaft.runner.optim.scheduler._base import INF, _ParamScheduler
from camshaft.runner.optim.scheduler._build import build_param_schedulers, build_scheduler_from_cfg
from camshaft.runner.optim.scheduler._lr import (
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolyLR,
    StepLR,
)
from camshaft.runner.optim.scheduler._mixins import LRSchedulerMixin, MomentumSchedulerMixin
from camshaft.runner.optim.scheduler._momentum import (
    ConstantMomentum,
    CosineAnnealingMomentum,
    CosineRestartMomentum,
    ExponentialMomentum,
    LinearMomentum,
    MultiStepMomentum,
    PolyMomentum,
    StepMomentum,
)
from camshaft.runner.optim.scheduler._multiplicative import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    StepParamScheduler,
)
from camshaft.runner.optim.scheduler._one_cycle import OneCycleParamScheduler

__all__ = [
    # the contract
    "_ParamScheduler",
    "INF",
    "LRSchedulerMixin",
    "MomentumSchedulerMixin",
    # generic schedules
    "ConstantParamScheduler",
    "CosineAnnealingParamScheduler",
    "CosineRestartParamScheduler",
    "ExponentialParamScheduler",
    "LinearParamScheduler",
    "MultiStepParamScheduler",
    "OneCycleParamScheduler",
    "PolyParamScheduler",
    "StepParamScheduler",
    # learning rate
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineRestartLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolyLR",
    "StepLR",
    # momentum
    "ConstantMomentum",
    "CosineAnnealingMomentum",
    "CosineRestartMomentum",
    "ExponentialMomentum",
    "LinearMomentum",
    "MultiStepMomentum",
    "PolyMomentum",
    "StepMomentum",
    # building from configs
    "build_param_schedulers",
    "build_scheduler_from_cfg",
]
