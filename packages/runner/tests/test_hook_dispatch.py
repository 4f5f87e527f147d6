"""HookDispatcher: ordering, config dicts, per-stage calls, errors, and the stage table."""

from __future__ import annotations

from typing import Any

import pytest

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks import Hook, HookDispatcher, HookError, Priority


class Recorder(Hook):
    """Appends ``(name, stage, kwargs)`` to a shared log at the stages it overrides."""

    def __init__(self, log: list[tuple[str, str, dict[str, Any]]], name: str = "") -> None:
        self.log = log
        self.name = name

    def before_train(self, runner: Any) -> None:
        self.log.append((self.name, "before_train", {}))

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self.log.append(
            (
                self.name,
                "after_train_iter",
                dict(batch_idx=batch_idx, data_batch=data_batch, outputs=outputs),
            )
        )

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self.log.append((self.name, "after_val_epoch", dict(metrics=metrics)))

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint["seen_by"] = self.name


@HOOKS.register_module(name="CamshaftTestDispatchHook", force=True)
class RegisteredHook(Hook):
    """A hook built from a config dict in the tests."""

    priority = "LOW"

    def __init__(self, tag: str = "default") -> None:
        self.tag = tag

    def before_run(self, runner: Any) -> None:
        pass


class NotAHook:
    pass


HOOKS.register_module(name="CamshaftTestNotAHook", force=True, module=NotAHook)


def _names(dispatcher: HookDispatcher) -> list[str]:
    return [getattr(h, "name", type(h).__name__) for h in dispatcher.hooks]


# --- ordering --------------------------------------------------------------------------


def test_hooks_sort_by_priority_in_every_form_and_stay_stable() -> None:
    log: list[Any] = []
    dispatcher = HookDispatcher()
    dispatcher.register(Recorder(log, "normal-1"))
    dispatcher.register(Recorder(log, "low"), priority="low")
    dispatcher.register(Recorder(log, "normal-2"), priority=50)
    dispatcher.register(Recorder(log, "very-high"), priority=Priority.VERY_HIGH)
    dispatcher.register(Recorder(log, "normal-3"), priority="NORMAL")
    dispatcher.register(Recorder(log, "45"), priority=45)
    assert _names(dispatcher) == ["very-high", "45", "normal-1", "normal-2", "normal-3", "low"]
    dispatcher.call("before_train", None)
    assert [name for name, _, _ in log] == _names(dispatcher)


def test_register_priority_overrides_and_sets_the_hooks_priority() -> None:
    hook = RegisteredHook()
    dispatcher = HookDispatcher()
    dispatcher.register(Recorder([], "normal"))
    dispatcher.register(hook, priority="VERY_HIGH")
    assert dispatcher.hooks[0] is hook
    assert hook.priority == "VERY_HIGH"


def test_class_priority_is_used_when_none_is_given() -> None:
    dispatcher = HookDispatcher()
    dispatcher.register(RegisteredHook())  # LOW
    dispatcher.register(Recorder([], "normal"))
    assert _names(dispatcher) == ["normal", "RegisteredHook"]


def test_config_dicts_build_from_hooks_with_an_optional_priority() -> None:
    cfg = dict(type="CamshaftTestDispatchHook", tag="x", priority="HIGHEST")
    dispatcher = HookDispatcher()
    dispatcher.register(Recorder([], "normal"))
    dispatcher.register(cfg)
    dispatcher.register(dict(type="CamshaftTestDispatchHook"))
    dispatcher.register(dict(type=RegisteredHook, priority=60), priority=20)
    hooks = dispatcher.hooks
    assert [type(h).__name__ for h in hooks] == [
        "RegisteredHook",
        "RegisteredHook",
        "Recorder",
        "RegisteredHook",
    ]
    assert isinstance(hooks[0], RegisteredHook)
    assert isinstance(hooks[3], RegisteredHook)
    assert hooks[0].tag == "x"
    assert hooks[0].priority == "HIGHEST"
    assert hooks[1].priority == 20  # the argument wins over the config's key
    assert hooks[3].tag == "default"
    assert cfg == dict(type="CamshaftTestDispatchHook", tag="x", priority="HIGHEST")


def test_registering_a_non_hook_is_a_type_error_naming_the_type() -> None:
    dispatcher = HookDispatcher()
    with pytest.raises(TypeError, match="got int 3"):
        dispatcher.register(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pass an instance, e\.g\. RegisteredHook\(\)"):
        dispatcher.register(RegisteredHook)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="built a NotAHook, not a Hook"):
        dispatcher.register(dict(type="CamshaftTestNotAHook"))
    assert dispatcher.hooks == ()


def test_bad_priorities_are_refused_before_anything_is_registered() -> None:
    class BadClassPriority(Hook):
        priority = "SOMETIMES"

    dispatcher = HookDispatcher()
    with pytest.raises(ValueError, match=r"priority must be .*got 101"):
        dispatcher.register(Hook(), priority=101)
    with pytest.raises(ValueError, match=r"BadClassPriority\.priority is invalid.*'SOMETIMES'"):
        dispatcher.register(BadClassPriority())
    assert dispatcher.hooks == ()


# --- calls ------------------------------------------------------------------------------


def test_only_hooks_overriding_a_stage_are_called() -> None:
    counts = {"before_run": 0, "after_train_iter": 0}

    class RunOnly(Hook):
        def before_run(self, runner: Any) -> None:
            counts["before_run"] += 1

    class IterOnly(Hook):
        def after_train_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            counts["after_train_iter"] += 1

    dispatcher = HookDispatcher()
    for hook in (RunOnly(), IterOnly(), IterOnly(), Hook()):
        dispatcher.register(hook)
    dispatcher.call("before_run", None)
    for batch_idx in range(3):
        dispatcher.call("after_train_iter", None, batch_idx=batch_idx)
    dispatcher.call("after_run", None)
    assert counts == {"before_run": 1, "after_train_iter": 6}


def test_kwargs_pass_through_to_the_hooks() -> None:
    log: list[Any] = []
    runner = object()
    dispatcher = HookDispatcher()
    dispatcher.register(Recorder(log, "r"))
    batch = dict(inputs=[1, 2])
    dispatcher.call("after_train_iter", runner, batch_idx=7, data_batch=batch, outputs={"l": 1})
    dispatcher.call("after_val_epoch", runner, metrics={"acc": 0.5})
    checkpoint: dict[str, Any] = {}
    dispatcher.call("before_save_checkpoint", runner, checkpoint=checkpoint)
    assert log == [
        ("r", "after_train_iter", dict(batch_idx=7, data_batch=batch, outputs={"l": 1})),
        ("r", "after_val_epoch", dict(metrics={"acc": 0.5})),
    ]
    assert checkpoint == {"seen_by": "r"}


class KeywordsOnly(Hook):
    """Takes the per-iteration arguments as ``**kwargs``: they must arrive by name."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def before_train_iter(self, runner: Any, **kwargs: Any) -> None:
        self.log.append(("before", runner, kwargs))

    def after_train_iter(self, runner: Any, **kwargs: Any) -> None:
        self.log.append(("after", runner, kwargs))


def test_positional_iteration_callers_pass_the_same_keywords_in_priority_order() -> None:
    log: list[Any] = []
    runner = object()
    dispatcher = HookDispatcher()
    dispatcher.register(Recorder(log, "late"), priority="LOW")
    dispatcher.register(KeywordsOnly(log), priority="HIGH")
    batch = dict(inputs=[1, 2])
    dispatcher.call_before_iter("before_train_iter", runner, 3, batch)
    dispatcher.call_after_iter("after_train_iter", runner, 3, batch, {"loss": 1.0})
    assert log == [
        ("before", runner, dict(batch_idx=3, data_batch=batch)),
        ("after", runner, dict(batch_idx=3, data_batch=batch, outputs={"loss": 1.0})),
        ("late", "after_train_iter", dict(batch_idx=3, data_batch=batch, outputs={"loss": 1.0})),
    ]
    # The same as the keyword path gives.
    keyword_log: list[Any] = []
    keyword = HookDispatcher()
    keyword.register(Recorder(keyword_log, "late"), priority="LOW")
    keyword.register(KeywordsOnly(keyword_log), priority="HIGH")
    keyword.call("before_train_iter", runner, batch_idx=3, data_batch=batch)
    keyword.call("after_train_iter", runner, batch_idx=3, data_batch=batch, outputs={"loss": 1.0})
    assert keyword_log == log


def test_positional_iteration_callers_name_a_failing_hook_and_refuse_unknown_stages() -> None:
    class Broken(Hook):
        def after_val_iter(self, runner: Any, batch_idx: int, **kwargs: Any) -> None:
            raise ZeroDivisionError(f"batch {batch_idx}")

    dispatcher = HookDispatcher()
    dispatcher.register(Broken())
    with pytest.raises(HookError, match=r"Broken.*'after_val_iter'.*batch 5") as info:
        dispatcher.call_after_iter("after_val_iter", None, 5, None, None)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(ValueError, match=r"stage must be one of .*; got 'before_training_iter'"):
        dispatcher.call_before_iter("before_training_iter", None, 0, None)
    with pytest.raises(ValueError, match=r"got 'after_iter'"):
        dispatcher.call_after_iter("after_iter", None, 0, None, None)


def test_an_unknown_stage_is_a_value_error_listing_the_stages() -> None:
    dispatcher = HookDispatcher()
    with pytest.raises(ValueError, match=r"stage must be one of before_run, .*after_run; got "):
        dispatcher.call("after_training", None)


def test_a_failing_hook_raises_hook_error_naming_hook_and_stage() -> None:
    class Broken(Hook):
        def after_train_epoch(self, runner: Any) -> None:
            raise ZeroDivisionError("no samples")

    hook = Broken()
    dispatcher = HookDispatcher()
    dispatcher.register(hook)
    with pytest.raises(HookError, match=r"Broken.*'after_train_epoch'.*no samples") as info:
        dispatcher.call("after_train_epoch", None)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.hook is hook
    assert info.value.stage == "after_train_epoch"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_interrupts_pass_through_untouched(exc_type: type[BaseException]) -> None:
    class Interrupted(Hook):
        def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
            raise exc_type()

    dispatcher = HookDispatcher()
    dispatcher.register(Interrupted())
    with pytest.raises(exc_type):
        dispatcher.call("before_train_iter", None, batch_idx=0)


def test_a_stage_nobody_overrides_does_no_per_hook_work() -> None:
    accessed: list[str] = []

    class Watched(Hook):
        def before_run(self, runner: Any) -> None:
            pass

        def __getattribute__(self, name: str) -> Any:
            accessed.append(name)
            return super().__getattribute__(name)

    dispatcher = HookDispatcher()
    for _ in range(3):
        dispatcher.register(Watched())
    accessed.clear()
    for batch_idx in range(100):
        dispatcher.call("after_train_iter", None, batch_idx=batch_idx)
    assert accessed == []
    assert dispatcher._by_stage["after_train_iter"] == ()


class Cadenced(Hook):
    """Acts after every iteration only when ``before_train`` finds ``runner['per_iter']``."""

    def __init__(self) -> None:
        self.per_iter: bool | None = None  # None: not prepared, so triggered
        self.calls = 0

    def get_triggered_stages(self) -> list[str]:
        stages = super().get_triggered_stages()
        if self.per_iter is False:
            stages.remove("after_train_iter")
        return stages

    def before_train(self, runner: Any) -> None:
        self.per_iter = bool(runner["per_iter"])

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self.calls += 1


def test_triggered_stages_are_asked_again_after_each_before_train() -> None:
    hook = Cadenced()
    dispatcher = HookDispatcher()
    dispatcher.register(hook)
    dispatcher.call("after_train_iter", None, batch_idx=0)  # before any run: called
    assert hook.calls == 1
    dispatcher.call("before_train", {"per_iter": False})
    dispatcher.call("after_train_iter", None, batch_idx=0)
    assert hook.calls == 1
    assert dispatcher._by_stage["after_train_iter"] == ()
    dispatcher.call("before_train", {"per_iter": True})  # the next run changes its mind
    dispatcher.call("after_train_iter", None, batch_idx=0)
    assert hook.calls == 2


# --- stage table ------------------------------------------------------------------------


def test_stage_table_lists_hooks_per_stage_with_priority_names() -> None:
    class RuntimeInfoHook(Hook):
        def before_train(self, runner: Any) -> None:
            pass

    class MyHook(Hook):
        def before_train(self, runner: Any) -> None:
            pass

        def after_run(self, runner: Any) -> None:
            pass

    dispatcher = HookDispatcher()
    dispatcher.register(MyHook())
    dispatcher.register(RuntimeInfoHook(), priority="VERY_HIGH")
    dispatcher.register(MyHook(), priority=45)
    assert dispatcher.stage_table() == (
        "before_train:\n"
        "(VERY_HIGH   ) RuntimeInfoHook\n"
        "(45          ) MyHook\n"
        "(NORMAL      ) MyHook\n"
        " --------------------\n"
        "after_run:\n"
        "(45          ) MyHook\n"
        "(NORMAL      ) MyHook\n"
        " --------------------"
    )
    assert HookDispatcher().stage_table() == ""


def test_compact_stage_table_is_one_line_per_stage() -> None:
    class First(Hook):
        def before_run(self, runner: object) -> None:
            pass

        def after_run(self, runner: object) -> None:
            pass

    class Second(Hook):
        def before_run(self, runner: object) -> None:
            pass

    dispatcher = HookDispatcher()
    dispatcher.register(Second(), priority="LOW")
    dispatcher.register(First(), priority=15)
    assert dispatcher.stage_table(compact=True) == (
        "  before_run: First(15), Second(LOW)\n  after_run: First(15)"
    )
