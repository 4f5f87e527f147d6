"""Hook: priorities in every accepted form, the no-op stages, the helpers, triggered stages."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from camshaft.runner.hooks import Hook, HookRunner, Priority, get_priority


@dataclass
class FakeRunner:
    """A stand-in satisfying :class:`HookRunner`."""

    epoch: int = 0
    iter: int = 0
    max_epochs: int = 5
    max_iters: int = 100


def _runner(**kwargs: int) -> HookRunner:
    return FakeRunner(**kwargs)


# --- priorities --------------------------------------------------------------------


def test_priority_levels_have_mmengine_names_and_values() -> None:
    assert {p.name: p.value for p in Priority} == {
        "HIGHEST": 0,
        "VERY_HIGH": 10,
        "HIGH": 30,
        "ABOVE_NORMAL": 40,
        "NORMAL": 50,
        "BELOW_NORMAL": 60,
        "LOW": 70,
        "VERY_LOW": 90,
        "LOWEST": 100,
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, 0),
        (45, 45),
        (100, 100),
        (Priority.VERY_LOW, 90),
        ("NORMAL", 50),
        ("below_normal", 60),
        ("Very_High", 10),
    ],
)
def test_get_priority_accepts_ints_members_and_names(given: Any, expected: int) -> None:
    value = get_priority(given)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize("given", [-1, 101, "NORMALISH", ""])
def test_get_priority_rejects_bad_values_naming_them(given: Any) -> None:
    with pytest.raises(ValueError, match=r"priority must be .*VERY_HIGH") as info:
        get_priority(given)
    assert repr(given) in str(info.value)


@pytest.mark.parametrize("given", [50.0, None, True, [50]])
def test_get_priority_rejects_bad_types_naming_them(given: Any) -> None:
    with pytest.raises(TypeError, match="priority must be an int from 0 to 100") as info:
        get_priority(given)
    assert repr(given) in str(info.value)


# --- stages --------------------------------------------------------------------------


def test_hook_has_the_22_stages_all_no_ops() -> None:
    hook = Hook()
    assert len(Hook.stages) == 22
    assert len(set(Hook.stages)) == 22
    runner = _runner()
    for stage in Hook.stages:
        params = list(inspect.signature(getattr(hook, stage)).parameters)
        args: dict[str, Any] = dict.fromkeys(params[1:])
        if "batch_idx" in args:
            args["batch_idx"] = 0
        assert getattr(hook, stage)(runner, **args) is None


@pytest.mark.parametrize(
    ("stage", "params"),
    [
        ("before_run", ["runner"]),
        ("before_save_checkpoint", ["runner", "checkpoint"]),
        ("after_load_checkpoint", ["runner", "checkpoint"]),
        ("after_val_epoch", ["runner", "metrics"]),
        ("after_test_epoch", ["runner", "metrics"]),
        ("before_train_iter", ["runner", "batch_idx", "data_batch"]),
        ("before_val_iter", ["runner", "batch_idx", "data_batch"]),
        ("after_test_iter", ["runner", "batch_idx", "data_batch", "outputs"]),
    ],
)
def test_stage_signatures_match_mmengine(stage: str, params: list[str]) -> None:
    assert list(inspect.signature(getattr(Hook, stage)).parameters)[1:] == params


def test_default_priority_is_normal() -> None:
    assert Hook.priority == "NORMAL"
    assert get_priority(Hook().priority) == Priority.NORMAL


def test_triggered_stages_are_the_overridden_ones_in_run_order() -> None:
    class Base(Hook):
        def after_run(self, runner: Any) -> None:
            pass

        def before_run(self, runner: Any) -> None:
            pass

    class Child(Base):
        def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
            pass

    assert Hook().get_triggered_stages() == []
    assert Base().get_triggered_stages() == ["before_run", "after_run"]
    assert Child().get_triggered_stages() == ["before_run", "after_val_epoch", "after_run"]


# --- helpers ---------------------------------------------------------------------------


def test_every_n_epochs_counts_from_start() -> None:
    hook = Hook()
    fired = [e for e in range(10) if hook.every_n_epochs(_runner(epoch=e), 3)]
    assert fired == [2, 5, 8]
    fired = [e for e in range(10) if hook.every_n_epochs(_runner(epoch=e), 3, start=2)]
    assert fired == [1, 4, 7]
    assert not any(hook.every_n_epochs(_runner(epoch=e), 0) for e in range(5))


def test_every_n_train_iters_counts_from_start() -> None:
    hook = Hook()
    fired = [i for i in range(12) if hook.every_n_train_iters(_runner(iter=i), 5)]
    assert fired == [4, 9]
    fired = [i for i in range(12) if hook.every_n_train_iters(_runner(iter=i), 5, start=3)]
    assert fired == [2, 7]
    assert not any(hook.every_n_train_iters(_runner(iter=i), -1) for i in range(5))


def test_every_n_inner_iters() -> None:
    hook = Hook()
    assert [b for b in range(10) if hook.every_n_inner_iters(b, 4)] == [3, 7]
    assert not hook.every_n_inner_iters(3, 0)


def test_end_of_epoch_with_a_sized_loader() -> None:
    class Loader:
        def __len__(self) -> int:
            return 4

    hook = Hook()
    assert [b for b in range(6) if hook.end_of_epoch(Loader(), b)] == [3]


def test_is_last_train_epoch_and_iter() -> None:
    hook = Hook()
    assert hook.is_last_train_epoch(_runner(epoch=4, max_epochs=5))
    assert not hook.is_last_train_epoch(_runner(epoch=3, max_epochs=5))
    assert hook.is_last_train_iter(_runner(iter=99, max_iters=100))
    assert not hook.is_last_train_iter(_runner(iter=98, max_iters=100))
