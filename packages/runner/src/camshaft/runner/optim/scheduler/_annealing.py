"""Schedules that anneal towards a floor: cosine, polynomial, cosine with restarts.

All three are written in the chained (recursive) form torch uses: each step scales
the distance between the current value and the floor ``eta_min``. When nothing else
touches the parameter, this equals the closed form to float rounding, e.g. for
cosine ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``; when another
scheduler changes it too (a warm-up that ends below the base value), the annealing
continues from where the value actually is instead of jumping back to the curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._base import OptimizerLike, _ParamScheduler
from camshaft.runner.optim.scheduler._checks import (
    INF,
    check_positive_int,
    check_real,
    check_window,
    epochs_to_iters,
)

__all__ = [
    "CosineAnnealingParamScheduler",
    "CosineRestartParamScheduler",
    "PolyParamScheduler",
]


class _EtaMinMixin:
    """The floor, given either as a value (``eta_min``) or as a ratio of the base value."""

    eta_min: float | None
    eta_min_ratio: float | None

    def _set_eta_min(self, eta_min: object, eta_min_ratio: object) -> None:
        owner = type(self).__name__
        if eta_min is not None and eta_min_ratio is not None:
            raise ValueError(
                f"{owner}: give `eta_min` or `eta_min_ratio`, not both "
                f"(got eta_min={eta_min!r}, eta_min_ratio={eta_min_ratio!r})"
            )
        if eta_min is None and eta_min_ratio is None:
            eta_min = 0.0
        self.eta_min = None if eta_min is None else check_real(eta_min, "eta_min", owner)
        self.eta_min_ratio = (
            None
            if eta_min_ratio is None
            else check_real(eta_min_ratio, "eta_min_ratio", owner, at_least=0)
        )

    def _floor(self, base_value: Any) -> Any:
        if self.eta_min_ratio is not None:
            return base_value * self.eta_min_ratio
        return self.eta_min


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingParamScheduler(_EtaMinMixin, _ParamScheduler):
    """Anneal the value from its initial value to ``eta_min`` along half a cosine.

    The value reaches the floor ``T_max`` steps after ``begin``; past that it rises
    again (a full cosine period is ``2 * T_max``), as torch's ``CosineAnnealingLR``.
    With the default ``T_max = end - begin`` the last step inside the window is one
    step short of the floor (MMEngine's behaviour).

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        T_max: Steps from the initial value to the floor. Defaults to None, meaning
            ``end - begin``.
        eta_min: The floor. Defaults to None: 0 unless ``eta_min_ratio`` is given.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.
        eta_min_ratio: The floor as a fraction of each group's initial value.
            Defaults to None.
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        T_max: int | None = None,
        eta_min: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
        eta_min_ratio: float | None = None,
    ) -> None:
        owner = type(self).__name__
        self._set_eta_min(eta_min, eta_min_ratio)
        if T_max is None:
            first, last = check_window(begin, end)
            T_max = last - first
        self.T_max = check_positive_int(T_max, "T_max", owner)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        if kwargs.get("T_max") is not None:
            kwargs["T_max"] = epochs_to_iters(kwargs["T_max"], epoch_length, "T_max")
        return kwargs

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        step, period = self.last_step, self.T_max
        if step == 0:
            return values
        floors = [self._floor(base) for base in self.base_values]
        if (step - 1 - period) % (2 * period) == 0:
            # Leaving the floor: the ratio form would divide by 1 + cos(pi) = 0.
            rise = (1 - math.cos(math.pi / period)) / 2
            return [
                value + (base - floor) * rise
                for value, base, floor in zip(values, self.base_values, floors, strict=True)
            ]
        ratio = (1 + math.cos(math.pi * step / period)) / (
            1 + math.cos(math.pi * (step - 1) / period)
        )
        return [
            floor + (value - floor) * ratio for value, floor in zip(values, floors, strict=True)
        ]


@PARAM_SCHEDULERS.register_module()
class PolyParamScheduler(_ParamScheduler):
    """Decay the value to ``eta_min`` along ``(1 - t / total) ** power``.

    The floor is reached at step ``end - 1``, the last step inside the window; with
    ``eta_min=0`` this equals torch's ``PolynomialLR(total_iters=end - begin - 1)``.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        eta_min: The value at the end of the window. Defaults to 0.
        power: The power of the polynomial, > 0. Defaults to 1.0.
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
        eta_min: float = 0,
        power: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        self.eta_min = check_real(eta_min, "eta_min", owner)
        self.power = check_real(power, "power", owner, above=0)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @property
    def total_iters(self) -> int:
        """The step, counted from ``begin``, at which ``eta_min`` is reached."""
        return self.end - self.begin - 1

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        remaining = self.total_iters - self.last_step
        if self.last_step == 0 or remaining < 0:
            return values
        ratio = (remaining / (remaining + 1)) ** self.power
        return [self.eta_min + (value - self.eta_min) * ratio for value in values]


@PARAM_SCHEDULERS.register_module()
class CosineRestartParamScheduler(_EtaMinMixin, _ParamScheduler):
    """Cosine annealing that restarts at the end of every period (SGDR without ``T_mult``).

    Period ``i`` starts at ``restart_weights[i]`` times the initial value and anneals
    towards the floor for ``periods[i]`` steps; after the last period the value is
    left as it is.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: The param-group key to schedule.
        periods: The length of every cycle, in steps.
        restart_weights: The weight of the initial value at each restart, one per
            period. Defaults to (1,).
        eta_min: The floor. Defaults to None: 0 unless ``eta_min_ratio`` is given
            (MMEngine demands one of the two).
        eta_min_ratio: The floor as a fraction of each group's initial value.
            Defaults to None.
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
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1,),
        eta_min: float | None = None,
        eta_min_ratio: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        self._set_eta_min(eta_min, eta_min_ratio)
        if isinstance(periods, (str, bytes)) or not isinstance(periods, Sequence) or not periods:
            raise TypeError(f"{owner}: `periods` must be a non-empty list of ints, got {periods!r}")
        self.periods = [check_positive_int(p, "periods", owner) for p in periods]
        if not isinstance(restart_weights, Sequence) or len(restart_weights) != len(periods):
            raise ValueError(
                f"{owner}: `restart_weights` must hold one weight per period "
                f"({len(self.periods)}), got {restart_weights!r}"
            )
        self.restart_weights = [
            check_real(w, "restart_weights", owner, at_least=0) for w in restart_weights
        ]
        self.cumulative_periods = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        periods = kwargs.get("periods")
        if isinstance(periods, Sequence) and not isinstance(periods, str):
            kwargs["periods"] = [epochs_to_iters(p, epoch_length, "periods") for p in periods]
        return kwargs

    def _get_value(self) -> list[Any]:
        values = self._current_values()
        cycle = next(
            (i for i, stop in enumerate(self.cumulative_periods) if self.last_step < stop), None
        )
        if cycle is None:
            return values
        period = self.periods[cycle]
        step = self.last_step - (self.cumulative_periods[cycle - 1] if cycle else 0)
        weight = self.restart_weights[cycle]
        if step == 0:
            return [base * weight for base in self.base_values]
        ratio = (1 + math.cos(math.pi * step / period)) / (
            1 + math.cos(math.pi * (step - 1) / period)
        )
        new_values = []
        for value, base in zip(values, self.base_values, strict=True):
            floor = self._floor(base)
            new_values.append(floor + (value - floor) * ratio)
        return new_values
