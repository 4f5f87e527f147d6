"""The 1cycle learning-rate policy (Smith & Topin, "Super-Convergence", 2017).

Unlike the other schedulers this one is not chained: every step computes the value
from three anchors it writes into each param group when it starts —
``initial_lr = eta_max / div_factor``, ``max_lr = eta_max`` and
``min_lr = initial_lr / final_div_factor`` — so it overrides whatever another
scheduler set. Its values equal torch's ``OneCycleLR(..., cycle_momentum=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler._base import OptimizerLike, _ParamScheduler
from camshaft.runner.optim.scheduler._checks import (
    INF,
    check_last_step,
    check_param_groups,
    check_positive_int,
    check_real,
    check_window,
    epochs_to_iters,
)

__all__ = ["OneCycleParamScheduler"]

_STRATEGIES = ("cos", "linear")


@PARAM_SCHEDULERS.register_module()
class OneCycleParamScheduler(_ParamScheduler):
    """Warm the learning rate up to ``eta_max``, then anneal it far below its start.

    Two phases by default (fastai's variant): ``initial_lr -> max_lr`` over the first
    ``pct_start`` of the cycle, then ``max_lr -> min_lr``. With ``three_phase=True``
    (the paper's): up, back down to ``initial_lr`` symmetrically, then to ``min_lr``.

    Args:
        optimizer: The optimizer (or wrapper) whose param groups are scheduled.
        param_name: Must be ``'lr'``: the policy is defined for learning rates.
        eta_max: The peak learning rate, one for all groups or one per group. Must
            be given (the default 0 is refused).
        total_steps: The length of the cycle. Defaults to None, meaning ``end - begin``.
        pct_start: The fraction of the cycle spent warming up, in [0, 1].
            Defaults to 0.3.
        anneal_strategy: ``'cos'`` or ``'linear'``. Defaults to ``'cos'``.
        div_factor: ``initial_lr = eta_max / div_factor``. Defaults to 25.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``. Defaults to 1e4.
        three_phase: Use the paper's three phases. Defaults to False.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The last step taken inside the window; -1 starts afresh.
            Defaults to -1.
        by_epoch: Stepped once per epoch (True) or per iteration. Defaults to True.
        verbose: Log every value set. Defaults to False.

    Raises:
        ValueError: an argument is out of range, or the window is longer than the
            cycle (``end - begin > total_steps + 1``).
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        eta_max: float | Sequence[float] = 0,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if param_name != "lr":
            raise ValueError(f"{owner} schedules only 'lr', got param_name={param_name!r}")
        groups = check_param_groups(optimizer)
        first, last = check_window(begin, end)
        check_last_step(last_step)  # checked before the groups are written to
        if total_steps is None:
            total_steps = last - first
        self.total_steps = check_positive_int(total_steps, "total_steps", owner)
        if last != INF and last - first > self.total_steps + 1:
            raise ValueError(
                f"{owner}: the window [begin={first}, end={last}) has {last - first} steps but "
                f"the cycle has total_steps={self.total_steps}; shorten the window or "
                "lengthen the cycle"
            )
        pct_start = check_real(pct_start, "pct_start", owner, at_least=0, at_most=1)
        if anneal_strategy not in _STRATEGIES:
            raise ValueError(
                f"{owner}: `anneal_strategy` must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.anneal_strategy = anneal_strategy
        self.div_factor = check_real(div_factor, "div_factor", owner, above=0)
        self.final_div_factor = check_real(final_div_factor, "final_div_factor", owner, above=0)
        self.eta_max = _per_group(eta_max, len(groups), owner)
        self.pct_start = pct_start
        self.three_phase = bool(three_phase)
        self._schedule_phases = self._phases()
        if last_step == -1:
            for group, peak in zip(groups, self.eta_max, strict=True):
                group["initial_lr"] = peak / self.div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / self.final_div_factor
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _phases(self) -> list[dict[str, Any]]:
        """Each phase: the step it ends on and the group keys it anneals between."""
        warm_end = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [
                {"end_step": warm_end, "start": "initial_lr", "end": "max_lr"},
                {"end_step": 2 * warm_end, "start": "max_lr", "end": "initial_lr"},
                {"end_step": self.total_steps - 1, "start": "initial_lr", "end": "min_lr"},
            ]
        return [
            {"end_step": warm_end, "start": "initial_lr", "end": "max_lr"},
            {"end_step": self.total_steps - 1, "start": "max_lr", "end": "min_lr"},
        ]

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        if kwargs.get("total_steps") is not None:
            kwargs["total_steps"] = epochs_to_iters(
                kwargs["total_steps"], epoch_length, "total_steps"
            )
        return kwargs

    def _anneal(self, start: Any, end: Any, pct: float) -> Any:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _get_value(self) -> list[Any]:
        step = self.last_step
        if step > self.total_steps:
            raise ValueError(
                f"{type(self).__name__} was stepped {step + 1} times, past its cycle of "
                f"total_steps={self.total_steps}; set `end` to at most begin + total_steps"
            )
        values = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or index == len(self._schedule_phases) - 1:
                    span = end_step - start_step
                    # A phase of zero length (pct_start * total_steps == 1) is already over.
                    pct = (step - start_step) / span if span else 1.0
                    values.append(self._anneal(group[phase["start"]], group[phase["end"]], pct))
                    break
                start_step = end_step
        return values


def _per_group(eta_max: object, num_groups: int, owner: str) -> list[float]:
    if isinstance(eta_max, (list, tuple)):
        if len(eta_max) != num_groups:
            raise ValueError(
                f"{owner}: `eta_max` has {len(eta_max)} values but the optimizer has "
                f"{num_groups} param groups; give one value, or one per group"
            )
        peaks = list(eta_max)
    else:
        peaks = [eta_max] * num_groups
    return [check_real(peak, "eta_max", owner, above=0) for peak in peaks]
