"""Helpers for the camshaft.dist tests: toy models, an optimizer-wrapper double, a launcher.

Tests reach this module through the ``dist_helpers`` fixture (conftest.py), never by
importing it, and multi-process workers receive it as their third argument.

Run as a script it is the launcher that the ``run_distributed`` fixture starts in a
fresh process::

    python _dist_helpers.py TEST_FILE WORKER_NAME WORLD_SIZE OUT_DIR TIMEOUT [MODULE ...]

It imports the test file and the named modules, forks ``WORLD_SIZE`` workers (fork,
so the workers need not re-import torch), each joins a gloo group through
``init_dist('pytorch')`` on a free port and calls ``worker(rank, world_size, helpers)``;
each worker's return value is pickled to ``OUT_DIR/rank<r>.pkl``. A worker that
raises, or a job that outlives ``TIMEOUT`` seconds, makes the launcher exit non-zero;
collectives also time out, so a hang fails instead of blocking.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import pickle
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camshaft.model import BaseModel


def free_port() -> int:
    """A TCP port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def import_path(path: str | Path, name: str) -> ModuleType:
    """Import a file as module ``name`` (tests are not importable by package name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- test doubles ---------------------------------------------------------------------


class AccumulatingOptimWrapper:
    """What the runner's OptimWrapper does with ``accumulative_counts``, and no more.

    Calls come in windows of ``accumulative_counts``: on all but the last call of a
    window, ``optim_context`` enters ``model.no_sync()`` (when the model has one), and
    ``update_params`` only backpropagates ``loss / accumulative_counts``; the last
    call also steps and zeroes the gradients.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1) -> None:
        self.optimizer = optimizer
        self.accumulative_counts = accumulative_counts
        self.calls = 0
        self.contexts: list[tuple[nn.Module, bool]] = []

    def _will_update(self) -> bool:
        return (self.calls + 1) % self.accumulative_counts == 0

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        skip_sync = not self._will_update() and hasattr(model, "no_sync")
        self.contexts.append((model, skip_sync))
        with model.no_sync() if skip_sync else contextlib.nullcontext():  # type: ignore[operator]
            yield

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        (loss / self.accumulative_counts).backward()
        update = self._will_update()
        self.calls += 1
        if update:
            self.optimizer.step(**(step_kwargs or {}))
            self.optimizer.zero_grad(**(zero_kwargs or {}))


class ToyRegressor(BaseModel):
    """Two linear layers and a mean-squared error; ``predict`` returns the outputs."""

    def __init__(self, unused_head: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        if unused_head:
            self.unused = nn.Linear(8, 2)

    def forward(  # type: ignore[override]
        self, inputs: torch.Tensor, targets: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        out = self.body(inputs)
        if mode == "loss":
            return {"loss_mse": F.mse_loss(out, targets)}
        if mode == "predict":
            return [row.clone() for row in out]  # not views: FSDP2 warns about those
        return out


class ToyGAN(BaseModel):
    """A generator and a discriminator updated in turns, plus a frozen child.

    ``train_step`` takes ``optim_wrapper['generator']`` and
    ``optim_wrapper['discriminator']``, as with an ``OptimWrapperDict``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 3)
        self.discriminator = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)

    def forward(self, inputs: torch.Tensor, noise: torch.Tensor, mode: str = "tensor") -> Any:  # type: ignore[override]
        return self.generator(noise)

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        data = self.data_preprocessor(data, True)
        real, noise = self.frozen(data["inputs"]), data["noise"]
        wrapper_d, wrapper_g = optim_wrapper["discriminator"], optim_wrapper["generator"]
        with wrapper_d.optim_context(self.discriminator):
            with torch.no_grad():
                fake = self.generator(noise)
            loss_d = (
                F.softplus(-self.discriminator(real)).mean()
                + F.softplus(self.discriminator(fake)).mean()
            )
        wrapper_d.update_params(loss_d)
        with wrapper_g.optim_context(self.generator):
            loss_g = F.softplus(-self.discriminator(self.generator(noise))).mean()
        wrapper_g.update_params(loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


def batch(seed: int, rows: int = 8) -> dict[str, torch.Tensor]:
    """A regression batch that every rank can rebuild from the seed."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(rows, 4, generator=generator)
    return {"inputs": inputs, "targets": inputs.sum(dim=1, keepdim=True) * 0.5}


def shard(data: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """Rank ``rank``'s contiguous slice of every tensor in ``data``."""
    return {key: value.chunk(world_size)[rank] for key, value in data.items()}


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy, for single-process reference runs."""
    return copy.deepcopy(model)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters as full, plain CPU tensors (DTensors gathered), by name."""
    out = {}
    for name, param in model.named_parameters():
        tensor = param.detach()
        if hasattr(tensor, "full_tensor"):
            tensor = tensor.full_tensor()
        out[name.replace("module.", "")] = tensor.cpu().clone()
    return out


# --- the launcher ---------------------------------------------------------------------


def _worker_entry(rank: int, worker: Any, world_size: int, out_dir: str, timeout: float) -> None:
    import torch.distributed as dist

    from camshaft.dist import init_dist

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    init_dist("pytorch", backend="gloo", timeout=timeout)
    try:
        result = worker(rank, world_size, sys.modules[__name__])
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as stream:
            pickle.dump(result, stream)
    finally:
        dist.destroy_process_group()


def _main(
    test_file: str,
    worker_name: str,
    world_size: int,
    out_dir: str,
    timeout: float,
    preload: list[str],
) -> int:
    import torch.multiprocessing as mp

    # Imported once here, inherited by the forked workers instead of paid by each
    # (DDP's constructor imports torch._dynamo: about 2 s of CPU).
    for module in preload:
        importlib.import_module(module)
    test_module = import_path(test_file, f"_camshaft_dist_test_{Path(test_file).stem}")
    worker = getattr(test_module, worker_name)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    context = mp.start_processes(
        _worker_entry,
        args=(worker, world_size, out_dir, timeout),
        nprocs=world_size,
        join=False,
        start_method="fork",
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            print(f"workers still running after {timeout}s: killed", file=sys.stderr)
            return 124
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("_camshaft_dist_helpers", sys.modules["__main__"])
    file, name, size, out, limit = sys.argv[1:6]
    sys.exit(_main(file, name, int(size), out, float(limit), sys.argv[6:]))
