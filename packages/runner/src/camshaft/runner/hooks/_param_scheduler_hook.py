"""ParamSchedulerHook: step the learning-rate and momentum schedulers at their cadence.

``runner.param_schedulers`` is None, a list of schedulers, or (for an
``OptimWrapperDict``) a dict of such lists by wrapper name. Each scheduler says by its
``by_epoch`` whether it steps once per iteration or once per epoch. The hook sorts
them once, in ``before_train``, into two tuples of bound ``step`` methods, in the
order they were configured (chained schedulers depend on it), so an iteration costs
one loop over a prebuilt tuple — or nothing: without an iteration-based scheduler
the hook leaves ``after_train_iter`` out of its triggered stages once prepared, and
the dispatcher stops calling it.

A scheduler that adjusts to validation results (ReduceOnPlateau-style) says so with
a true ``need_val_args`` attribute, as in MMEngine; it is stepped with the metrics
after each validation epoch. None of camshaft's built-in schedulers needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook, _DataBatch

__all__ = ["ParamSchedulerHook"]

_Steps = tuple[Callable[..., Any], ...]


@HOOKS.register_module()
class ParamSchedulerHook(Hook):
    """Step iteration-based schedulers after each iteration, epoch-based ones after each epoch.

    Takes no arguments (priority ``LOW``, after the optimizer step and logging of the
    iteration); the Runner registers it by default.

    Raises:
        TypeError: (in ``before_train``) ``runner.param_schedulers`` is not None, a
            list or a dict of lists, or holds something without ``by_epoch`` and
            ``step()``; the message names where it sits.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> from camshaft.runner.optim import LinearLR
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> warmup = LinearLR(sgd, start_factor=0.5, by_epoch=False, begin=0, end=3)
        >>> hook = ParamSchedulerHook()
        >>> hook.before_train(SimpleNamespace(param_schedulers=[warmup]))
        >>> hook.after_train_iter(SimpleNamespace(), batch_idx=0)
        >>> sgd.param_groups[0]['lr']
        0.75
    """

    priority = "LOW"

    def __init__(self) -> None:
        self._iter_steps: _Steps | None = None  # None: not prepared yet
        self._epoch_steps: _Steps = ()
        self._val_steps: _Steps = ()

    def get_triggered_stages(self) -> list[str]:
        """The overridden stages, without ``after_train_iter`` when it has nothing to step.

        Once ``before_train`` has found no iteration-based scheduler, stepping after
        each iteration is a no-op; the dispatcher, which asks again after every
        ``before_train``, then stops calling it until the next run prepares again.
        """
        stages = super().get_triggered_stages()
        idle = self._iter_steps is not None and not self._iter_steps
        # A subclass with its own after_train_iter keeps it.
        if idle and type(self).after_train_iter is ParamSchedulerHook.after_train_iter:
            stages.remove("after_train_iter")
        return stages

    def before_train(self, runner: Any) -> None:
        """Sort ``runner.param_schedulers`` into the per-iteration and per-epoch tuples."""
        self._prepare(runner)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Step every scheduler with ``by_epoch=False``."""
        steps = self._iter_steps
        if steps is None:
            steps = self._prepare(runner)
        for step in steps:
            step()

    def after_train_epoch(self, runner: Any) -> None:
        """Step every scheduler with ``by_epoch=True``."""
        if self._iter_steps is None:
            self._prepare(runner)
        for step in self._epoch_steps:
            step()

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Pass ``metrics`` to the epoch-based schedulers that ask for them.

        Does nothing outside training (no ``before_train`` yet) or without metrics.
        """
        if metrics is None:
            return
        for step in self._val_steps:
            step(metrics)

    def _prepare(self, runner: Any) -> _Steps:
        per_iter: list[Callable[..., Any]] = []
        per_epoch: list[Callable[..., Any]] = []
        with_metrics: list[Callable[..., Any]] = []
        for where, scheduler in _schedulers(runner.param_schedulers):
            step = getattr(scheduler, "step", None)
            if not callable(step) or not hasattr(scheduler, "by_epoch"):
                raise TypeError(
                    f"runner.{where} must be a built parameter scheduler (with `by_epoch` "
                    f"and `step()`), got {type(scheduler).__name__}: {scheduler!r:.120}. "
                    "Build configs with camshaft.runner.optim.build_param_schedulers."
                )
            if scheduler.by_epoch:
                per_epoch.append(step)
                if getattr(scheduler, "need_val_args", False):
                    with_metrics.append(step)
            else:
                per_iter.append(step)
        self._epoch_steps = tuple(per_epoch)
        self._val_steps = tuple(with_metrics)
        steps = tuple(per_iter)
        self._iter_steps = steps
        return steps


def _schedulers(param_schedulers: Any) -> list[tuple[str, Any]]:
    """``(where, scheduler)`` of each scheduler, in order; TypeError on a bad container."""
    if param_schedulers is None:
        return []
    if isinstance(param_schedulers, Mapping):
        groups = [
            (f"param_schedulers[{name!r}]", group) for name, group in param_schedulers.items()
        ]
    else:
        groups = [("param_schedulers", param_schedulers)]
    found: list[tuple[str, Any]] = []
    for where, group in groups:
        if not isinstance(group, list | tuple):
            raise TypeError(
                f"runner.{where} must be a list of parameter schedulers (or, for an "
                "OptimWrapperDict, a dict of such lists by wrapper name), or None; got "
                f"{type(group).__name__}: {group!r:.120}"
            )
        found.extend((f"{where}[{index}]", item) for index, item in enumerate(group))
    return found
