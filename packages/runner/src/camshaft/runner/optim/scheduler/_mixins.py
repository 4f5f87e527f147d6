"""Fix what a generic scheduler schedules: the learning rate, or the momentum.

``LinearLR`` is ``LinearParamScheduler`` with ``param_name='lr'``; ``LinearMomentum``
is the same schedule on the momentum. The momentum of an Adam-like optimizer is
``betas[0]``: for those, :class:`MomentumSchedulerMixin` keeps a ``'momentum'`` entry
in each param group (as MMEngine does, so code reading ``group['momentum']`` works),
schedules it, and writes it back into ``betas[0]`` after every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from camshaft.runner.optim.scheduler._base import OptimizerLike, _ParamScheduler
from camshaft.runner.optim.scheduler._checks import (
    check_param_groups,
)

__all__ = ["LRSchedulerMixin", "MomentumSchedulerMixin"]


class LRSchedulerMixin(_ParamScheduler):
    """Schedule ``'lr'``: put it first in the bases of a generic scheduler.

    The constructor takes the generic scheduler's arguments without ``param_name``.

    Example:
        >>> from camshaft.runner.optim.scheduler import StepParamScheduler
        >>> class MyStepLR(LRSchedulerMixin, StepParamScheduler):
        ...     '''StepParamScheduler on the learning rate.'''
    """

    _positional_args: ClassVar[int] = 1

    def __init__(self, optimizer: OptimizerLike, *args: Any, **kwargs: Any) -> None:
        super().__init__(optimizer, "lr", *args, **kwargs)


class MomentumSchedulerMixin(_ParamScheduler):
    """Schedule the momentum: ``'momentum'`` (SGD, RMSprop) or ``betas[0]`` (Adam family).

    Which one is read from the optimizer's ``defaults`` (or its wrapped
    ``optimizer.defaults``), ``'momentum'`` first, as MMEngine does; an object
    without ``defaults`` is judged by its first param group, ``'betas'`` first.

    Raises:
        ValueError: the optimizer has neither ``momentum`` nor ``betas``.
    """

    _positional_args: ClassVar[int] = 1

    def __init__(self, optimizer: OptimizerLike, *args: Any, **kwargs: Any) -> None:
        groups = check_param_groups(optimizer)
        self.use_betas = _uses_betas(optimizer, groups)
        mirrored = []
        if self.use_betas:
            for index, group in enumerate(groups):
                if "betas" not in group:
                    raise KeyError(f"param_groups[{index}] has no 'betas' to schedule")
            mirrored = [group for group in groups if "momentum" not in group]
            for group in groups:
                group["momentum"] = group["betas"][0]
        try:
            super().__init__(optimizer, "momentum", *args, **kwargs)
        except Exception:
            for group in mirrored:  # bad arguments leave the optimizer as it was
                group.pop("momentum", None)
                group.pop("initial_momentum", None)
            raise

    def step(self) -> None:
        """Advance one step, keeping ``betas[0]`` and ``'momentum'`` equal for Adam."""
        if not self.use_betas:
            super().step()
            return
        for group in self.optimizer.param_groups:
            # betas[0] is what the optimizer uses: start from it, whoever changed it last.
            group["momentum"] = group["betas"][0]
        super().step()
        for group in self.optimizer.param_groups:
            group["betas"] = (group["momentum"], *group["betas"][1:])


def _uses_betas(optimizer: object, groups: list[dict[str, Any]]) -> bool:
    defaults = getattr(optimizer, "defaults", None)
    if not isinstance(defaults, Mapping):
        defaults = getattr(getattr(optimizer, "optimizer", None), "defaults", None)
    if isinstance(defaults, Mapping):
        if "momentum" in defaults:
            return False
        if "betas" in defaults:
            return True
    else:
        # No defaults to ask: a 'momentum' beside 'betas' is the mirror written above.
        if "betas" in groups[0]:
            return True
        if "momentum" in groups[0]:
            return False
    raise ValueError(
        f"a momentum scheduler needs an optimizer with `momentum` (SGD, RMSprop) or `betas` "
        f"(Adam, AdamW, ...), but {type(optimizer).__name__} has neither; "
        f"its param group keys are {sorted(k for k in groups[0] if k != 'params')}"
    )
