"""IterTimerHook: time per iteration, time spent waiting for data, and the ETA.

For each mode (``train``, ``val``, ``test``) it records, with ``time.perf_counter``:

* ``'<mode>/data_time'`` at ``before_<mode>_iter``: the time since the previous
  iteration ended (or the epoch began), i.e. the wait for the batch;
* ``'<mode>/time'`` at ``after_<mode>_iter``: the time since the previous iteration
  ended, the batch wait included.

After each training iteration, info ``'eta'`` is the mean iteration time since
training (re)started, times the iterations left (``max_iters - iter - 1``), in
seconds. During validation and test it is the mean time of the epoch's iterations
so far times the batches left in it, as MMEngine does, so evaluation lines show their
own ETA.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook, _DataBatch

__all__ = ["IterTimerHook"]


@HOOKS.register_module()
class IterTimerHook(Hook):
    """Record iteration and data-loading times, and the estimated time left.

    Takes no arguments (priority ``NORMAL``); the Runner registers it by default.
    The training stages bind the hub's methods once, in ``before_train``.

    Example:
        >>> from camshaft.runner.hooks._iter_timer_hook import IterTimerHook
        >>> hook = IterTimerHook()
        >>> # after some training iterations:
        >>> # runner.message_hub.get_scalar('train/time').mean()   -> seconds per iteration
        >>> # runner.message_hub.get_info('eta')                   -> seconds left
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._last = perf_counter()  # when the previous iteration (or the epoch) began
        self._iters_left = 0  # at before_train: max_iters - iter
        self._time_total = 0.0  # seconds of the iterations since before_train
        self._count = 0  # iterations since before_train
        # (message_hub.update_scalar, message_hub.update_info), bound in before_train.
        self._bound: tuple[Callable[..., None], Callable[..., None]] | None = None
        # Evaluation: seconds summed over this epoch's iterations, their number, the length.
        self._eval_total = 0.0
        self._eval_count = 0
        self._eval_length: int | None = None

    # --- training --------------------------------------------------------------------

    def before_train(self, runner: Any) -> None:
        """Start the ETA window at the current iteration (so a resume does not skew it)."""
        self._bind(runner)

    def before_train_epoch(self, runner: Any) -> None:
        """Reset the clock: the first batch's wait is counted from here."""
        self._last = perf_counter()

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Record ``'train/data_time'``."""
        bound = self._bound
        if bound is None:
            bound = self._bind(runner)
        bound[0]("train/data_time", perf_counter() - self._last)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Record ``'train/time'`` and the info ``'eta'`` (seconds)."""
        now = perf_counter()
        elapsed = now - self._last
        self._last = now
        bound = self._bound
        if bound is None:
            bound = self._bind(runner)
        update_scalar, update_info = bound
        update_scalar("train/time", elapsed)
        total = self._time_total = self._time_total + elapsed
        count = self._count = self._count + 1
        # count == runner.iter - (iter at before_train) + 1, without reading the runner.
        update_info("eta", total / count * (self._iters_left - count))

    # --- evaluation ------------------------------------------------------------------

    def before_val_epoch(self, runner: Any) -> None:
        """Reset the clock and the epoch's ETA window."""
        self._start_eval(runner.val_dataloader)

    def before_test_epoch(self, runner: Any) -> None:
        """Reset the clock and the epoch's ETA window."""
        self._start_eval(runner.test_dataloader)

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Record ``'val/data_time'``."""
        runner.message_hub.update_scalar("val/data_time", perf_counter() - self._last)

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Record ``'test/data_time'``."""
        runner.message_hub.update_scalar("test/data_time", perf_counter() - self._last)

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Record ``'val/time'`` and the validation ETA."""
        self._after_eval_iter(runner, batch_idx, "val/time")

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Record ``'test/time'`` and the test ETA."""
        self._after_eval_iter(runner, batch_idx, "test/time")

    # --- helpers ---------------------------------------------------------------------

    def _bind(self, runner: Any) -> tuple[Callable[..., None], Callable[..., None]]:
        hub = runner.message_hub
        self._iters_left = runner.max_iters - runner.iter
        self._time_total = 0.0
        self._count = 0
        bound = (hub.update_scalar, hub.update_info)
        self._bound = bound
        return bound

    def _start_eval(self, dataloader: Any) -> None:
        self._eval_total = 0.0
        self._eval_count = 0
        try:
            self._eval_length = len(dataloader)
        except TypeError:  # None, or an iterable without a length
            self._eval_length = None
        self._last = perf_counter()

    def _after_eval_iter(self, runner: Any, batch_idx: int, key: str) -> None:
        now = perf_counter()
        elapsed = now - self._last
        self._last = now
        hub = runner.message_hub
        hub.update_scalar(key, elapsed)
        self._eval_total += elapsed
        self._eval_count += 1
        if self._eval_length is not None:
            mean = self._eval_total / self._eval_count
            hub.update_info("eta", mean * max(self._eval_length - batch_idx - 1, 0))
