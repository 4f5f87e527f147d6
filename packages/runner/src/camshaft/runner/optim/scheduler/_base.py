"""The parameter-scheduler contract: one hyper-parameter, one window, one step at a time.

A scheduler rewrites one entry (``'lr'``, ``'momentum'``, ...) of every param group
of an optimizer each time :meth:`_ParamScheduler.step` is called. What every
scheduler here promises:

* **Any optimizer-like object.** A ``torch.optim.Optimizer``, camshaft's
  ``OptimWrapper``, or anything whose ``param_groups`` is a list of dicts. The list
  is looked up on every step, never cached, so ``optimizer.load_state_dict`` (which
  replaces the list) does not detach the scheduler.
* **A window.** The scheduler counts every call of ``step()`` (the first happens in
  the constructor, as global step 0) and acts only while
  ``begin <= global step < end``; outside it the values are left as they are.
  ``last_step`` counts the steps taken inside the window, from 0. ``begin >= end``
  is refused.
* **Chainable** (all but one-cycle). Each step computes the new value from the
  *current* one (the recursive form torch uses), so schedulers whose windows follow
  each other — warm-up, then cosine — or overlap compose by applying them in order. The value
  before any scheduler ran is kept in each group as ``initial_{param_name}``.
* **Plain state.** :meth:`~_ParamScheduler.state_dict` holds only ``int``,
  ``float``, ``str``, ``bool``, ``None``, lists and dicts, never the optimizer, so a
  checkpoint holding it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from camshaft.runner.optim.scheduler._checks import (
    INF,
    check_last_step,
    check_param_groups,
    check_window,
    epochs_to_iters,
)

__all__ = ["INF", "OptimizerLike", "_ParamScheduler"]

_logger = logging.getLogger("camshaft.runner.optim.scheduler")
_S = TypeVar("_S", bound="_ParamScheduler")


class OptimizerLike(Protocol):
    """What a scheduler needs from an optimizer: its ``param_groups``."""

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups, each a dict of hyper-parameters."""
        ...


class _ParamScheduler:
    """Base class of every parameter scheduler: the window, the counters, the state.

    A subclass sets its own attributes, then calls this constructor (which takes the
    first step), and implements :meth:`_get_value`, which returns the new value of
    every param group from ``self.last_step`` and the groups' current values.

    Args:
        optimizer: A ``torch.optim.Optimizer``, an ``OptimWrapper`` or any object
            whose ``param_groups`` is a list of dicts.
        param_name: The param-group key to schedule, such as ``'lr'`` or ``'momentum'``.
        begin: The first global step at which the scheduler acts. Defaults to 0.
        end: The global step at which it stops acting (exclusive). Defaults to INF.
        last_step: The index of the last step taken inside the window; -1 starts
            afresh and records ``initial_{param_name}`` in each group. Another value
            resumes without a state dict and needs ``initial_{param_name}`` in every
            group. Defaults to -1.
        by_epoch: Whether the runner steps this scheduler once per epoch (True) or
            once per iteration (False). Defaults to True.
        verbose: Log every value set, at INFO on the
            ``camshaft.runner.optim.scheduler`` logger. Defaults to False.

    Raises:
        TypeError: ``optimizer`` has no list of param groups, or an argument has the
            wrong type.
        ValueError: ``begin >= end``, ``begin < 0`` or ``last_step < -1``.
        KeyError: a param group lacks ``param_name`` (or ``initial_{param_name}``
            when resuming with ``last_step >= 0``).
    """

    _positional_args: ClassVar[int] = 2  # optimizer, param_name: see build_iter_from_epoch

    def __init__(
        self,
        optimizer: OptimizerLike,
        param_name: str,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        groups = check_param_groups(optimizer)
        if not isinstance(param_name, str) or not param_name:
            raise TypeError(f"`param_name` must be a non-empty str, got {param_name!r}")
        self.begin, self.end = check_window(begin, end)
        last_step = check_last_step(last_step)
        self.optimizer = optimizer
        self.param_name = param_name
        self.by_epoch = bool(by_epoch)
        self.verbose = bool(verbose)
        initial_key = f"initial_{param_name}"
        for index, group in enumerate(groups):  # check every group before changing any
            if param_name not in group:
                raise KeyError(
                    f"param_groups[{index}] of {type(optimizer).__name__} has no {param_name!r} "
                    f"to schedule; its keys are {sorted(k for k in group if k != 'params')}"
                )
            if last_step != -1 and initial_key not in group:
                raise KeyError(
                    f"resuming with last_step={last_step} needs {initial_key!r} in every param "
                    f"group, but param_groups[{index}] has none. Load the optimizer's state "
                    "dict first, or pass last_step=-1 and load the scheduler's state dict."
                )
        if last_step == -1:
            for group in groups:
                group.setdefault(initial_key, group[param_name])
        self.base_values: list[Any] = [group[initial_key] for group in groups]
        self.last_step = last_step
        self._global_step = -1
        self._last_value: list[Any] = []
        self.step()

    @classmethod
    def build_iter_from_epoch(
        cls: type[_S],
        *args: Any,
        begin: float = 0,
        end: float = INF,
        by_epoch: bool = True,
        epoch_length: int | None = None,
        **kwargs: Any,
    ) -> _S:
        """Build an iteration-based scheduler from epoch-based arguments.

        This is what ``convert_to_iter_based=True`` in a config does: the schedule is
        written in epochs but stepped every iteration, so it changes smoothly within
        an epoch. ``begin`` and ``end`` (unless INF) are multiplied by
        ``epoch_length``; so is every argument counted in epochs (``step_size``,
        ``milestones``, ``T_max``, ``periods``, ``total_steps``); ``ExponentialLR``'s
        ``gamma`` becomes ``gamma ** (1 / epoch_length)``. Fractional epochs are
        allowed. Scheduler arguments must be given by keyword.

        Args:
            *args: The optimizer (and ``param_name`` for the generic
                ``*ParamScheduler`` classes).
            begin: The first epoch. Defaults to 0.
            end: The epoch at which to stop (exclusive). Defaults to INF.
            by_epoch: Must be True: only an epoch-based schedule can be converted.
            epoch_length: Iterations per epoch (``len(train_dataloader)``).
            **kwargs: The scheduler's other arguments, by keyword.

        Returns:
            The scheduler, with ``by_epoch=False``.

        Raises:
            ValueError: ``by_epoch`` is False or ``epoch_length`` is not a positive int.
            TypeError: scheduler arguments were given by position.

        Example:
            >>> import torch
            >>> from camshaft.runner.optim.scheduler import StepLR
            >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            >>> scheduler = StepLR.build_iter_from_epoch(sgd, step_size=2, epoch_length=10)
            >>> scheduler.step_size, scheduler.by_epoch
            (20, False)
        """
        if not by_epoch:
            raise ValueError(
                f"{cls.__name__}: only an epoch-based scheduler (by_epoch=True) can be "
                "converted to iteration-based; drop convert_to_iter_based or by_epoch=False"
            )
        if isinstance(epoch_length, bool) or not isinstance(epoch_length, int) or epoch_length < 1:
            raise ValueError(
                f"{cls.__name__}: converting to iteration-based needs `epoch_length`, the "
                f"number of iterations per epoch, as a positive int; got {epoch_length!r}"
            )
        if len(args) > cls._positional_args:
            raise TypeError(
                f"{cls.__name__}.build_iter_from_epoch takes scheduler arguments by keyword "
                f"(so that epoch-valued ones can be converted); got {len(args)} positional"
            )
        iter_begin = epochs_to_iters(begin, epoch_length, "begin")
        iter_end = INF if end in (INF, math.inf) else epochs_to_iters(end, epoch_length, "end")
        converted = cls._convert_epoch_kwargs(dict(kwargs), epoch_length)
        converted.update(begin=iter_begin, end=iter_end, by_epoch=False)
        return cls(*args, **converted)

    @classmethod
    def _convert_epoch_kwargs(cls, kwargs: dict[str, Any], epoch_length: int) -> dict[str, Any]:
        """Convert this scheduler's epoch-valued keyword arguments to iterations."""
        return kwargs

    def _get_value(self) -> list[Any]:
        """Return the new value of every param group at ``self.last_step``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _get_value()")

    def _current_values(self) -> list[Any]:
        """Return the value every param group holds now."""
        return [group[self.param_name] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one global step; inside the window, set the new values."""
        self._global_step += 1
        if self.begin <= self._global_step < self.end:
            self.last_step += 1
            values = self._get_value()
            groups = self.optimizer.param_groups
            for index, (group, value) in enumerate(zip(groups, values, strict=True)):
                group[self.param_name] = value
                if self.verbose:
                    _logger.info(
                        "%s: %s of group %d set to %.4e",
                        type(self).__name__,
                        self.param_name,
                        index,
                        value,
                    )
        self._last_value = self._current_values()

    def get_last_value(self) -> list[Any]:
        """Return the values of every param group after the last :meth:`step`."""
        return list(self._last_value)

    def state_dict(self) -> dict[str, Any]:
        """Return the scheduler's state: plain values, without the optimizer.

        Returns:
            A dict of copies; changing it does not change the scheduler.
        """
        return {
            key: copy.deepcopy(value) for key, value in vars(self).items() if key != "optimizer"
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state returned by :meth:`state_dict`.

        Load the optimizer's state dict too: the scheduler computes from the values
        the param groups hold. Keys this scheduler does not have are ignored with a
        warning (a checkpoint from another version); an ``optimizer`` key is ignored.

        Args:
            state_dict: The state to restore. Not modified.

        Raises:
            TypeError: ``state_dict`` is not a mapping.
            ValueError: it was saved by a scheduler of another parameter.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"`state_dict` must be a mapping from {type(self).__name__}.state_dict(), "
                f"got {type(state_dict).__name__}"
            )
        saved_param = state_dict.get("param_name", self.param_name)
        if saved_param != self.param_name:
            raise ValueError(
                f"this state dict schedules {saved_param!r} but this {type(self).__name__} "
                f"schedules {self.param_name!r}; load it into a scheduler of {saved_param!r}"
            )
        own = vars(self)
        unknown = sorted(str(key) for key in state_dict if key not in own and key != "optimizer")
        if unknown:
            warnings.warn(
                f"{type(self).__name__}.load_state_dict ignores keys it does not have: {unknown}",
                stacklevel=2,
            )
        for key, value in state_dict.items():
            if key in own and key != "optimizer":
                own[key] = copy.deepcopy(value)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(param_name={self.param_name!r}, begin={self.begin}, "
            f"end={self.end}, by_epoch={self.by_epoch}, last_step={self.last_step})"
        )
