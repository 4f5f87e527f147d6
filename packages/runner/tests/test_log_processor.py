"""LogProcessor: exact training and evaluation lines from a hub and a runner stand-in."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from camshaft.runner._registry import LOG_PROCESSORS
from camshaft.runner.logging import LogProcessor, LogRunner, MessageHub


@dataclass
class FakeRunner:
    """The attributes LogProcessor reads (the LogRunner protocol), nothing more."""

    message_hub: MessageHub = field(default_factory=lambda: MessageHub("fake"))
    epoch: int = 0
    iter: int = 0
    max_epochs: int | None = 5
    max_iters: int | None = 500
    train_dataloader: Any = None
    val_dataloader: Any = None
    test_dataloader: Any = None


@pytest.fixture(autouse=True)
def _no_cuda_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are compared exactly; keep ``memory:`` out even on a GPU machine."""
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)


def _training_runner(**overrides: Any) -> FakeRunner:
    runner = FakeRunner(epoch=2, iter=239, train_dataloader=range(100), **overrides)
    hub = runner.message_hub
    for _ in range(10):
        hub.update_scalar("train/lr", 0.01)
        hub.update_scalar("train/time", 0.0213)
        hub.update_scalar("train/data_time", 0.0011)
        hub.update_scalar("train/loss", torch.tensor(0.4312))
        hub.update_scalar("train/loss_cls", torch.tensor(0.4312))
    hub.update_info("eta", 72.9)
    return runner


def test_the_runner_stand_in_satisfies_the_protocol() -> None:
    runner: LogRunner = FakeRunner()  # checked by mypy
    assert runner.max_iters == 500


def test_epoch_based_training_line_is_exact() -> None:
    tag, line = LogProcessor().get_log_after_iter(_training_runner(), batch_idx=39, mode="train")
    assert line == (
        "Epoch(train) [3][ 40/100]  lr: 1.0000e-02  eta: 0:01:12  time: 0.0213  "
        "data_time: 0.0011  loss: 0.4312  loss_cls: 0.4312"
    )
    assert tag["epoch"] == 3
    assert tag["iter"] == 240
    assert tag["lr"] == pytest.approx(0.01)
    assert tag["loss"] == pytest.approx(0.4312)


def test_epoch_column_is_aligned_to_max_epochs() -> None:
    _, line = LogProcessor().get_log_after_iter(
        _training_runner(max_epochs=12), batch_idx=39, mode="train"
    )
    assert line.startswith("Epoch(train)  [3][ 40/100]  lr:")


def test_iteration_based_training_line_is_exact() -> None:
    runner = _training_runner(max_iters=1000)
    runner.iter = 39
    _, line = LogProcessor(by_epoch=False).get_log_after_iter(runner, batch_idx=5, mode="train")
    assert line == (
        "Iter(train) [  40/1000]  lr: 1.0000e-02  eta: 0:01:12  time: 0.0213  "
        "data_time: 0.0011  loss: 0.4312  loss_cls: 0.4312"
    )


def test_losses_are_smoothed_over_the_window_and_lr_shows_the_latest() -> None:
    runner = FakeRunner(train_dataloader=range(10))
    hub = runner.message_hub
    for step in range(20):
        hub.update_scalar("train/lr", float(step))
        hub.update_scalar("train/loss", float(step))
    tag, line = LogProcessor(window_size=4).get_log_after_iter(runner, batch_idx=9, mode="train")
    assert tag["loss"] == pytest.approx(17.5)  # mean of 16..19
    assert tag["lr"] == 19.0
    assert "loss: 17.5000" in line
    assert "eta" not in line  # no timer, no eta


def test_validation_summary_line_is_exact() -> None:
    runner = FakeRunner(epoch=3, val_dataloader=range(10))
    runner.message_hub.update_scalar("val/accuracy", torch.tensor(97.1))
    tag, line = LogProcessor().get_log_after_epoch(runner, batch_idx=10, mode="val")
    assert line == "Epoch(val) [3][10/10]  accuracy: 97.1000"
    assert tag == {"accuracy": pytest.approx(97.1)}


def test_validation_summary_puts_time_last_and_shows_non_scalars() -> None:
    runner = FakeRunner(epoch=1, test_dataloader=range(4))
    hub = runner.message_hub
    for _ in range(4):
        hub.update_scalar("test/time", 0.5)
        hub.update_scalar("test/data_time", 0.25)
    hub.update_scalar("test/accuracy", 50.0)
    hub.update_info("test/confusion", torch.eye(2))
    tag, line = LogProcessor().get_log_after_epoch(runner, 4, "test", with_non_scalar=True)
    assert line.startswith("Epoch(test) [4/4]  accuracy: 50.0000  confusion: \ntensor(")
    assert line.endswith("time: 0.5000  data_time: 0.2500")
    assert list(tag) == ["accuracy", "confusion", "time", "data_time"]


def test_validation_without_a_training_loop_reads_epoch_zero() -> None:
    runner = FakeRunner(epoch=7, max_epochs=None, max_iters=None, val_dataloader=range(3))
    runner.message_hub.update_scalar("val/accuracy", 1.0)
    _, line = LogProcessor().get_log_after_epoch(runner, 3, "val")
    assert line == "Epoch(val) [0][3/3]  accuracy: 1.0000"
    tag, line = LogProcessor().get_log_after_iter(runner, 1, "val")
    assert line == "Epoch(val) [0][2/3]"
    assert tag["iter"] == 0


def test_iteration_lines_of_val_show_only_losses_and_test_shows_none() -> None:
    runner = FakeRunner(epoch=2, val_dataloader=range(20), test_dataloader=range(20))
    hub = runner.message_hub
    hub.update_scalar("val/loss", 0.25)
    hub.update_scalar("val/accuracy", 90.0)
    hub.update_scalar("test/loss", 0.5)
    _, line = LogProcessor().get_log_after_iter(runner, 4, "val")
    assert line == "Epoch(val) [2][ 5/20]  loss: 0.2500"
    _, line = LogProcessor().get_log_after_iter(runner, 4, "test")
    assert line == "Epoch(test) [ 5/20]"
    _, line = LogProcessor(by_epoch=False).get_log_after_iter(runner, 4, "test")
    assert line == "Iter(test) [ 5/20]"


def test_custom_cfg_adds_statistics_and_is_not_mutated() -> None:
    custom_cfg: list[dict[str, Any]] = [
        dict(data_src="loss", method_name="mean", window_size="global", log_name="loss_avg"),
        dict(data_src="loss", method_name="max", window_size="epoch", log_name="loss_max"),
        dict(data_src="time", method_name="mean", window_size=2),
    ]
    frozen = copy.deepcopy(custom_cfg)
    runner = FakeRunner(iter=3, train_dataloader=range(10))
    for value in (4.0, 3.0, 2.0, 1.0):
        runner.message_hub.update_scalar("train/loss", value)
        runner.message_hub.update_scalar("train/time", value)
    processor = LogProcessor(window_size=1, custom_cfg=custom_cfg)
    tag, _ = processor.get_log_after_iter(runner, batch_idx=1, mode="train")
    assert tag["loss"] == 1.0
    assert tag["loss_avg"] == pytest.approx(2.5)  # 'global': iter + 1 = 4 values
    assert tag["loss_max"] == 2.0  # 'epoch': batch_idx + 1 = 2 values
    assert tag["time"] == pytest.approx(1.5)  # replaces the default statistic
    assert custom_cfg == frozen


def test_log_with_hierarchy_keeps_prefixes_in_the_tag() -> None:
    tag, line = LogProcessor(log_with_hierarchy=True).get_log_after_iter(
        _training_runner(), batch_idx=39, mode="train"
    )
    assert "train/loss" in tag
    assert "train/lr" in tag
    assert "lr: 1.0000e-02" in line
    assert "loss: 0.4312" in line


def test_memory_is_reported_when_cuda_is_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 300 * (1 << 20))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    tag, line = LogProcessor().get_log_after_iter(_training_runner(), 39, "train")
    assert "data_time: 0.0011  memory: 300  loss: 0.4312" in line
    assert tag["memory"] == 300


def test_built_from_the_registry() -> None:
    processor = LOG_PROCESSORS.build(dict(type="LogProcessor", window_size=5, by_epoch=False))
    assert isinstance(processor, LogProcessor)
    assert processor.window_size == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(window_size=0), "window_size"),
        (dict(num_digits=-1), "num_digits"),
        (dict(mean_pattern="("), "mean_pattern"),
        (dict(custom_cfg=dict(data_src="loss")), "list of dicts"),
        (dict(custom_cfg=[dict(method_name="mean")]), r"custom_cfg\[0\]\['data_src'\]"),
        (dict(custom_cfg=[dict(data_src="loss", method_name="median")]), "method_name"),
        (dict(custom_cfg=[dict(data_src="loss", method_name="mean", size=3)]), "unknown keys"),
        (
            dict(custom_cfg=[dict(data_src="loss", method_name="mean", window_size=0)]),
            "window_size",
        ),
        (
            dict(
                by_epoch=False,
                custom_cfg=[dict(data_src="loss", method_name="mean", window_size="epoch")],
            ),
            "by_epoch=False",
        ),
        (
            dict(custom_cfg=[dict(data_src="loss", method_name="current", window_size=3)]),
            "current",
        ),
        (
            dict(
                custom_cfg=[
                    dict(data_src="loss", method_name="mean"),
                    dict(data_src="loss", method_name="max"),
                ]
            ),
            r"custom_cfg\[1\].*'loss'.*log_name",
        ),
    ],
)
def test_constructor_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LogProcessor(**kwargs)


def test_call_bad_input() -> None:
    processor = LogProcessor()
    runner = _training_runner()
    with pytest.raises(ValueError, match="mode"):
        processor.get_log_after_iter(runner, 0, "training")
    with pytest.raises(ValueError, match="mode"):
        processor.get_log_after_epoch(runner, 0, "train")
    with pytest.raises(ValueError, match="batch_idx"):
        processor.get_log_after_iter(runner, -1, "train")
    with pytest.raises(ValueError, match=r"runner.val_dataloader is None"):
        processor.get_log_after_epoch(runner, 0, "val")
    runner.max_iters = None
    with pytest.raises(ValueError, match="max_iters"):
        LogProcessor(by_epoch=False).get_log_after_iter(runner, 0, "train")
