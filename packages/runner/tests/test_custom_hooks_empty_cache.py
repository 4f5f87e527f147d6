"""EmptyCacheHook: acts only at the flagged stages, and only when CUDA is in use."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks import HookDispatcher, Priority
from camshaft.runner.hooks._empty_cache_hook import EmptyCacheHook

BEFORE_EPOCH = ["before_train_epoch", "before_val_epoch", "before_test_epoch"]
AFTER_EPOCH = ["after_train_epoch", "after_val_epoch", "after_test_epoch"]
AFTER_ITER = ["after_train_iter", "after_val_iter", "after_test_iter"]
ITER_KWARGS: dict[str, Any] = dict(batch_idx=0, data_batch=None, outputs=None)


@pytest.fixture
def empty_cache_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pretend CUDA is initialised and count torch.cuda.empty_cache() calls."""
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    return calls


def call_every_stage(dispatcher: HookDispatcher) -> None:
    runner = SimpleNamespace(epoch=0, iter=0)
    for stage in BEFORE_EPOCH + AFTER_EPOCH + AFTER_ITER:
        if stage in AFTER_ITER:
            dispatcher.call(stage, runner, **ITER_KWARGS)
        elif stage in ("after_val_epoch", "after_test_epoch"):
            dispatcher.call(stage, runner, metrics={})
        else:
            dispatcher.call(stage, runner)


def test_registered_with_normal_priority_and_mmengine_defaults() -> None:
    hook = HOOKS.build(dict(type="EmptyCacheHook"))
    assert isinstance(hook, EmptyCacheHook)
    assert Priority[hook.priority] == Priority.NORMAL
    assert hook.get_triggered_stages() == AFTER_EPOCH


@pytest.mark.parametrize(
    ("flags", "stages"),
    [
        (dict(before_epoch=True, after_epoch=False), BEFORE_EPOCH),
        (dict(after_epoch=False, after_iter=True), AFTER_ITER),
        (dict(after_epoch=False), []),
        (
            dict(before_epoch=True, after_iter=True),
            [
                "before_train_epoch",
                "after_train_iter",
                "after_train_epoch",
                "before_val_epoch",
                "after_val_iter",
                "after_val_epoch",
                "before_test_epoch",
                "after_test_iter",
                "after_test_epoch",
            ],
        ),
    ],
)
def test_triggered_stages_follow_the_flags_in_run_order(
    flags: dict[str, bool], stages: list[str]
) -> None:
    assert EmptyCacheHook(**flags).get_triggered_stages() == stages


@pytest.mark.parametrize(
    ("flags", "expected_calls"),
    [
        (dict(), 3),
        (dict(before_epoch=True), 6),
        (dict(before_epoch=True, after_iter=True), 9),
        (dict(after_epoch=False), 0),
    ],
)
def test_empties_the_cache_once_per_flagged_stage(
    empty_cache_calls: list[int], flags: dict[str, bool], expected_calls: int
) -> None:
    dispatcher = HookDispatcher()
    dispatcher.register(EmptyCacheHook(**flags))
    call_every_stage(dispatcher)
    assert len(empty_cache_calls) == expected_calls


def test_direct_calls_of_unflagged_stages_do_nothing(empty_cache_calls: list[int]) -> None:
    hook = EmptyCacheHook(before_epoch=False, after_epoch=False, after_iter=False)
    runner = SimpleNamespace()
    hook.before_train_epoch(runner)
    hook.after_val_epoch(runner, metrics={})
    hook.after_test_iter(runner, **ITER_KWARGS)
    assert empty_cache_calls == []


def test_without_cuda_in_use_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)

    def refuse() -> None:
        raise AssertionError("empty_cache called without CUDA")

    monkeypatch.setattr(torch.cuda, "empty_cache", refuse)
    dispatcher = HookDispatcher()
    dispatcher.register(EmptyCacheHook(before_epoch=True, after_iter=True))
    call_every_stage(dispatcher)


def test_real_call_on_this_machine_is_harmless() -> None:
    hook = EmptyCacheHook(after_iter=True)
    hook.after_train_epoch(SimpleNamespace())
    hook.after_train_iter(SimpleNamespace(), **ITER_KWARGS)


@pytest.mark.parametrize("name", ["before_epoch", "after_epoch", "after_iter"])
def test_flags_must_be_bools(name: str) -> None:
    with pytest.raises(TypeError, match=rf"`{name}` must be a bool, got int 1"):
        EmptyCacheHook(**{name: 1})  # type: ignore[arg-type]
