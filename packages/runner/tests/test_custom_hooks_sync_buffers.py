"""SyncBuffersHook: float buffers averaged over two real gloo ranks, integers untouched.

The two-rank test runs this file as a script in a fresh process, which forks two
workers (fresh, so pytest's threads are never forked); each joins a gloo group on a
free port, runs :func:`scenario` and saves its result for the test to compare.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import camshaft.dist
from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks import Priority
from camshaft.runner.hooks._sync_buffers_hook import SyncBuffersHook

WORLD_SIZE = 2


class BufferNet(nn.Module):
    """BatchNorm statistics plus a float64 and an int32 buffer of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.bn = nn.BatchNorm1d(3)
        self.register_buffer("scale", torch.zeros(2, 2, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(2, dtype=torch.int32))


def make_runner(model: nn.Module, distributed: bool, iteration: int = 4) -> SimpleNamespace:
    return SimpleNamespace(
        model=model,
        unwrapped_model=model,
        epoch=0,
        iter=iteration,
        train_loop=SimpleNamespace(by_epoch=True, stop_training=False),
        logger=logging.getLogger("test_custom_hooks_sync_buffers"),
        distributed=distributed,
    )


def rank_model(rank: int) -> BufferNet:
    torch.manual_seed(rank)  # parameters differ per rank too; they must stay so
    model = BufferNet()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.tensor([0.0, 2.0, 4.0]) * (rank + 1))
        model.bn.running_var.fill_(1.0 + rank)
        model.bn.num_batches_tracked.fill_(10 + rank)
        model.scale.fill_(rank * 3.0)
        model.count.fill_(rank + 1)
    return model


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.named_buffers()}


# --- the two-rank scenario ------------------------------------------------------------


def scenario(rank: int) -> dict[str, Any]:
    model = rank_model(rank)
    runner = make_runner(model, distributed=True, iteration=4)
    weight = model.fc.weight.detach().clone()
    hook = SyncBuffersHook()
    hook.after_train_epoch(runner)
    synced = buffers(model)
    with torch.no_grad():
        model.bn.running_mean.add_(rank)  # changed after the sync, at the same iteration
    hook.before_val_epoch(runner)  # already synced at iteration 4: no collective
    unsynced = model.bn.running_mean.clone()
    runner.iter = 9  # an iteration-based run validating without an epoch end
    hook.before_val_epoch(runner)
    return {
        "synced": synced,
        "unsynced_mean": unsynced,
        "resynced_mean": model.bn.running_mean.clone(),
        "weight_before": weight,
        "weight_after": model.fc.weight.detach().clone(),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),
    )
    try:
        torch.save(scenario(rank), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _launch(out_dir: str) -> None:
    import torch.multiprocessing as mp

    mp.start_processes(
        _worker,
        args=(WORLD_SIZE, _free_port(), out_dir),
        nprocs=WORLD_SIZE,
        join=True,
        start_method="fork",
    )


def run_two_ranks(out_dir: Path, timeout: float = 120) -> list[dict[str, Any]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, __file__, str(out_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a kill reaches the workers too
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the two-rank job hung for {timeout}s and was killed:\n{output}")
    assert process.returncode == 0, output
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)]


def test_two_ranks_average_float_buffers_and_leave_integers_alone(tmp_path: Path) -> None:
    results = run_two_ranks(tmp_path)
    expected = {
        "bn.running_mean": torch.tensor([0.0, 3.0, 6.0]),  # mean of [0,2,4] and [0,4,8]
        "bn.running_var": torch.full((3,), 1.5),
        "scale": torch.full((2, 2), 1.5, dtype=torch.float64),
    }
    for rank, result in enumerate(results):
        synced = result["synced"]
        for name, value in expected.items():
            assert torch.equal(synced[name], value), (rank, name)
        assert synced["bn.running_mean"].dtype == torch.float32
        assert int(synced["bn.num_batches_tracked"]) == 10 + rank  # untouched
        assert synced["bn.num_batches_tracked"].dtype == torch.long
        assert torch.equal(synced["count"], torch.full((2,), rank + 1, dtype=torch.int32))
        # No second collective at the same iteration; a new one after training moved on.
        assert torch.equal(result["unsynced_mean"], torch.tensor([0.0, 3.0, 6.0]) + rank)
        assert torch.equal(result["resynced_mean"], torch.tensor([0.5, 3.5, 6.5]))
        assert torch.equal(result["weight_after"], result["weight_before"])  # params alone
    assert not torch.equal(results[0]["weight_before"], results[1]["weight_before"])


# --- one process -------------------------------------------------------------------------


def test_registered_normal_priority_and_stages() -> None:
    hook = HOOKS.build(dict(type="SyncBuffersHook"))
    assert isinstance(hook, SyncBuffersHook)
    assert Priority[hook.priority] == Priority.NORMAL
    assert hook.get_triggered_stages() == ["after_train_epoch", "before_val_epoch"]


def test_does_nothing_when_not_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("all_reduce called outside a distributed run")

    monkeypatch.setattr(camshaft.dist, "all_reduce", refuse)
    model = rank_model(1)
    before = buffers(model)
    hook = SyncBuffersHook()
    runner = make_runner(model, distributed=False)
    hook.after_train_epoch(runner)
    hook.before_val_epoch(runner)
    after = buffers(model)
    assert all(torch.equal(after[name], value) for name, value in before.items())


def test_one_mean_reduce_per_dtype_group_of_float_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[torch.dtype, int, str]] = []

    def fake_all_reduce(data: torch.Tensor, op: str = "sum", group: Any = None) -> None:
        calls.append((data.dtype, data.numel(), op))
        data.mul_(0.5)  # stands in for "the mean over the ranks"

    monkeypatch.setattr(camshaft.dist, "all_reduce", fake_all_reduce)
    model = rank_model(1)
    before = buffers(model)
    SyncBuffersHook().after_train_epoch(make_runner(model, distributed=True))
    assert calls == [(torch.float64, 4, "mean"), (torch.float32, 6, "mean")]
    after = buffers(model)
    for name in ("bn.running_mean", "bn.running_var", "scale"):
        assert torch.equal(after[name], before[name] * 0.5), name
    for name in ("bn.num_batches_tracked", "count"):
        assert torch.equal(after[name], before[name]), name


def test_a_model_without_float_buffers_needs_no_collective(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(camshaft.dist, "all_reduce", lambda *a, **k: calls.append(a))
    SyncBuffersHook().after_train_epoch(make_runner(nn.Linear(2, 2), distributed=True))
    assert calls == []


if __name__ == "__main__":
    _launch(sys.argv[1])
