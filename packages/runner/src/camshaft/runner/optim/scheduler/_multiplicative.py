"""Schedules that multiply the current value: step, multi-step, constant, exponential, linear.

Each ``_get_value`` returns the current value times a factor, so these schedules
stack with others acting on the same parameter. Their values step for step match
torch's ``StepLR``, ``MultiStepLR``, ``ConstantLR(total_iters=end - begin - 1)``,
``ExponentialLR`` and ``LinearLR(total_iters=end - begin - 1)``: a window
``[begin, end)`` reaches its last value at step ``end - 1``, the last step inside it.
"""

from __future__ import annotations

import collections
import numbers
from collections.abc import Iterable
from typing import Any

from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._base import OptimizerLike, _ParamScheduler
from camshaft.runner.optim.scheduler._checks import (
    INF,
    check_positive_int,
    check_real,
    epochs_to_iters,
)

__all__ = [
    "ConstantParamScheduler",
    "ExponentialParamScheduler",
    "LinearParamScheduler",
    "MultiStepParamScheduler",
    "StepParamScheduler",
]


@PARAM_SCHEDULERS.register_module()
class StepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` every ``step_size`` steps.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        step_size: Steps between two decays (epochs with ``by_epoch=True``).
        gamma: The factor applied at each decay. Defaults to 0.1.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        step_size: int,
        gamma: float = 0.1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        self.step_size = check_positive_int(step_size, "step_size", owner)
        self.gamma = check_real(gamma, "gamma", owner, above=0)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        if "step_size" in kwargs:
            kwargs["step_size"] = epochs_to_iters(kwargs["step_size"], epoch_length, "step_size")
        return kwargs

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        if self.last_step == 0 or self.last_step % self.step_size != 0:
            return values
        return [value * self.gamma for value in values]


@PARAM_SCHEDULERS.register_module()
class MultiStepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` at each milestone.

    A milestone listed twice applies ``gamma`` twice (``gamma ** 2``), as in torch.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        milestones: The steps, counted from ``begin``, at which to decay.
        gamma: The factor applied at each milestone. Defaults to 0.1.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_step: int = -1,
        begin: int = 0,
        end: int = INF,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"{owner}: `milestones` must be a list of ints, got {milestones!r}")
        steps = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0 for m in steps):
            raise TypeError(f"{owner}: `milestones` must hold ints >= 0, got {steps!r}")
        # A plain dict (step -> count), not a Counter, so the state dict stays plain.
        self.milestones: dict[int, int] = dict(collections.Counter(int(m) for m in steps))
        self.gamma = check_real(gamma, "gamma", owner, above=0)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        if "milestones" in kwargs:
            kwargs["milestones"] = [
                epochs_to_iters(m, epoch_length, "milestones") for m in kwargs["milestones"]
            ]
        return kwargs

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        count = self.milestones.get(self.last_step, 0)
        if count == 0:
            return values
        return [value * self.gamma**count for value in values]


@PARAM_SCHEDULERS.register_module()
class ConstantParamScheduler(_ParamScheduler):
    """Multiply the value by ``factor`` at ``begin`` and undo it at step ``end - 1``.

    The original value is back on the last step inside the window (MMEngine's
    rule, equal to torch's ``ConstantLR(total_iters=end - begin - 1)``).

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        factor: The factor, in (0, 1]. Defaults to 1/3.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        factor: float = 1.0 / 3,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        self.factor = check_real(factor, "factor", type(self).__name__, above=0, at_most=1)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @property
    def total_iters(self) -> int:
        """The step, counted from ``begin``, at which the original value returns."""
        return self.end - self.begin - 1

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        if self.last_step == 0:
            return [value * self.factor for value in values]
        if self.last_step == self.total_iters:
            return [value / self.factor for value in values]
        return values


@PARAM_SCHEDULERS.register_module()
class ExponentialParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` every step.

    With ``convert_to_iter_based=True`` the per-iteration factor is
    ``gamma ** (1 / epoch_length)``, so each epoch still decays by ``gamma``
    (MMEngine keeps ``gamma`` per iteration, which decays ``epoch_length`` times faster).

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        gamma: The factor applied at every step.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        gamma: float,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        self.gamma = check_real(gamma, "gamma", type(self).__name__, above=0)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        if "gamma" in kwargs:
            gamma = check_real(kwargs["gamma"], "gamma", cls.__name__, above=0)
            kwargs["gamma"] = gamma ** (1.0 / epoch_length)
        return kwargs

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        if self.last_step == 0:
            return values
        return [value * self.gamma for value in values]


@PARAM_SCHEDULERS.register_module()
class LinearParamScheduler(_ParamScheduler):
    """Move the factor on the value linearly from ``start_factor`` to ``end_factor``.

    The factor is ``start_factor`` at ``begin`` and reaches ``end_factor`` at step
    ``end - 1``, the last step inside the window: the usual warm-up is
    ``LinearLR(start_factor=0.001, begin=0, end=500, by_epoch=False)``.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        start_factor: The factor at ``begin``, in (0, 1]. Defaults to 1/3.
        end_factor: The factor at ``end - 1``, in [0, 1]. Defaults to 1.0.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        # 0 is refused (MMEngine accepts it): the chained form would divide by zero.
        self.start_factor = check_real(start_factor, "start_factor", owner, above=0, at_most=1)
        self.end_factor = check_real(end_factor, "end_factor", owner, at_least=0, at_most=1)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @property
    def total_iters(self) -> int:
        """The step, counted from ``begin``, at which ``end_factor`` is reached."""
        return self.end - self.begin - 1

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        if self.last_step == 0:
            return [value * self.start_factor for value in values]
        if self.last_step > self.total_iters:
            return values
        delta = self.end_factor - self.start_factor
        # Ratio of the factor at last_step to the factor at last_step - 1.
        ratio = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_step - 1) * delta)
        return [value * ratio for value in values]
