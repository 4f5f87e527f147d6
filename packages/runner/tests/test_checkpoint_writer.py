"""CheckpointWriter runs file jobs in order in the background; snapshot_checkpoint copies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from camshaft.runner.checkpoint import CheckpointSaveError, CheckpointWriter, snapshot_checkpoint


def test_jobs_run_in_order_after_submit_returned() -> None:
    writer = CheckpointWriter()
    gate = threading.Event()
    done: list[int] = []
    writer.submit(lambda: (gate.wait(5), done.append(1)), "first")
    writer.submit(lambda: done.append(2), "second")
    assert done == []  # submit returned while the first job is still blocked
    assert writer.pending == 2
    gate.set()
    writer.wait()
    assert done == [1, 2]
    assert writer.pending == 0


def test_an_inline_job_runs_after_the_queue() -> None:
    writer = CheckpointWriter()
    gate = threading.Event()
    done: list[str] = []
    writer.submit(lambda: (gate.wait(5), done.append("queued")), "queued")
    threading.Timer(0.05, gate.set).start()
    writer.submit(lambda: done.append("inline"), "inline", asynchronous=False)
    assert done == ["queued", "inline"]


def test_an_inline_job_raises_its_own_error() -> None:
    writer = CheckpointWriter()

    def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        writer.submit(fail, "inline", asynchronous=False)
    writer.wait()  # nothing pending, nothing recorded


def test_a_failed_job_drops_what_follows_and_is_raised_once() -> None:
    writer = CheckpointWriter()
    gate = threading.Event()
    done: list[str] = []

    def fail() -> None:
        gate.wait(5)
        raise OSError(28, "No space left on device")

    writer.submit(fail, "'epoch_2.pth'")
    writer.submit(
        lambda: done.append("pointer"), "the pointer", cleanup=lambda: done.append("cleaned")
    )
    gate.set()
    with pytest.raises(CheckpointSaveError, match=r"'epoch_2\.pth'.*No space left") as info:
        writer.wait()
    assert isinstance(info.value.__cause__, OSError)
    assert done == ["cleaned"]  # the job after the failure was dropped, its cleanup ran
    writer.wait()  # raised once
    writer.submit(lambda: done.append("later"), "later")
    writer.wait()
    assert done == ["cleaned", "later"]


def test_the_next_submit_reports_a_failure() -> None:
    writer = CheckpointWriter()

    def fail() -> None:
        raise OSError(5, "Input/output error")

    writer.submit(fail, "'iter_4.pth'")
    while writer.pending:  # let it fail without calling wait()
        threading.Event().wait(0.01)
    cleaned: list[str] = []

    def failing_cleanup() -> None:
        cleaned.append("next")
        raise OSError("a cleanup error is not the one to report")

    with pytest.raises(CheckpointSaveError, match=r"'iter_4\.pth'"):
        writer.submit(lambda: None, "next", cleanup=failing_cleanup)
    assert cleaned == ["next"]  # the submitted job will not run: its cleanup did


def test_queued_writes_finish_when_the_interpreter_exits(tmp_path: Path) -> None:
    target = tmp_path / "written.txt"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from camshaft.runner.checkpoint import CheckpointWriter

        def slow_write():
            time.sleep(0.3)
            Path({str(target)!r}).write_text("done")

        CheckpointWriter().submit(slow_write, "slow")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert target.read_text() == "done"


def test_snapshot_copies_tensors_and_keeps_container_types() -> None:
    weight = torch.ones(3)
    state = OrderedDict(weight=weight)
    checkpoint = {
        "meta": {"epoch": 2, "name": "run", "dtype": torch.float16},
        "state_dict": state,
        "history": [torch.tensor(1.0), (torch.tensor(2), "x")],
    }
    copy = snapshot_checkpoint(checkpoint)
    weight.add_(1)
    checkpoint["history"][0].add_(5)
    assert copy["state_dict"]["weight"].tolist() == [1.0, 1.0, 1.0]
    assert copy["history"][0].item() == 1.0
    assert type(copy["state_dict"]) is OrderedDict
    assert type(copy["history"][1]) is tuple
    assert copy["meta"] == checkpoint["meta"]
    assert copy["state_dict"]["weight"].device.type == "cpu"


def test_snapshot_of_a_parameter_is_a_plain_tensor() -> None:
    parameter = torch.nn.Parameter(torch.zeros(2))
    copy = snapshot_checkpoint({"w": parameter})["w"]
    assert type(copy) is torch.Tensor
    assert not copy.requires_grad
