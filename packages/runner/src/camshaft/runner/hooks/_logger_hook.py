"""LoggerHook: write the log lines, feed the visualizer, and draw the epoch progress bar.

Every ``interval`` training iterations it asks ``runner.log_processor`` for the line
and the tag dict, writes the line with ``runner.logger.info`` and the tags with
``runner.visualizer.add_scalars(tag, step=runner.iter + 1)``. In an epoch-based run
the interval counts iterations within the epoch (``Epoch(train) [3][ 40/100]``) and the
epoch's last iteration is logged too unless ``ignore_last``; in an iteration-based run
it counts iterations since the start, and the run's last iteration is the one
``ignore_last`` is about. Validation and test iterations are logged every ``interval``
batches, and each evaluation epoch ends with a summary line of its metrics.

On an interactive terminal it can also draw a live progress bar per training epoch
(``progress_bar='auto'``, with the optional ``rich`` package), updated after each
iteration with the iteration's loss; the periodic log lines are written either way.
The decisions are made once, in ``before_train`` and ``before_train_epoch``, so an
iteration that writes nothing costs no call beyond the hook's own (plus the bar's
``update`` when a bar is drawn).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook, _DataBatch

__all__ = ["LoggerHook"]

PROGRESS_MODULE = "camshaft.runner.visualization._progress"
"""The module providing ``progress_wanted`` and ``EpochProgressBar``, imported on first use."""


def _progress_module() -> ModuleType | None:
    """The progress-bar module, or None when it (or what it needs) cannot be imported."""
    try:
        return importlib.import_module(PROGRESS_MODULE)
    except ImportError:
        return None


def _length(loader: Any, mode: str) -> int:
    """``len(loader)``; a ValueError naming ``runner.<mode>_dataloader`` when it has none."""
    try:
        return len(loader)
    except TypeError:
        raise ValueError(
            f"runner.{mode}_dataloader is {'None' if loader is None else 'not sized'}; "
            f"LoggerHook needs its length for the {mode!r} summary line"
        ) from None


@HOOKS.register_module()
class LoggerHook(Hook):
    """Log training, validation and test progress at a fixed interval.

    Args:
        interval: Log every this many iterations. Defaults to 10.
        ignore_last: Skip the epoch's last iteration when it does not fall on the
            interval (in an iteration-based run: the run's last iteration).
            Defaults to True.
        log_metric_by_epoch: Give validation metrics to the visualizer at
            ``step=runner.epoch`` (when training is epoch-based; timing scalars are
            then left out, as they are stepped by iteration), else at
            ``step=runner.iter``. Defaults to True.
        progress_bar: ``'auto'`` draws a live bar per training epoch when
            ``progress_wanted()`` says the console is an interactive terminal with
            ``rich`` installed (rank 0 only); True draws it whenever the bar module
            can be imported (a warning is logged when it cannot); False never.
            Defaults to ``'auto'``.

    Raises:
        ValueError: ``interval`` is not a positive int, or ``progress_bar`` is not
            ``'auto'``, True or False.
        TypeError: ``ignore_last`` or ``log_metric_by_epoch`` is not a bool.

    Example:
        >>> from camshaft.runner.hooks._logger_hook import LoggerHook
        >>> hook = LoggerHook(interval=50, progress_bar=False)
        >>> # in a config: default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
    """

    priority = "BELOW_NORMAL"

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = True,
        log_metric_by_epoch: bool = True,
        progress_bar: bool | str = "auto",
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(
                f"LoggerHook: `interval` must be a positive int (log every N iterations), "
                f"got {interval!r}"
            )
        for name, value in (
            ("ignore_last", ignore_last),
            ("log_metric_by_epoch", log_metric_by_epoch),
        ):
            if not isinstance(value, bool):
                raise TypeError(
                    f"LoggerHook: `{name}` must be a bool, got {type(value).__name__}: {value!r}"
                )
        if not (progress_bar == "auto" or isinstance(progress_bar, bool)):
            raise ValueError(
                "LoggerHook: `progress_bar` must be 'auto' (draw a bar on an interactive "
                f"terminal), True or False; got {progress_bar!r}"
            )
        self.interval = interval
        self.ignore_last = ignore_last
        self.log_metric_by_epoch = log_metric_by_epoch
        self.progress_bar = progress_bar
        # Decided in before_train / before_train_epoch.
        self._by_epoch: bool | None = None  # None: training not prepared yet
        self._max_iters = 0
        self._epoch_length: int | None = None
        self._bar_factory: Any = None  # EpochProgressBar when bars are drawn
        self._bar: Any = None  # the bar of the running epoch

    # --- training --------------------------------------------------------------------

    def before_train(self, runner: Any) -> None:
        """Read whether training is epoch-based, and decide whether to draw bars."""
        self._prepare(runner)
        self._bar_factory = self._choose_bar(runner)

    def before_train_epoch(self, runner: Any) -> None:
        """Note the epoch's length; open the epoch's progress bar when bars are drawn."""
        if self._by_epoch is None:
            self._prepare(runner)
        loader = runner.train_dataloader
        try:
            self._epoch_length = len(loader)
        except TypeError:  # no dataloader, or an iterable without a length
            self._epoch_length = None
        self._close_bar()
        factory = self._bar_factory
        if factory is not None:
            if self._by_epoch:
                total, description = self._epoch_length, f"Epoch {runner.epoch + 1}"
            else:
                total, description = self._max_iters, "Train"
            self._bar = factory(total=total, description=description)

    def after_train_iter(
        self,
        runner: Any,
        batch_idx: int,
        data_batch: _DataBatch = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Update the bar; every ``interval`` iterations write the line and the tags."""
        by_epoch = self._by_epoch
        if by_epoch is None:
            by_epoch = self._prepare(runner)
        if by_epoch:
            count = batch_idx + 1
            last = count == self._epoch_length
        else:
            count = runner.iter + 1
            last = count == self._max_iters
        bar = self._bar
        if bar is not None:
            self._update_bar(bar, count, outputs)
        if count % self.interval and not (last and not self.ignore_last):
            return
        tag, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "train")
        runner.logger.info(line)
        runner.visualizer.add_scalars(tag, step=runner.iter + 1)

    def after_train_epoch(self, runner: Any) -> None:
        """Close the epoch's progress bar."""
        self._close_bar()

    def after_train(self, runner: Any) -> None:
        """Close a progress bar still open (training stopped mid-epoch)."""
        self._close_bar()

    # --- evaluation ------------------------------------------------------------------

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Every ``interval`` batches, write the validation line."""
        if (batch_idx + 1) % self.interval == 0:
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "val")
            runner.logger.info(line)

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Every ``interval`` batches, write the test line."""
        if (batch_idx + 1) % self.interval == 0:
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "test")
            runner.logger.info(line)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Write the validation summary and give its tags to the visualizer.

        The step is ``runner.epoch`` when ``log_metric_by_epoch`` and training is
        epoch-based (timing tags left out), else ``runner.iter``; 0 outside training.
        """
        tag, line = runner.log_processor.get_log_after_epoch(
            runner, _length(runner.val_dataloader, "val"), "val"
        )
        runner.logger.info(line)
        loop = getattr(runner, "train_loop", None)
        if loop is None:
            runner.visualizer.add_scalars(tag, step=0)
        elif self.log_metric_by_epoch and loop.by_epoch:
            metric_tag = {key: value for key, value in tag.items() if "time" not in key}
            runner.visualizer.add_scalars(metric_tag, step=runner.epoch)
        else:
            runner.visualizer.add_scalars(tag, step=runner.iter)

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Write the test summary, non-scalar metrics included."""
        _, line = runner.log_processor.get_log_after_epoch(
            runner, _length(runner.test_dataloader, "test"), "test", with_non_scalar=True
        )
        runner.logger.info(line)

    def after_run(self, runner: Any) -> None:
        """Close any open bar and the visualizer (its backends flush their files)."""
        self._close_bar()
        runner.visualizer.close()

    # --- helpers ---------------------------------------------------------------------

    def _prepare(self, runner: Any) -> bool:
        loop = getattr(runner, "train_loop", None)
        by_epoch = bool(getattr(loop, "by_epoch", True))
        self._by_epoch = by_epoch
        self._max_iters = runner.max_iters
        return by_epoch

    def _choose_bar(self, runner: Any) -> Any:
        """``EpochProgressBar`` when bars are to be drawn, else None."""
        if self.progress_bar is False or getattr(runner, "rank", 0) != 0:
            return None
        module = _progress_module()
        if module is None:
            if self.progress_bar is True:
                runner.logger.warning(
                    f"LoggerHook(progress_bar=True): cannot import {PROGRESS_MODULE}; "
                    "training goes on without a progress bar"
                )
            return None
        if self.progress_bar == "auto" and not module.progress_wanted():
            return None
        return module.EpochProgressBar

    @staticmethod
    def _update_bar(bar: Any, completed: int, outputs: Mapping[str, Any] | None) -> None:
        loss = None if outputs is None else outputs.get("loss")
        if loss is None:
            bar.update(completed)
        else:
            bar.update(completed, loss=float(loss))

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()
