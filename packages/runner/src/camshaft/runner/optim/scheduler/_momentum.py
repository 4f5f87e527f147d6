"""The momentum schedulers: each generic schedule on the momentum.

The momentum is ``group['momentum']`` for SGD-like optimizers and ``betas[0]`` for
the Adam family (see :class:`MomentumSchedulerMixin`). They take the generic
scheduler's arguments, without ``param_name``. There is no one-cycle momentum
scheduler, as in MMEngine.
"""

from __future__ import annotations

from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._annealing import (
    CosineAnnealingParamScheduler,
    CosineRestartParamScheduler,
    PolyParamScheduler,
)
from camshaft.runner.optim.scheduler._mixins import MomentumSchedulerMixin
from camshaft.runner.optim.scheduler._multiplicative import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    StepParamScheduler,
)

__all__ = [
    "ConstantMomentum",
    "CosineAnnealingMomentum",
    "CosineRestartMomentum",
    "ExponentialMomentum",
    "LinearMomentum",
    "MultiStepMomentum",
    "PolyMomentum",
    "StepMomentum",
]


@PARAM_SCHEDULERS.register_module()
class ConstantMomentum(MomentumSchedulerMixin, ConstantParamScheduler):
    """Scale the momentum by ``factor`` until step ``end - 1`` (ConstantParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingMomentum(MomentumSchedulerMixin, CosineAnnealingParamScheduler):
    """Anneal the momentum along half a cosine (CosineAnnealingParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class CosineRestartMomentum(MomentumSchedulerMixin, CosineRestartParamScheduler):
    """Cosine-anneal the momentum with restarts (CosineRestartParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class ExponentialMomentum(MomentumSchedulerMixin, ExponentialParamScheduler):
    """Multiply the momentum by ``gamma`` every step (ExponentialParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class LinearMomentum(MomentumSchedulerMixin, LinearParamScheduler):
    """Move the momentum's factor linearly (LinearParamScheduler).

    Example:
        >>> import torch
        >>> adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], betas=(0.9, 0.999))
        >>> scheduler = LinearMomentum(adam, start_factor=0.5, end=3)
        >>> adam.param_groups[0]['betas']
        (0.45, 0.999)
    """


@PARAM_SCHEDULERS.register_module()
class MultiStepMomentum(MomentumSchedulerMixin, MultiStepParamScheduler):
    """Decay the momentum by ``gamma`` at each milestone (MultiStepParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class PolyMomentum(MomentumSchedulerMixin, PolyParamScheduler):
    """Polynomial momentum decay to ``eta_min`` (PolyParamScheduler)."""


@PARAM_SCHEDULERS.register_module()
class StepMomentum(MomentumSchedulerMixin, StepParamScheduler):
    """Decay the momentum by ``gamma`` every ``step_size`` steps (StepParamScheduler)."""
