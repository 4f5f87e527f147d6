"""The training loops: by epoch and by iteration, both resumable at any iteration.

Counters follow MMEngine: during the hooks of an iteration, ``loop.iter`` is the
number of iterations completed *before* it (so ``iter_{runner.iter + 1}.pth`` names
the checkpoint written after it), and ``loop.epoch`` likewise. The position saved in
a checkpoint is separate and exact: iterations and epochs truly finished, the
batches consumed in the current epoch and the sampler's own position — so a run
killed after any iteration resumes without replaying or skipping a batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch.utils.data import DataLoader

from camshaft.runner._registry import LOOPS
from camshaft.runner.loops._base import (
    BaseLoop,
    iterate_without_rng,
    resumable_sampler,
    train_iteration_callers,
)

__all__ = ["EpochBasedTrainLoop", "IterBasedTrainLoop"]


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    return value


class _TrainLoop(BaseLoop):
    """State and iteration shared by both training loops."""

    by_epoch: bool

    def __init__(
        self,
        runner: Any,
        dataloader: DataLoader | Mapping[str, Any],
        val_begin: int,
        val_interval: int,
    ) -> None:
        super().__init__(runner, dataloader)
        self.val_begin = _positive("val_begin", val_begin)
        self.val_interval = _positive("val_interval", val_interval)
        self.stop_training = False
        self._epoch = 0
        self._iter = 0
        self._batch_in_epoch = 0
        self._sampler = resumable_sampler(self.dataloader)
        batch_size = getattr(self.dataloader.batch_sampler, "batch_size", None)
        self._batch_size: int | None = batch_size if isinstance(batch_size, int) else None
        self._skip_batches = 0
        self._stepped = False  # True between train_step and the end of after_train_iter
        # Bound by run() for the iterations of one run: see train_iteration_callers().
        self._iteration_callers: tuple[Callable[..., None], Callable[..., None]] | None = None
        self._optim_wrapper: Any = None

    @property
    def epoch(self) -> int:
        """Epochs completed before the current one."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Iterations completed before the current one."""
        return self._iter

    def run_iter(self, batch_idx: int, data_batch: Any) -> None:
        """One training iteration: hooks around ``model.train_step``."""
        runner = self._runner
        before, after = self._iteration_callers or train_iteration_callers(runner)
        before(batch_idx, data_batch)
        optim_wrapper = self._optim_wrapper or runner.optim_wrapper
        outputs = runner.model.train_step(data_batch, optim_wrapper=optim_wrapper)
        self._batch_in_epoch += 1
        if self._sampler is not None and self._batch_size is not None:
            self._sampler.advance(self._batch_size)
        self._stepped = True
        after(batch_idx, data_batch, outputs)
        self._stepped = False
        self._iter += 1

    def _bind_run(self) -> None:
        """Bind what every iteration of this run calls (two calls fewer per iteration)."""
        runner = self._runner
        self._iteration_callers = train_iteration_callers(runner)
        self._optim_wrapper = runner.optim_wrapper

    def _unbind_run(self) -> None:
        self._iteration_callers = self._optim_wrapper = None

    def _batches(self) -> Iterator[Any]:
        """This epoch's remaining batches, from the saved position after a resume."""
        iterator = iterate_without_rng(self.dataloader)
        skip, self._skip_batches = self._skip_batches, 0
        for _ in range(skip):  # only for samplers that cannot seek
            next(iterator, None)
        return iterator

    # --- checkpoint state ---------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The exact position, as plain data: see the module docstring."""
        sampler = None if self._sampler is None else self._sampler.state_dict()
        return {
            "epoch": self._finished_epochs(),
            "iter": self._finished_iters(),
            "batch_in_epoch": self._batch_in_epoch,
            "sampler": sampler,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; the next batch is the one after it."""
        self._epoch = int(state["epoch"])
        self._iter = int(state["iter"])
        self._batch_in_epoch = int(state.get("batch_in_epoch", 0))
        sampler_state = state.get("sampler")
        if self._sampler is not None and sampler_state is not None:
            self._sampler.load_state_dict(sampler_state)
        elif self._batch_in_epoch:
            warnings.warn(
                "the train sampler cannot seek (use DefaultSampler/InfiniteSampler for "
                f"exact resume); skipping {self._batch_in_epoch} batches by loading them",
                UserWarning,
                stacklevel=2,
            )
            self._skip_batches = self._batch_in_epoch

    def _finished_iters(self) -> int:
        # Inside after_train_iter the current iteration is done but not yet counted.
        return self._iter + 1 if self._stepped else self._iter

    def _finished_epochs(self) -> int:
        return self._epoch


@LOOPS.register_module()
class EpochBasedTrainLoop(_TrainLoop):
    """Train for ``max_epochs`` epochs, validating every ``val_interval`` epochs.

    Args:
        runner: The runner.
        dataloader: A DataLoader or its config.
        max_epochs: Epochs to train.
        val_begin: The first epoch after which validation runs.
        val_interval: Validate every this many epochs (and after the last).

    Example:
        >>> # built by the Runner from train_cfg=dict(by_epoch=True, max_epochs=3)
    """

    by_epoch = True

    def __init__(
        self,
        runner: Any,
        dataloader: DataLoader | Mapping[str, Any],
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
    ) -> None:
        super().__init__(runner, dataloader, val_begin, val_interval)
        self._max_epochs = _positive("max_epochs", max_epochs)
        self._epoch_done = False

    @property
    def max_epochs(self) -> int:
        """Epochs to train."""
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        """``max_epochs`` times the batches per epoch."""
        return self._max_epochs * len(self.dataloader)

    def run(self) -> Any:
        """Train until ``max_epochs`` or until a hook sets ``stop_training``."""
        runner = self._runner
        runner.call_hook("before_train")
        self._bind_run()
        try:
            while self._epoch < self._max_epochs and not self.stop_training:
                self.run_epoch()
                if self._should_validate():
                    runner.val_loop.run()
        finally:
            self._unbind_run()
        _wait_for_checkpoints(runner)
        runner.call_hook("after_train")
        return runner.model

    def run_epoch(self) -> None:
        """Train one epoch (the rest of it, after a mid-epoch resume)."""
        runner = self._runner
        if self._sampler is not None:
            self._sampler.set_epoch(self._epoch)
        runner.call_hook("before_train_epoch")
        runner.model.train()
        run_iter = self.run_iter
        for batch_idx, data_batch in enumerate(self._batches(), start=self._batch_in_epoch):
            run_iter(batch_idx, data_batch)
        self._epoch_done = True
        runner.call_hook("after_train_epoch")
        self._epoch_done = False
        self._epoch += 1
        self._batch_in_epoch = 0

    def _finished_epochs(self) -> int:
        return self._epoch + 1 if self._epoch_done else self._epoch

    def state_dict(self) -> dict[str, Any]:
        """The exact position; after a finished epoch, the start of the next one."""
        state = super().state_dict()
        if self._epoch_done:
            state["batch_in_epoch"] = 0
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        super().load_state_dict(state)
        if self._sampler is not None and state.get("batch_in_epoch", 0) == 0:
            self._sampler.set_epoch(self._epoch)

    def validates_after(self, epochs: int) -> bool:
        """Whether validation runs once ``epochs`` epochs are finished.

        Args:
            epochs: A count of finished epochs.
        """
        if self._runner.val_loop is None:
            return False
        return epochs >= self.val_begin and (
            epochs % self.val_interval == 0 or epochs == self._max_epochs
        )

    def _should_validate(self) -> bool:
        return self.validates_after(self._epoch)


@LOOPS.register_module()
class IterBasedTrainLoop(_TrainLoop):
    """Train for ``max_iters`` iterations, validating every ``val_interval`` of them.

    The dataloader is read as an endless stream: with an ``InfiniteSampler`` it never
    ends; with an epoch sampler, a new pass starts (``set_epoch``) when one ends.

    Args:
        runner: The runner.
        dataloader: A DataLoader or its config.
        max_iters: Iterations to train.
        val_begin: The first iteration after which validation runs.
        val_interval: Validate every this many iterations (and after the last).
    """

    by_epoch = False

    def __init__(
        self,
        runner: Any,
        dataloader: DataLoader | Mapping[str, Any],
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
    ) -> None:
        super().__init__(runner, dataloader, val_begin, val_interval)
        self._max_iters = _positive("max_iters", max_iters)

    @property
    def max_epochs(self) -> int:
        """Always 1: an iteration-based run is one long epoch, as in MMEngine."""
        return 1

    @property
    def max_iters(self) -> int:
        """Iterations to train."""
        return self._max_iters

    def run(self) -> Any:
        """Train until ``max_iters`` or until a hook sets ``stop_training``."""
        runner = self._runner
        runner.call_hook("before_train")
        runner.call_hook("before_train_epoch")
        runner.model.train()
        batches = self._stream()
        self._bind_run()
        try:
            while self._iter < self._max_iters and not self.stop_training:
                data_batch = next(batches)
                self.run_iter(self._iter, data_batch)
                if self._should_validate():
                    runner.val_loop.run()
                    runner.model.train()
        finally:
            self._unbind_run()
        runner.call_hook("after_train_epoch")
        _wait_for_checkpoints(runner)
        runner.call_hook("after_train")
        return runner.model

    def _stream(self) -> Iterator[Any]:
        while True:
            if self._sampler is not None:
                self._sampler.set_epoch(self._epoch)
            yield from self._batches()
            self._epoch += 1  # a pass over a finite sampler ended
            self._batch_in_epoch = 0

    def validates_after(self, iters: int) -> bool:
        """Whether validation runs once ``iters`` iterations are finished.

        Args:
            iters: A count of finished iterations.
        """
        if self._runner.val_loop is None:
            return False
        return iters >= self.val_begin and (
            iters % self.val_interval == 0 or iters == self._max_iters
        )

    def _should_validate(self) -> bool:
        return self.validates_after(self._iter)


def _wait_for_checkpoints(runner: Any) -> None:
    """``after_train`` hooks may read the checkpoints: let queued writes finish first."""
    wait = getattr(runner, "wait_for_checkpoint_writes", None)
    if wait is not None:  # runners without background writes (test doubles) have none
        wait()
