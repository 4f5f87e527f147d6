"""A stand-in Runner for the default-hook tests, and a loop that drives hooks in MMEngine's order.

:class:`FakeRunner` has the attributes of the runner contract (notes/runner_contract.md)
that the default hooks touch, built from real parts wherever one exists: a real
``MessageHub`` and ``MMLogger`` (unique names per runner), a real ``LogProcessor``, a
real ``OptimWrapper`` (or ``OptimWrapperDict``) over a tiny model, real schedulers,
real DataLoaders over a ``DefaultSampler``. Only the visualizer is a recorder, and
``save_checkpoint`` writes a tiny dict with ``torch.save`` (plus the
``last_checkpoint`` pointer when asked) and records each call.

:func:`train` and :func:`evaluate` call the hook stages in the order the training and
evaluation loops do, through a real :class:`HookDispatcher`, so a hook's failure
surfaces as a ``HookError`` whose ``__cause__`` is the original exception.

The tests import this module as ``_fake_runner`` (conftest.py registers it), since
pytest runs with ``--import-mode=importlib``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from camshaft.registry import Config
from camshaft.runner.checkpoint import write_last_checkpoint
from camshaft.runner.data import DefaultSampler
from camshaft.runner.hooks import Hook, HookDispatcher
from camshaft.runner.logging import LogProcessor, MessageHub, MMLogger
from camshaft.runner.optim import OptimWrapper, OptimWrapperDict, build_param_schedulers

Metrics = Mapping[str, Any]


class ToyDataset(Dataset[int]):
    """``n`` integers; ``metainfo`` only when given (as MMEngine datasets have it)."""

    def __init__(self, n: int, metainfo: Mapping[str, Any] | None = None) -> None:
        self.n = n
        if metainfo is not None:
            self.metainfo = dict(metainfo)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


class FakeVisualizer:
    """Records ``add_scalars`` calls as ``(dict, step)`` and counts ``close()``."""

    def __init__(self) -> None:
        self.scalars: list[tuple[dict[str, Any], int]] = []
        self.closed = 0

    def add_scalars(self, scalar_dict: Mapping[str, Any], step: int = 0, **kwargs: Any) -> None:
        self.scalars.append((dict(scalar_dict), step))

    def add_config(self, config: Any) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


class FakeTrainLoop:
    """The train-loop attributes hooks read."""

    def __init__(self, dataloader: Any, by_epoch: bool, max_epochs: int, max_iters: int) -> None:
        self.dataloader = dataloader
        self.by_epoch = by_epoch
        self.max_epochs = max_epochs
        self.max_iters = max_iters
        self.stop_training = False
        self.val_interval = 1
        self.val_begin = 1


class FakeEvalLoop:
    """The validation/test-loop attributes hooks read."""

    def __init__(self, dataloader: Any) -> None:
        self.dataloader = dataloader
        self.evaluator = None


@dataclass
class SavedCheckpoint:
    """One ``save_checkpoint`` call."""

    path: Path
    save_optimizer: bool
    save_param_scheduler: bool
    meta: dict[str, Any] | None
    by_epoch: bool
    update_pointer: bool


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class FakeRunner:
    """The runner attributes of the contract, from real parts (see the module docstring).

    Args:
        work_dir: The run's directory (``tmp_path``).
        by_epoch: Epoch-based (True) or iteration-based training.
        max_epochs: Epochs of an epoch-based run.
        max_iters: Iterations of an iteration-based run (default: 3 epochs' worth).
        batches: Training batches per epoch (batch size 2).
        val_batches: Validation and test batches.
        optim: ``'single'`` (OptimWrapper, two param groups: lr 0.1 and 0.01) or
            ``'dict'`` (OptimWrapperDict ``gen`` lr 0.2, ``disc`` lr 0.02).
        schedulers: A ``param_scheduler`` config (list or dict) or None.
        metainfo: The train dataset's ``metainfo``, or None for none.
        rank: ``runner.rank``.
    """

    def __init__(
        self,
        work_dir: str | Path,
        *,
        by_epoch: bool = True,
        max_epochs: int = 3,
        max_iters: int | None = None,
        batches: int = 4,
        val_batches: int = 2,
        optim: str = "single",
        schedulers: Any = None,
        metainfo: Mapping[str, Any] | None = None,
        rank: int = 0,
    ) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(2, 1)
        self.unwrapped_model = self.model
        self.epoch = 0
        self.iter = 0
        dataset = ToyDataset(2 * batches, metainfo)
        sampler = DefaultSampler(dataset, seed=0, rank=0, world_size=1)
        self.train_dataloader: Any = DataLoader(dataset, batch_size=2, sampler=sampler)
        self.val_dataloader: Any = DataLoader(ToyDataset(2 * val_batches), batch_size=2)
        self.test_dataloader: Any = DataLoader(ToyDataset(2 * val_batches), batch_size=2)
        total_iters = max_iters if max_iters is not None else 3 * batches
        self.train_loop: Any = FakeTrainLoop(
            self.train_dataloader,
            by_epoch,
            max_epochs if by_epoch else 1,
            max_epochs * batches if by_epoch else total_iters,
        )
        self.val_loop: Any = FakeEvalLoop(self.val_dataloader)
        self.test_loop: Any = FakeEvalLoop(self.test_dataloader)
        self.optim_wrapper: Any = self._build_optim(optim)
        self.param_schedulers: Any = (
            None
            if schedulers is None
            else build_param_schedulers(
                self.optim_wrapper,
                schedulers,
                epoch_length=batches,
                max_epochs=max_epochs,
                max_iters=self.train_loop.max_iters,
            )
        )
        self.message_hub = MessageHub.get_instance(_unique("test-hub"))
        self.logger = MMLogger.get_instance(_unique("test-logger"))
        self.log_processor = LogProcessor(window_size=10, by_epoch=by_epoch)
        self.visualizer = FakeVisualizer()
        self.work_dir = str(work_dir)
        self.timestamp = "20260101_000000"
        self.log_dir = str(Path(work_dir) / self.timestamp)
        self.experiment_name = "fake-experiment"
        self.cfg = Config(dict(model=dict(type="Linear"), seed=42))
        self.seed = 42
        self.rank = rank
        self.world_size = 1
        self.distributed = False
        self.saved: list[SavedCheckpoint] = []
        self._dispatcher = HookDispatcher()

    def _build_optim(self, kind: str) -> Any:
        if kind == "single":
            groups = [
                {"params": [self.model.weight], "lr": 0.1},
                {"params": [self.model.bias], "lr": 0.01},
            ]
            return OptimWrapper(torch.optim.SGD(groups, lr=0.1))
        if kind == "dict":
            gen = torch.nn.Linear(2, 2)
            return OptimWrapperDict(
                gen=OptimWrapper(torch.optim.SGD(gen.parameters(), lr=0.2)),
                disc=OptimWrapper(torch.optim.SGD(self.model.parameters(), lr=0.02)),
            )
        raise ValueError(f"optim must be 'single' or 'dict', got {kind!r}")

    # --- the contract ------------------------------------------------------------------

    @property
    def max_epochs(self) -> int:
        return 0 if self.train_loop is None else int(self.train_loop.max_epochs)

    @property
    def max_iters(self) -> int:
        return 0 if self.train_loop is None else int(self.train_loop.max_iters)

    @property
    def hooks(self) -> list[Hook]:
        return list(self._dispatcher.hooks)

    def register_hook(self, hook: Hook, priority: Any = None) -> None:
        self._dispatcher.register(hook, priority=priority)

    def call_hook(self, stage: str, **kwargs: Any) -> None:
        self._dispatcher.call(stage, self, **kwargs)

    def save_checkpoint(
        self,
        out_dir: str | Path,
        filename: str,
        *,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
        update_pointer: bool = True,
        asynchronous: bool = False,  # this double always writes inline
        background_sync: bool = False,  # ... and syncs inline
    ) -> Path:
        path = Path(out_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"meta": dict(meta or {}), "epoch": self.epoch, "iter": self.iter}, path)
        self.saved.append(
            SavedCheckpoint(
                path,
                save_optimizer,
                save_param_scheduler,
                None if meta is None else dict(meta),
                by_epoch,
                update_pointer,
            )
        )
        if update_pointer:
            write_last_checkpoint(self.work_dir, path)
        return path

    # --- helpers for tests -------------------------------------------------------------

    def saved_names(self) -> list[str]:
        """The file names passed to ``save_checkpoint``, in order."""
        return [saved.path.name for saved in self.saved]


def default_outputs(runner: FakeRunner, batch_idx: int) -> dict[str, Any]:
    """What a train step logs: a tensor loss that falls with the iteration, and a float."""
    return {"loss": torch.tensor(1.0 / (runner.iter + 1)), "acc": 0.5}


def train(
    runner: FakeRunner,
    *,
    metrics: Callable[[FakeRunner], Metrics | None] | Sequence[Metrics] | None = None,
    val_interval: int = 1,
    outputs: Callable[[FakeRunner, int], Any] = default_outputs,
) -> None:
    """Run the training stages as the loops do; validate every ``val_interval``.

    ``metrics``: a function of the runner giving each validation's metrics, or a
    list consumed one validation at a time; None skips validation.
    """
    pending = list(metrics) if isinstance(metrics, Sequence) else None

    def next_metrics() -> Metrics | None:
        if pending is not None:
            return pending.pop(0)
        return metrics(runner) if callable(metrics) else None

    call = runner.call_hook
    loop = runner.train_loop
    call("before_train")
    if loop.by_epoch:
        while runner.epoch < runner.max_epochs and not loop.stop_training:
            call("before_train_epoch")
            for batch_idx, batch in enumerate(runner.train_dataloader):
                call("before_train_iter", batch_idx=batch_idx, data_batch=batch)
                result = outputs(runner, batch_idx)
                call("after_train_iter", batch_idx=batch_idx, data_batch=batch, outputs=result)
                runner.iter += 1
            call("after_train_epoch")
            runner.epoch += 1
            if metrics is not None and runner.epoch % val_interval == 0:
                evaluate(runner, "val", next_metrics())
    else:
        call("before_train_epoch")
        while runner.iter < runner.max_iters and not loop.stop_training:
            batch = [runner.iter]
            call("before_train_iter", batch_idx=runner.iter, data_batch=batch)
            result = outputs(runner, runner.iter)
            call("after_train_iter", batch_idx=runner.iter, data_batch=batch, outputs=result)
            runner.iter += 1
            if metrics is not None and runner.iter % val_interval == 0:
                evaluate(runner, "val", next_metrics())
        call("after_train_epoch")
    call("after_train")


def evaluate(runner: FakeRunner, mode: str, metrics: Metrics | None) -> None:
    """Run the validation (``mode='val'``) or test stages with ``metrics`` at the end."""
    call = runner.call_hook
    loader = runner.val_dataloader if mode == "val" else runner.test_dataloader
    call(f"before_{mode}")
    call(f"before_{mode}_epoch")
    for batch_idx, batch in enumerate(loader):
        call(f"before_{mode}_iter", batch_idx=batch_idx, data_batch=batch)
        call(f"after_{mode}_iter", batch_idx=batch_idx, data_batch=batch, outputs=[batch])
    call(f"after_{mode}_epoch", metrics=None if metrics is None else dict(metrics))
    call(f"after_{mode}")
