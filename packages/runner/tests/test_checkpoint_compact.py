"""The compact checkpoint layout, old layouts still loading, and the cheaper save path."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import runner_toys as toys  # registered by conftest.py
import torch

from camshaft.runner import Runner
from camshaft.runner.checkpoint import (
    find_latest_checkpoint,
    read_last_checkpoint,
    save_checkpoint,
    write_last_checkpoint,
)
from camshaft.runner.checkpoint._atomic import join_path, remove_stale_temp_files, split_path
from camshaft.runner.hooks import Hook
from camshaft.runner.hooks._priority import Priority, priority_label
from camshaft.runner.logging import HistoryBuffer, MessageHub
from camshaft.runner.optim._constructor import _first_argument


def _weights_only_round_trip(value: Any) -> Any:
    stream = io.BytesIO()
    torch.save(value, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def _same_statistics(left: HistoryBuffer, right: HistoryBuffer) -> None:
    for got, expected in zip(left.data, right.data, strict=True):
        np.testing.assert_array_equal(got, expected)
    for method in ("mean", "min", "max"):
        assert getattr(left, method)() == getattr(right, method)()
        assert getattr(left, method)(3) == getattr(right, method)(3)
    assert left.current() == right.current()
    assert left.max_length == right.max_length


# --- HistoryBuffer ---------------------------------------------------------------------


def test_buffer_state_is_bytes_and_leaves_out_defaults() -> None:
    buffer = HistoryBuffer()
    for step in range(5):
        buffer.update(torch.tensor(float(step)))
    state = buffer.state_dict()
    assert set(state) == {"values"}  # every count 1, nothing evicted, default length
    assert isinstance(state["values"], bytes)
    assert np.frombuffer(state["values"], "<f8").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_buffer_state_round_trips_counts_evictions_and_length() -> None:
    buffer = HistoryBuffer(max_length=4)
    for step in range(11):
        buffer.update(float(step), count=1 + step % 3)
    state = _weights_only_round_trip(buffer.state_dict())
    assert set(state) == {"values", "counts", "max_length", "evicted"}
    restored = HistoryBuffer.from_state_dict(state)
    _same_statistics(restored, buffer)
    restored.update(100.0)
    buffer.update(100.0)
    _same_statistics(restored, buffer)  # the rebuilt ring keeps evicting the same way


def test_buffer_loads_the_tensor_layout_of_earlier_versions() -> None:
    reference = HistoryBuffer(max_length=3)
    for value in (4.0, 1.0, 7.0, 2.0, 5.0):
        reference.update(value)
    old = {
        "values": torch.tensor([7.0, 2.0, 5.0], dtype=torch.float64),
        "counts": None,
        "max_length": 3,
        "evicted": {"n": 2, "sum": 5.0, "count": 2.0, "min": 1.0, "max": 4.0},
    }
    restored = HistoryBuffer.from_state_dict(_weights_only_round_trip(old))
    _same_statistics(restored, reference)
    assert restored.mean() == pytest.approx(19.0 / 5)
    assert restored.min() == 1.0


def test_buffer_loads_the_list_layout_of_earlier_versions() -> None:
    old = {"values": [1.0, 3.0], "counts": [2.0, 2.0], "max_length": 10}
    restored = HistoryBuffer.from_state_dict(old)
    assert restored.mean() == pytest.approx(1.0)
    assert restored.data[1].tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"max_length": 3}, "'values'"),
        ({"values": b"\x00" * 7}, "whole float64 values"),
        ({"values": [1.0, 2.0], "counts": [1.0]}, "one count per value"),
        ({"values": [1.0], "counts": [0.0]}, "positive"),
        ({"values": [[1.0], [2.0]]}, "one-dimensional"),
    ],
)
def test_malformed_buffer_states_are_refused(state: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HistoryBuffer.from_state_dict(state)


# --- MessageHub ------------------------------------------------------------------------


def _hub(name: str) -> MessageHub:
    hub = MessageHub(name)
    for step in range(6):
        hub.update_scalar("train/loss", torch.tensor(float(step)))
    hub.update_scalar("train/time", 0.1, resumed=False)
    hub.update_info("epoch", 2)
    hub.update_info("handle", object(), resumed=False)
    return hub


def test_hub_saves_only_the_flags_its_keys_do_not_imply() -> None:
    hub = _hub("compact")
    hub.update_info("lock", _Unsaveable())  # resumed, but left out with a warning
    with pytest.warns(UserWarning, match="'lock'"):
        state = hub.state_dict()
    assert state["resumed_keys"] == {"train/time": False, "handle": False, "lock": True}


def test_hub_round_trip_restores_every_flag() -> None:
    state = _weights_only_round_trip(_hub("saved").state_dict())
    restored = MessageHub("restored-flags")
    restored.load_state_dict(state)
    assert restored.get_scalar("train/loss").mean() == pytest.approx(2.5)
    assert restored.get_info("epoch") == 2
    with pytest.raises(ValueError, match="resumed=True"):
        restored.update_scalar("train/loss", 1.0, resumed=False)
    with pytest.raises(ValueError, match="resumed=False"):
        restored.update_info("handle", 1, resumed=True)
    assert restored.state_dict()["resumed_keys"] == {"train/time": False, "handle": False}


def test_hub_loads_the_layout_of_earlier_versions() -> None:
    old = {
        "log_scalars": {
            "train/loss": {
                "values": torch.tensor([1.0, 3.0], dtype=torch.float64),
                "counts": None,
                "max_length": 1_000_000,
                "evicted": {"n": 0, "sum": 0.0, "count": 0.0, "min": math.inf, "max": -math.inf},
            }
        },
        "runtime_info": {"epoch": 4, "camshaft_versions": {"camshaft-runner": "0.1.0"}},
        "resumed_keys": {"train/loss": True, "epoch": True, "camshaft_versions": True, "t": False},
    }
    hub = MessageHub("old-layout")
    hub.load_state_dict(_weights_only_round_trip(old))
    assert hub.get_scalar("train/loss").mean() == pytest.approx(2.0)
    assert hub.get_info("epoch") == 4
    with pytest.raises(ValueError, match="resumed=False"):
        hub.update_scalar("t", 1.0)  # the old full dict of flags still applies
    state = hub.state_dict()
    assert state["resumed_keys"] == {"t": False}
    assert set(state["log_scalars"]["train/loss"]) == {"values"}


class _Unsaveable:
    pass


# --- the Runner's checkpoint -----------------------------------------------------------


def test_runner_checkpoint_is_compact_and_resumes_the_hub(tmp_path: Path) -> None:
    runner = Runner(**toys.toy_runner_kwargs(str(tmp_path)))
    runner.train()
    checkpoint = torch.load(find_latest_checkpoint(tmp_path), weights_only=True)
    versions = checkpoint["meta"]["camshaft_versions"]
    assert versions == checkpoint["message_hub"]["runtime_info"]["camshaft_versions"]
    assert versions.get("camshaft-runner")
    hub = checkpoint["message_hub"]
    assert hub["resumed_keys"] == {}
    assert all(isinstance(s["values"], bytes) for s in hub["log_scalars"].values())
    restored = MessageHub("from-runner-checkpoint")
    restored.load_state_dict(hub)
    for key, buffer in runner.message_hub.log_scalars.items():
        _same_statistics(restored.get_scalar(key), buffer)


# --- files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["a/b.pth", "b.pth", "/b.pth", "a//b.pth", "/x/y/z.pth", "./b.pth", "a/b/"],
)
def test_split_and_join_agree_with_os_path(path: str) -> None:
    head, name = os.path.split(path)
    assert split_path(path) == (head or ".", name)
    if name:
        assert join_path(*split_path(path)) == os.path.join(head or ".", name)


def test_pointer_is_relative_however_work_dir_is_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = save_checkpoint({"meta": {"epoch": 1}}, tmp_path / "epoch_1.pth")
    for work_dir in (str(tmp_path), f"{tmp_path}{os.sep}", tmp_path):
        write_last_checkpoint(work_dir, target)
        assert (tmp_path / "last_checkpoint").read_text() == "epoch_1.pth\n"
    monkeypatch.chdir(tmp_path)
    write_last_checkpoint(".", "epoch_1.pth")
    assert (tmp_path / "last_checkpoint").read_text() == "epoch_1.pth\n"
    assert read_last_checkpoint(tmp_path) == tmp_path / "epoch_1.pth"


def test_pointer_through_a_symlinked_work_dir_stays_relative(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    target = save_checkpoint({"meta": {"epoch": 1}}, tmp_path / "real" / "epoch_1.pth")
    write_last_checkpoint(tmp_path / "link", target)
    assert (tmp_path / "real" / "last_checkpoint").read_text() == "epoch_1.pth\n"


def test_only_temp_names_of_the_target_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".epoch_1.pth.0123456789abcdef.tmp"
    keep = [
        tmp_path / ".epoch_1.pth.notes.tmp",  # the prefix, not the pattern
        tmp_path / ".epoch_1.pth.0123456789abcdef.tmp.bak",
        tmp_path / ".epoch_10.pth.0123456789abcdef.tmp",  # another target's
    ]
    for path in (stale, *keep):
        path.write_bytes(b"")
    (tmp_path / ".epoch_1.pth.fedcba9876543210.tmp").mkdir()  # not a file
    assert remove_stale_temp_files(tmp_path / "epoch_1.pth") == [stale]
    assert all(path.exists() for path in keep)


# --- start-up --------------------------------------------------------------------------


class _Mixin:
    def before_run(self, runner: Any) -> None:
        pass


class _Early(_Mixin, Hook):
    def after_run(self, runner: Any) -> None:
        pass


class _Late(Hook, _Mixin):
    pass


class _Reverted(_Early):
    before_run = Hook.before_run  # back to the no-op: not overridden


def _by_getattr(hook: Hook) -> list[str]:
    cls = type(hook)
    return [s for s in Hook.stages if getattr(cls, s) is not getattr(Hook, s)]


@pytest.mark.parametrize("hook_class", [Hook, _Early, _Late, _Reverted])
def test_triggered_stages_match_what_getattr_finds(hook_class: type[Hook]) -> None:
    hook = hook_class()
    assert hook.get_triggered_stages() == _by_getattr(hook)
    hook.before_train = lambda runner: None  # type: ignore[method-assign]
    assert "before_train" not in hook.get_triggered_stages()  # instances do not count


def test_triggered_stages_follow_a_class_patched_later(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "after_val" not in _Late().get_triggered_stages()
    monkeypatch.setattr(_Late, "after_val", lambda self, runner: None, raising=False)
    assert "after_val" in _Late().get_triggered_stages()


def test_priority_label_names_levels_and_keeps_other_numbers() -> None:
    assert [priority_label(int(p)) for p in Priority] == [p.name for p in Priority]
    assert priority_label(Priority.LOW) == "LOW"
    assert priority_label(45) == "45"


class _Optimizer:
    def __init__(self, weights: Any, lr: float = 0.1) -> None:
        self.weights = weights


def test_first_argument_is_cached_and_reinspected_when_the_class_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _first_argument(_Optimizer) == "weights"
    assert _first_argument(_Optimizer) == "weights"  # from the cache

    def init(self: Any, parameters: Any, lr: float = 0.1) -> None:
        self.weights = parameters

    monkeypatch.setattr(_Optimizer, "__init__", init)
    assert _first_argument(_Optimizer) == "parameters"
    assert _first_argument(torch.optim.SGD) == "params"
