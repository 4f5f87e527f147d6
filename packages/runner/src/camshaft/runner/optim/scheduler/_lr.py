"""The learning-rate schedulers: each generic schedule with ``param_name='lr'``.

They take the generic scheduler's arguments, without ``param_name``; see the
``*ParamScheduler`` class named in each docstring for what they mean.
"""

from __future__ import annotations

from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._annealing import (
    CosineAnnealingParamScheduler,
    CosineRestartParamScheduler,
    PolyParamScheduler,
)
from camshaft.runner.optim.scheduler._mixins import LRSchedulerMixin
from camshaft.runner.optim.scheduler._multiplicative import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    StepParamScheduler,
)
from camshaft.runner.optim.scheduler._one_cycle import OneCycleParamScheduler

__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineRestartLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolyLR",
    "StepLR",
]


@PARAM_SCHEDULERS.register_module()
class ConstantLR(LRSchedulerMixin, ConstantParamScheduler):
    """Scale the learning rate by ``factor`` until step ``end - 1`` (ConstantParamScheduler).

    Example:
        >>> import torch
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
        >>> scheduler = ConstantLR(sgd, factor=0.5, end=3)
        >>> sgd.param_groups[0]['lr']
        0.15
        >>> scheduler.step()
        >>> scheduler.step()
        >>> sgd.param_groups[0]['lr']
        0.3
    """


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingLR(LRSchedulerMixin, CosineAnnealingParamScheduler):
    """Anneal the learning rate along half a cosine (CosineAnnealingParamScheduler).

    Example:
        >>> param_scheduler = [
        ...     dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=500),
        ...     dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=100,
        ...          convert_to_iter_based=True),
        ... ]
    """


@PARAM_SCHEDULERS.register_module()
class CosineRestartLR(LRSchedulerMixin, CosineRestartParamScheduler):
    """Cosine-anneal the learning rate with restarts (CosineRestartParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class ExponentialLR(LRSchedulerMixin, ExponentialParamScheduler):
    """Multiply the learning rate by ``gamma`` every step (ExponentialParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class LinearLR(LRSchedulerMixin, LinearParamScheduler):
    """Linear learning-rate warm-up or decay (LinearParamScheduler).

    Example:
        >>> warmup = dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)
    """


@PARAM_SCHEDULERS.register_module()
class MultiStepLR(LRSchedulerMixin, MultiStepParamScheduler):
    """Decay the learning rate by ``gamma`` at each milestone (MultiStepParamScheduler).

    Example:
        >>> schedule_1x = dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
        ...                    milestones=[8, 11], gamma=0.1)
    """


@PARAM_SCHEDULERS.register_module()
class OneCycleLR(LRSchedulerMixin, OneCycleParamScheduler):
    """The 1cycle learning-rate policy (OneCycleParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class PolyLR(LRSchedulerMixin, PolyParamScheduler):
    """Polynomial learning-rate decay to ``eta_min`` (PolyParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class StepLR(LRSchedulerMixin, StepParamScheduler):
    """Decay the learning rate by ``gamma`` every ``step_size`` steps (StepParamScheduler)."""
