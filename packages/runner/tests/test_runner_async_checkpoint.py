"""The Runner writes checkpoints in the background: same contents, files done in time."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import runner_toys as toys  # registered by conftest.py
import torch

from camshaft.runner import Runner
from camshaft.runner import _runner_checkpoint as runner_checkpoint
from camshaft.runner.checkpoint import CheckpointSaveError
from camshaft.runner.checkpoint._atomic import StagedWrite
from camshaft.runner.hooks import CheckpointHook, Hook, HookError


def _kwargs(work_dir: Path, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        model=toys.ToyClassifier(data_preprocessor=toys.MixUpPreprocessor()),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=toys.ToyDataset(24),
            batch_size=6,
            sampler=dict(type="DefaultSampler", shuffle=True),
            collate_fn=dict(type="default_collate"),
        ),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        randomness=dict(seed=0),
    )
    kwargs.update(overrides)
    return kwargs


class RecordState(Hook):
    """Copies the weights and optimizer state when each epoch's checkpoint is saved."""

    priority = "LOWEST"  # after CheckpointHook (VERY_LOW) queued the save

    def __init__(self) -> None:
        self.states: dict[int, dict[str, Any]] = {}

    def after_train_epoch(self, runner: Any) -> None:
        model = runner.unwrapped_model.state_dict()
        momentum = runner.optim_wrapper.state_dict()["state"]
        self.states[runner.epoch + 1] = {  # the epoch that just ended, as in epoch_N.pth
            "weights": {k: v.clone() for k, v in model.items()},
            "momentum": {k: v["momentum_buffer"].clone() for k, v in momentum.items()},
        }


@pytest.mark.parametrize(
    "hook_cfg",
    [
        dict(async_write=True),
        dict(),  # the default: written on the training thread, synced in the background
        dict(background_sync=False),  # every step on the training thread
    ],
)
def test_each_checkpoint_holds_the_state_at_its_save(
    tmp_path: Path, hook_cfg: dict[str, bool]
) -> None:
    recorder = RecordState()
    runner = Runner(
        **_kwargs(
            tmp_path,
            default_hooks=dict(checkpoint=hook_cfg),
            custom_hooks=[recorder],
        )
    )
    runner.train()  # the files are complete when train() returns
    for epoch, state in recorder.states.items():
        saved = torch.load(tmp_path / f"epoch_{epoch}.pth", weights_only=True)
        for key, value in state["weights"].items():
            assert torch.equal(saved["state_dict"][key], value), (epoch, key)
        for key, value in state["momentum"].items():
            assert torch.equal(saved["optimizer"]["state"][key]["momentum_buffer"], value)
    assert sorted(recorder.states) == [1, 2, 3]
    assert (tmp_path / "last_checkpoint").read_text().strip() == "epoch_3.pth"


class CheckFilesAfterTrain(Hook):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def after_train(self, runner: Any) -> None:
        self.seen = sorted(p.name for p in Path(runner.work_dir).glob("epoch_*.pth"))


def test_after_train_hooks_see_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write = runner_checkpoint.write_prepared_checkpoint

    def slow_write(checkpoint: Any, target: Path) -> Path:
        threading.Event().wait(0.1)  # the training thread runs ahead of the writer
        return write(checkpoint, target)

    monkeypatch.setattr(runner_checkpoint, "write_prepared_checkpoint", slow_write)
    checker = CheckFilesAfterTrain()
    hooks = dict(checkpoint=dict(async_write=True))
    Runner(**_kwargs(tmp_path, custom_hooks=[checker], default_hooks=hooks)).train()
    assert checker.seen == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]


def test_a_failed_background_write_stops_training_and_keeps_the_last_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = runner_checkpoint.write_prepared_checkpoint
    calls: list[str] = []

    def fail_second(checkpoint: Any, target: Path) -> Path:
        calls.append(target.name)
        if len(calls) == 2:
            raise CheckpointSaveError(f"writing {str(target)!r} failed: No space left on device")
        return write(checkpoint, target)

    monkeypatch.setattr(runner_checkpoint, "write_prepared_checkpoint", fail_second)
    runner = Runner(**_kwargs(tmp_path, default_hooks=dict(checkpoint=dict(async_write=True))))
    with pytest.raises((HookError, CheckpointSaveError)) as info:
        runner.train()
    # Raised by the next save (inside CheckpointHook, so wrapped) or, when the write
    # fails after that save was queued, by the wait before after_train.
    error = info.value.__cause__ if isinstance(info.value, HookError) else info.value
    assert isinstance(error, CheckpointSaveError)
    assert "epoch_2.pth" in str(error)
    assert "No space left" in str(error)
    assert calls == ["epoch_1.pth", "epoch_2.pth"]  # nothing written after the failure
    assert not (tmp_path / "epoch_2.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text().strip() == "epoch_1.pth"
    assert torch.load(tmp_path / "epoch_1.pth", weights_only=True)["meta"]["epoch"] == 1


def test_save_checkpoint_is_inline_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(**_kwargs(tmp_path))
    runner.save_checkpoint(tmp_path, "inline.pth")
    assert (tmp_path / "inline.pth").is_file()  # MMEngine's contract: done on return

    gate = threading.Event()
    write = runner_checkpoint.write_prepared_checkpoint

    def gated(checkpoint: Any, target: Path) -> Path:
        gate.wait(5)
        return write(checkpoint, target)

    monkeypatch.setattr(runner_checkpoint, "write_prepared_checkpoint", gated)
    runner.save_checkpoint(tmp_path, "later.pth", asynchronous=True)
    assert not (tmp_path / "later.pth").exists()
    threading.Timer(0.05, gate.set).start()
    checkpoint = runner.load_checkpoint(tmp_path / "later.pth")  # waits for the write
    assert "state_dict" in checkpoint
    runner.close()


def test_bad_checkpoint_content_raises_on_the_training_thread(tmp_path: Path) -> None:
    class AddsASet(Hook):
        def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
            checkpoint["meta"]["tags"] = {"a", "b"}

    runner = Runner(**_kwargs(tmp_path, custom_hooks=[AddsASet()]))
    with pytest.raises(TypeError, match=r"checkpoint\['meta'\]\['tags'\] is a set"):
        runner.save_checkpoint(tmp_path, "bad.pth", asynchronous=True)
    assert runner.checkpoint_writer.pending == 0
    assert not list(tmp_path.glob("*bad.pth*"))
    runner.close()


def test_async_write_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="`async_write` must be a bool, got 'yes'"):
        CheckpointHook(async_write="yes")  # type: ignore[arg-type]


def test_background_sync_puts_the_file_and_pointer_in_place_after_the_disk_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(**_kwargs(tmp_path))
    runner.save_checkpoint(tmp_path, "epoch_1.pth")  # inline: done on return
    gate = threading.Event()
    commit = StagedWrite.commit

    def gated(self: StagedWrite) -> None:
        gate.wait(5)
        commit(self)

    monkeypatch.setattr(StagedWrite, "commit", gated)
    runner.save_checkpoint(tmp_path, "epoch_2.pth", background_sync=True)
    # Serialised into its temp file; the rename and the pointer wait for the fsync.
    assert not (tmp_path / "epoch_2.pth").exists()
    assert len(list(tmp_path.glob(".epoch_2.pth.*.tmp"))) == 1
    assert (tmp_path / "last_checkpoint").read_text().strip() == "epoch_1.pth"
    gate.set()
    runner.wait_for_checkpoint_writes()
    assert (tmp_path / "last_checkpoint").read_text().strip() == "epoch_2.pth"
    assert torch.load(tmp_path / "epoch_2.pth", weights_only=True)["meta"]["epoch"] == 0
    assert not list(tmp_path.glob(".*.tmp"))
    runner.close()


@pytest.mark.parametrize("fails_after", [0.0, 0.3])  # 0.3 s: epoch 3's save is queued first
def test_a_failed_background_sync_stops_training_and_keeps_the_last_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_after: float
) -> None:
    from camshaft.runner.checkpoint import _atomic

    replace = os.replace

    def full_disk_for_epoch_2(source: str, target: str) -> None:
        if target.endswith("epoch_2.pth"):
            threading.Event().wait(fails_after)
            raise OSError(28, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(_atomic.os, "replace", full_disk_for_epoch_2)
    runner = Runner(**_kwargs(tmp_path))
    with pytest.raises((HookError, CheckpointSaveError)) as info:
        runner.train()
    error = info.value.__cause__ if isinstance(info.value, HookError) else info.value
    assert isinstance(error, CheckpointSaveError)
    assert "epoch_2.pth" in str(error)
    assert not (tmp_path / "epoch_2.pth").exists()
    assert not (tmp_path / "epoch_3.pth").exists()  # nothing after the failure lands
    assert not list(tmp_path.glob(".*.tmp"))  # a dropped save's temp file is removed
    assert (tmp_path / "last_checkpoint").read_text().strip() == "epoch_1.pth"


def test_background_sync_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="`background_sync` must be a bool, got 1"):
        CheckpointHook(background_sync=1)  # type: ignore[arg-type]
