"""The contenders of ``runner_overhead.py`` (and ``runner_instructions.py``).

The models and synthetic data, the hand-written loop, the probe that stamps each
iteration, and the Runners built as the seeds build them. Besides ``raw``, ``camshaft``
and ``mmengine``, each Runner has two ablations, :data:`ABLATIONS`, that take default
hooks away (``default_hooks=dict(checkpoint=None)``, then also ``logger=None``): the
differences between them say what the per-epoch checkpoint and the log lines cost.
The floors, :data:`FLOORS`, are the raw loop doing by hand the least those two hooks
must do (an atomic, fsynced save each epoch; a log line every ``LOG_INTERVAL``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from time import perf_counter
from types import CodeType
from typing import Any, BinaryIO

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from camshaft.model import BaseModel
from camshaft.runner import Runner
from camshaft.runner.hooks import Hook

BATCH = 64
EPOCHS = 3
LR = 0.01
LOG_INTERVAL = 10  # LoggerHook's default in both Runners


def mmengine_available() -> bool:
    try:
        import mmengine  # noqa: F401
    except ImportError:
        return False
    return True


# --- models, data, the raw loop ------------------------------------------------------------


def mlp(dims: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dims[0], dims[1]), nn.ReLU(), nn.Linear(dims[1], dims[2]))


def mlp_model_class(base: type[nn.Module], name: str) -> type[nn.Module]:
    """The seeds' model on ``base`` (either Runner's BaseModel): a loss dict in 'loss' mode."""

    def __init__(self: Any, dims: tuple[int, int, int]) -> None:
        base.__init__(self)
        self.net = mlp(dims)

    def forward(self: Any, inputs: Any, targets: Any = None, mode: str = "tensor") -> Any:
        out = self.net(inputs)
        if mode == "loss":
            return {"loss": F.cross_entropy(out, targets)}
        return out

    return type(name, (base,), {"__init__": __init__, "forward": forward})


CamshaftMLP = mlp_model_class(BaseModel, "CamshaftMLP")


def mmengine_mlp_class() -> type[nn.Module]:
    from mmengine.model import BaseModel as MMBaseModel

    return mlp_model_class(MMBaseModel, "MMEngineMLP")


def make_dataset(dims: tuple[int, int, int], iters_per_epoch: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    n = BATCH * iters_per_epoch
    inputs = torch.randn(n, dims[0], generator=generator)
    targets = torch.randint(0, dims[2], (n,), generator=generator)
    return TensorDataset(inputs, targets)


def make_loader(dataset: TensorDataset) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH, shuffle=True)


def raw_train(
    model: nn.Module, loader: DataLoader, epochs: int, after_iter: Callable[[], None]
) -> nn.Module:
    """The hand-written baseline: a plain loop, reading the loss every iteration."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    for _ in range(epochs):
        for inputs, targets in loader:
            out = model(inputs)
            loss = F.cross_entropy(out, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            after_iter()
    return model


# The hand-written loop plus the least that the default hooks demand: a
# checkpoint each epoch (model, optimizer, RNG) written atomically with fsync, then
# the last_checkpoint pointer the same way; with logging, also a line through
# `logging` to a file every LOG_INTERVAL iterations. Contender -> whether it logs.
FLOORS: dict[str, bool] = {"raw+ckpt": False, "raw+ckpt+log": True}


def _durable_write(path: str, write: Callable[[BinaryIO], object]) -> None:
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    with open(tmp, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def raw_durable_train(
    model: nn.Module,
    loader: DataLoader,
    epochs: int,
    after_iter: Callable[[], None],
    work_dir: str,
    log: bool,
) -> nn.Module:
    """:func:`raw_train` that also saves each epoch durably and, with ``log``, logs."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    logger = logging.getLogger("bench.raw_durable")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(os.path.join(work_dir, "run.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    if log:
        logger.addHandler(handler)
    try:
        model.train()
        for epoch in range(epochs):
            for batch_idx, (inputs, targets) in enumerate(loader):
                out = model(inputs)
                loss = F.cross_entropy(out, targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                value = loss.item()
                if log and (batch_idx + 1) % LOG_INTERVAL == 0:
                    logger.info(
                        "Epoch(train) [%d][%d/%d]  lr: %.4e  loss: %.4f",
                        *(epoch + 1, batch_idx + 1, len(loader), LR, value),
                    )
                after_iter()
            state = {
                "meta": {"epoch": epoch + 1},
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
            }
            path = os.path.join(work_dir, f"epoch_{epoch + 1}.pth")
            _durable_write(path, functools.partial(torch.save, state))
            pointer = os.path.join(work_dir, "last_checkpoint")
            _durable_write(pointer, operator.methodcaller("write", path.encode()))
    finally:
        logger.removeHandler(handler)
        handler.close()
    return model


# --- the per-iteration probe (timestamps, or the profiler's window) --------------------------


class Stamps:
    """``perf_counter()`` after every iteration, for the intervals inside epochs."""

    def __init__(self) -> None:
        self.times: list[float] = []
        append = self.times.append

        def stamp() -> None:
            append(perf_counter())

        self.stamp = stamp

    def intervals(self, iters_per_epoch: int) -> list[float]:
        """Seconds between consecutive iterations of an epoch (epoch boundaries left out)."""
        times = self.times
        return [
            times[i + 1] - times[i]
            for start in range(0, len(times), iters_per_epoch)
            for i in range(start, min(start + iters_per_epoch, len(times)) - 1)
        ]


class CamshaftProbe(Hook):
    """Calls ``after_iter()`` at the end of every training iteration."""

    def __init__(self, after_iter: Callable[[], None]) -> None:
        self.after_iter = after_iter

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self.after_iter()


def mmengine_probe(after_iter: Callable[[], None]) -> Any:
    from mmengine.hooks import Hook as MMHook

    class MMEngineProbe(MMHook):
        def after_train_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            after_iter()

    return MMEngineProbe()


# --- contenders ---------------------------------------------------------------------------


@dataclass
class Case:
    """One model's data and run length."""

    name: str
    dims: tuple[int, int, int]
    dataset: TensorDataset
    iters_per_epoch: int

    @property
    def iters(self) -> int:
        return EPOCHS * self.iters_per_epoch


@contextlib.contextmanager
def _work_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="runner_overhead_")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# contender -> (the Runner it is, the default hooks it drops)
ABLATIONS: dict[str, tuple[str, dict[str, None]]] = {
    "camshaft-no-ckpt": ("camshaft", {"checkpoint": None}),
    "camshaft-core": ("camshaft", {"checkpoint": None, "logger": None}),
    "mmengine-no-ckpt": ("mmengine", {"checkpoint": None}),
    "mmengine-core": ("mmengine", {"checkpoint": None, "logger": None}),
}


def runner_of(kind: str) -> str:
    """``raw``, ``camshaft`` or ``mmengine``: what ``kind`` (an ablation or floor too) runs."""
    if kind in FLOORS:
        return "raw"
    return ABLATIONS[kind][0] if kind in ABLATIONS else kind


def _runner_kwargs(
    kind: str, model: nn.Module, work_dir: str, loader: DataLoader
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model,
        "work_dir": work_dir,
        "train_dataloader": loader,
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": LR}},
        "train_cfg": {"by_epoch": True, "max_epochs": EPOCHS},
    }
    if kind in ABLATIONS:
        kwargs["default_hooks"] = dict(ABLATIONS[kind][1])
    return kwargs


def build_contender(kind: str, case: Case, work_dir: str) -> tuple[Any, float]:
    """A fresh model and loader; for the Runners also the Runner and its construction time."""
    torch.manual_seed(0)
    loader = make_loader(case.dataset)
    runner = runner_of(kind)
    if kind in FLOORS:
        return (mlp(case.dims), loader, work_dir), 0.0
    if runner == "raw":
        return (mlp(case.dims), loader), 0.0
    if runner == "camshaft":
        kwargs = _runner_kwargs(kind, CamshaftMLP(case.dims), work_dir, loader)
        start = perf_counter()
        runner = Runner(**kwargs)
        return runner, perf_counter() - start
    from mmengine.runner import Runner as MMRunner

    kwargs = _runner_kwargs(kind, mmengine_mlp_class()(case.dims), work_dir, loader)
    # MMEngine names its logger/visualizer instances by a timestamp in seconds; runners
    # built within one second would share them, so each gets its own name.
    kwargs["experiment_name"] = f"bench_{uuid.uuid4().hex[:12]}"
    start = perf_counter()
    runner = MMRunner(**kwargs)
    return runner, perf_counter() - start


@contextlib.contextmanager
def contender(kind: str, case: Case) -> Iterator[tuple[Any, float]]:
    """:func:`build_contender` in a temporary work_dir; a camshaft Runner is closed after."""
    with _work_dir() as work_dir:
        built, construction_s = build_contender(kind, case, work_dir)
        try:
            yield built, construction_s
        finally:
            close = getattr(built, "close", None)  # Runner.close(): log file, vis backends
            if callable(close):
                close()


def train_contender(
    kind: str, built: Any, after_iter: Callable[[], None]
) -> tuple[Callable[[], Any], frozenset[CodeType]]:
    """Register the probe (Runners); return ``train`` and the probe's code objects."""
    runner = runner_of(kind)
    if kind in FLOORS:
        model, loader, work_dir = built
        log = FLOORS[kind]
        return (
            lambda: raw_durable_train(model, loader, EPOCHS, after_iter, work_dir, log)
        ), frozenset()
    if runner == "raw":
        model, loader = built
        return (lambda: raw_train(model, loader, EPOCHS, after_iter)), frozenset()
    probe = CamshaftProbe(after_iter) if runner == "camshaft" else mmengine_probe(after_iter)
    built.register_hook(probe)
    return built.train, frozenset({type(probe).after_train_iter.__code__})
