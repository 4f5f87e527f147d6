"""The :class:`Hook` base class: 22 no-op stages and the helpers hooks use to decide when to act.

A hook subclasses :class:`Hook` and overrides only the stages it needs; the dispatcher
calls a hook only at the stages it overrides (see :meth:`Hook.get_triggered_stages`), so
an unused stage costs nothing. The stage names and signatures are MMEngine's, so a
hook written for MMEngine runs unchanged.

The helpers read four runner attributes, listed in :class:`HookRunner`; the stages
receive the full runner, typed loosely because each hook documents what it touches.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, ClassVar, Protocol

from camshaft.runner.hooks._priority import Priority

__all__ = ["Hook", "HookRunner"]

_DataBatch = dict[str, Any] | tuple[Any, ...] | list[Any] | None


class HookRunner(Protocol):
    """The runner attributes the :class:`Hook` helpers read.

    Attributes:
        epoch: Training epochs completed so far (0 during the first epoch).
        iter: Training iterations completed so far (0 during the first iteration).
        max_epochs: The length of the run in epochs.
        max_iters: The length of the run in iterations.
    """

    epoch: int
    iter: int
    max_epochs: int
    max_iters: int


class Hook:
    """Base class of hooks: every stage is a no-op until a subclass overrides it.

    Attributes:
        priority: When this hook runs relative to others at the same stage: an int
            0-100, a :class:`Priority` member or its name (default ``'NORMAL'``).
            ``HookDispatcher.register(hook, priority=...)`` overrides it.
        stages: The 22 stage names, in the order a run reaches them.

    Example:
        >>> class CountIters(Hook):
        ...     priority = 'LOW'
        ...     def __init__(self) -> None:
        ...         self.count = 0
        ...     def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ...         self.count += 1
        >>> CountIters().get_triggered_stages()
        ['after_train_iter']
    """

    priority: int | str | Priority = "NORMAL"
    stages: ClassVar[tuple[str, ...]] = (
        "before_run",
        "after_load_checkpoint",
        "before_train",
        "before_train_epoch",
        "before_train_iter",
        "after_train_iter",
        "after_train_epoch",
        "before_val",
        "before_val_epoch",
        "before_val_iter",
        "after_val_iter",
        "after_val_epoch",
        "after_val",
        "before_save_checkpoint",
        "after_train",
        "before_test",
        "before_test_epoch",
        "before_test_iter",
        "after_test_iter",
        "after_test_epoch",
        "after_test",
        "after_run",
    )

    # --- whole run --------------------------------------------------------------

    def before_run(self, runner: Any) -> None:
        """Called once, before anything else runs."""

    def after_run(self, runner: Any) -> None:
        """Called once, after everything else has run."""

    def before_train(self, runner: Any) -> None:
        """Called before the training loop starts."""

    def after_train(self, runner: Any) -> None:
        """Called after the training loop ends."""

    def before_val(self, runner: Any) -> None:
        """Called before each validation loop."""

    def after_val(self, runner: Any) -> None:
        """Called after each validation loop."""

    def before_test(self, runner: Any) -> None:
        """Called before the test loop."""

    def after_test(self, runner: Any) -> None:
        """Called after the test loop."""

    # --- checkpoints -------------------------------------------------------------

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Called with the checkpoint dict before it is written; may add entries to it."""

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Called with the checkpoint dict after it was loaded; may read entries from it."""

    # --- epochs ------------------------------------------------------------------

    def before_train_epoch(self, runner: Any) -> None:
        """Called before each training epoch."""

    def before_val_epoch(self, runner: Any) -> None:
        """Called before each validation epoch."""

    def before_test_epoch(self, runner: Any) -> None:
        """Called before the test epoch."""

    def after_train_epoch(self, runner: Any) -> None:
        """Called after each training epoch."""

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Called after each validation epoch with the evaluated ``metrics``."""

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Called after the test epoch with the evaluated ``metrics``."""

    # --- iterations --------------------------------------------------------------

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Called before each training iteration with its index in the epoch and its batch."""

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Called before each validation iteration with its index and batch."""

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Called before each test iteration with its index and batch."""

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Called after each training iteration with its index, batch and logged outputs."""

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Called after each validation iteration with its index, batch and predictions."""

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Called after each test iteration with its index, batch and predictions."""

    # --- helpers -----------------------------------------------------------------

    def every_n_epochs(self, runner: HookRunner, n: int, start: int = 0) -> bool:
        """Whether the epoch now ending is one of every ``n`` epochs, counted from ``start``.

        Args:
            runner: Read for ``runner.epoch``.
            n: The period in epochs; a value <= 0 never triggers.
            start: Epochs to skip before the counting begins.

        Returns:
            True when ``runner.epoch + 1 - start`` is a non-negative multiple of ``n``.

        Example:
            >>> from types import SimpleNamespace
            >>> Hook().every_n_epochs(SimpleNamespace(epoch=3), 2)
            True
        """
        passed = runner.epoch + 1 - start
        return n > 0 and passed >= 0 and passed % n == 0

    def every_n_inner_iters(self, batch_idx: int, n: int) -> bool:
        """Whether iteration ``batch_idx`` (0-based, within the epoch) ends a group of ``n``.

        Args:
            batch_idx: The iteration's index in its epoch.
            n: The period in iterations; a value <= 0 never triggers.

        Returns:
            True when ``batch_idx + 1`` is a multiple of ``n``.

        Example:
            >>> Hook().every_n_inner_iters(9, 5)
            True
        """
        return n > 0 and (batch_idx + 1) % n == 0

    def every_n_train_iters(self, runner: HookRunner, n: int, start: int = 0) -> bool:
        """Whether the training iteration now ending is one of every ``n``, counted from ``start``.

        Args:
            runner: Read for ``runner.iter``.
            n: The period in iterations; a value <= 0 never triggers.
            start: Iterations to skip before the counting begins.

        Returns:
            True when ``runner.iter + 1 - start`` is a non-negative multiple of ``n``.

        Example:
            >>> from types import SimpleNamespace
            >>> Hook().every_n_train_iters(SimpleNamespace(iter=9), 5)
            True
        """
        passed = runner.iter + 1 - start
        return n > 0 and passed >= 0 and passed % n == 0

    def end_of_epoch(self, dataloader: Sized, batch_idx: int) -> bool:
        """Whether ``batch_idx`` is the last batch of ``dataloader``.

        Args:
            dataloader: Any sized iterable; ``len()`` is read on each call.
            batch_idx: The iteration's index in its epoch.

        Returns:
            True when ``batch_idx + 1 == len(dataloader)``.

        Example:
            >>> Hook().end_of_epoch([0, 1, 2], 2)
            True
        """
        return batch_idx + 1 == len(dataloader)

    def is_last_train_epoch(self, runner: HookRunner) -> bool:
        """Whether the epoch now running is the last one (``runner.epoch + 1 == max_epochs``).

        Example:
            >>> from types import SimpleNamespace
            >>> Hook().is_last_train_epoch(SimpleNamespace(epoch=4, max_epochs=5))
            True
        """
        return runner.epoch + 1 == runner.max_epochs

    def is_last_train_iter(self, runner: HookRunner) -> bool:
        """Whether the iteration now running is the last one (``runner.iter + 1 == max_iters``).

        Example:
            >>> from types import SimpleNamespace
            >>> Hook().is_last_train_iter(SimpleNamespace(iter=99, max_iters=100))
            True
        """
        return runner.iter + 1 == runner.max_iters

    def get_triggered_stages(self) -> list[str]:
        """Return the stages this hook's class overrides, in the order a run reaches them.

        A stage counts as overridden when the class's function for it is not
        :class:`Hook`'s own; a function assigned on the instance does not count.

        The dispatcher asks when the hook is registered and again after every
        ``before_train`` stage. A subclass may leave out a stage it overrides when,
        for the run being prepared, the stage has nothing to do (``CheckpointHook``
        saving by epoch leaves out ``after_train_iter``); it is then not called there.

        Returns:
            Stage names from :attr:`stages`.

        Example:
            >>> class Saver(Hook):
            ...     def before_save_checkpoint(self, runner, checkpoint):
            ...         checkpoint['extra'] = 1
            >>> Saver().get_triggered_stages()
            ['before_save_checkpoint']
        """
        # Read the class dicts along the MRO instead of two getattr calls per stage: the
        # first class defining a stage is the one getattr would find.
        found: dict[str, object] = {}
        for klass in type(self).__mro__:
            if klass is Hook:
                break
            for name, value in klass.__dict__.items():
                if name in _STAGE_SET and name not in found:
                    found[name] = value
        return [
            stage for stage in Hook.stages if stage in found and found[stage] is not _BASE[stage]
        ]


_STAGE_SET = frozenset(Hook.stages)
# Hook's own stage functions, as its class dict holds them (what getattr returns too).
_BASE = {stage: Hook.__dict__[stage] for stage in Hook.stages}
