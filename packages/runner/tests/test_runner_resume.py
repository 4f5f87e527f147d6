"""Exact resume: a run SIGKILLed after any iteration and resumed ends bit-identical.

Each case trains the toy classifier in a subprocess (shuffling sampler, MixUp drawn
from torch's global generator, dropout, a warm-up schedule, SGD with momentum),
kills it with SIGKILL right after an iteration's checkpoint, resumes it in a new
process, and compares the final weights with an uninterrupted run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOYS = Path(__file__).with_name("runner_toys.py")
# 40 samples, batch 6 -> 7 iterations per epoch; 2 epochs -> 14 iterations.


def _train(work_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, str(TOYS), str(work_dir), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )


def _final(work_dir: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(work_dir / "final.pt", weights_only=True)
    return state


_REFERENCES: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}


def _reference(
    tmp_path_factory: pytest.TempPathFactory, args: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    if args not in _REFERENCES:
        work_dir = tmp_path_factory.mktemp("reference")
        done = _train(work_dir, *args)
        assert done.returncode == 0, done.stderr[-3000:]
        _REFERENCES[args] = _final(work_dir)
    return _REFERENCES[args]


@pytest.mark.parametrize(
    ("kill_at", "args"),
    [
        (3, ()),  # mid-epoch 1
        (7, ()),  # after the last batch of epoch 1, before the epoch's end hooks
        (10, ()),  # mid-epoch 2
        (4, ("--workers", "2")),  # worker processes prefetching ahead of the kill
        (9, ("--workers", "2", "--augment")),  # random transforms inside the workers
        (3, ("--augment",)),  # random transforms in the main process
        (5, ("--by-iter",)),  # iteration-based loop
        (10, ("--async-write",)),  # checkpoints copied and written on a background thread
    ],
)
def test_sigkilled_run_resumes_bit_identical(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kill_at: int, args: tuple[str, ...]
) -> None:
    reference = _reference(tmp_path_factory, args)
    killed = _train(tmp_path, "--kill-at", str(kill_at), *args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "final.pt").exists()
    pointer = (tmp_path / "last_checkpoint").read_text().strip()
    assert pointer.endswith(f"iter_{kill_at}.pth")

    resumed = _train(tmp_path, "--resume", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    final = _final(tmp_path)
    assert final.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(final[key], value), (
            f"{key} differs after resuming at iteration {kill_at}"
        )


def test_resume_changes_nothing_when_training_is_already_done(tmp_path: Path) -> None:
    first = _train(tmp_path, "--by-iter")
    assert first.returncode == 0, first.stderr[-3000:]
    before = _final(tmp_path)
    again = _train(tmp_path, "--by-iter", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    after = _final(tmp_path)
    assert all(torch.equal(before[k], after[k]) for k in before)
