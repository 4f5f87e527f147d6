"""RuntimeInfoHook, IterTimerHook, DistSamplerSeedHook; registration and per-iteration cost.

Hooks run against ``_fake_runner.FakeRunner`` (real hub, logger, optimizer wrapper,
schedulers, dataloaders), loaded by path.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import _fake_runner as fake  # registered by conftest.py
import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader

from camshaft.runner._registry import HOOKS
from camshaft.runner.data import DefaultSampler
from camshaft.runner.hooks import HookDispatcher, get_priority
from camshaft.runner.hooks import _iter_timer_hook as timer_module
from camshaft.runner.hooks._checkpoint_hook import CheckpointHook
from camshaft.runner.hooks._iter_timer_hook import IterTimerHook
from camshaft.runner.hooks._logger_hook import LoggerHook
from camshaft.runner.hooks._param_scheduler_hook import ParamSchedulerHook
from camshaft.runner.hooks._runtime_info_hook import RuntimeInfoHook
from camshaft.runner.hooks._sampler_seed_hook import DistSamplerSeedHook
from camshaft.runner.optim import build_param_schedulers


class FakeClock:
    """Replaces ``perf_counter`` in the timer module; ``tick(s)`` advances it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake_clock = FakeClock()
    monkeypatch.setattr(timer_module, "perf_counter", fake_clock)
    return fake_clock


# --- registration and priorities -------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "priority"),
    [
        (RuntimeInfoHook, 10),
        (IterTimerHook, 50),
        (DistSamplerSeedHook, 50),
        (ParamSchedulerHook, 70),
        (LoggerHook, 60),
        (CheckpointHook, 90),
    ],
)
def test_default_hooks_are_registered_with_mmengine_priorities(cls: type, priority: int) -> None:
    assert HOOKS.get(cls.__name__) is cls
    hook = HOOKS.build({"type": cls.__name__})
    assert isinstance(hook, cls)
    assert get_priority(hook.priority) == priority


def test_building_a_default_hook_with_an_unknown_argument_fails() -> None:
    with pytest.raises(TypeError, match="no_such_argument"):
        HOOKS.build({"type": "RuntimeInfoHook", "no_such_argument": 1})


# --- RuntimeInfoHook ---------------------------------------------------------------------


def test_before_run_records_cfg_seed_name_and_versions(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    RuntimeInfoHook().before_run(runner)
    hub = runner.message_hub
    assert hub.get_info("seed") == 42
    assert hub.get_info("experiment_name") == "fake-experiment"
    assert "Linear" in hub.get_info("cfg")
    assert hub.get_info("camshaft_version") == metadata.version("camshaft-runner")
    assert hub.get_info("camshaft_versions")["camshaft-registry"] == metadata.version(
        "camshaft-registry"
    )


@pytest.mark.parametrize(("cfg", "text"), [(None, ""), ({"a": 1}, "{'a': 1}")])
def test_before_run_accepts_a_missing_or_plain_cfg(tmp_path: Path, cfg: Any, text: str) -> None:
    runner = fake.FakeRunner(tmp_path)
    runner.cfg = cfg
    RuntimeInfoHook().before_run(runner)
    assert runner.message_hub.get_info("cfg") == text


def test_before_train_records_position_length_and_dataset_meta(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path, max_epochs=5, metainfo={"classes": ("cat", "dog")})
    runner.epoch, runner.iter = 2, 8
    RuntimeInfoHook().before_train(runner)
    info = runner.message_hub.runtime_info
    assert (info["epoch"], info["iter"], info["max_epochs"], info["max_iters"]) == (2, 8, 5, 20)
    assert info["dataset_meta"] == {"classes": ("cat", "dog")}
    assert info["loop_stage"] == "train"


def test_before_train_without_metainfo_records_no_dataset_meta(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    RuntimeInfoHook().before_train(runner)
    assert "dataset_meta" not in runner.message_hub.runtime_info


def test_loop_stage_returns_to_train_after_validation_and_is_cleared_after(
    tmp_path: Path,
) -> None:
    runner = fake.FakeRunner(tmp_path)
    hook = RuntimeInfoHook()
    hub = runner.message_hub
    hook.before_train(runner)
    hook.before_val(runner)
    assert hub.get_info("loop_stage") == "val"
    hook.after_val(runner)
    assert hub.get_info("loop_stage") == "train"
    hook.after_train(runner)
    assert hub.get_info("loop_stage") is None
    hook.before_val(runner)  # validation alone: the stage is cleared afterwards
    hook.after_val(runner)
    assert hub.get_info("loop_stage") is None


def test_before_train_iter_records_iter_and_first_group_lr(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)  # two groups: lr 0.1 and 0.01
    hook = RuntimeInfoHook()
    hook.before_train(runner)
    runner.iter = 6
    hook.before_train_iter(runner, batch_idx=2)
    hub = runner.message_hub
    assert hub.get_info("iter") == 6
    assert hub.get_scalar("train/lr").current() == pytest.approx(0.1)
    runner.optim_wrapper.param_groups[0]["lr"] = 0.05
    hook.before_train_iter(runner, batch_idx=3)
    assert hub.get_scalar("train/lr").current() == pytest.approx(0.05)


def test_iter_is_counted_per_iteration_and_reread_at_each_epoch(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    hook = RuntimeInfoHook()
    hub = runner.message_hub
    hook.before_train(runner)
    recorded = []
    for start in (0, 10):  # the second epoch starts where a resume put the loop
        runner.iter = start
        hook.before_train_epoch(runner)
        for _ in range(3):
            hook.before_train_iter(runner, batch_idx=0)
            recorded.append(hub.get_info("iter"))
            runner.iter += 1
    assert recorded == [0, 1, 2, 10, 11, 12]


def test_an_overridden_get_lr_is_used(tmp_path: Path) -> None:
    from camshaft.runner.optim import OptimWrapper

    class Halved(OptimWrapper):
        def get_lr(self) -> dict[str, list[float]]:
            return {"lr": [group["lr"] / 2 for group in self.optimizer.param_groups]}

    runner = fake.FakeRunner(tmp_path)  # first group lr 0.1
    runner.optim_wrapper = Halved(runner.optim_wrapper.optimizer)
    hook = RuntimeInfoHook()
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=0)
    assert runner.message_hub.get_scalar("train/lr").current() == pytest.approx(0.05)


def test_optim_wrapper_dict_gives_one_lr_scalar_per_wrapper(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path, optim="dict")
    hook = RuntimeInfoHook()
    hook.before_train_iter(runner, batch_idx=0)  # without before_train: binds lazily
    scalars = runner.message_hub.log_scalars
    assert scalars["train/gen.lr"].current() == pytest.approx(0.2)
    assert scalars["train/disc.lr"].current() == pytest.approx(0.02)
    assert "train/lr" not in scalars


def test_optim_wrapper_without_get_lr_is_a_type_error_naming_it(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    runner.optim_wrapper = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match=r"runner\.optim_wrapper.*get_lr.*SGD"):
        RuntimeInfoHook().before_train(runner)


def test_after_train_iter_stores_outputs_as_given_without_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = fake.FakeRunner(tmp_path)
    hook = RuntimeInfoHook()
    hook.before_train(runner)

    def refuse(self: torch.Tensor) -> float:
        raise AssertionError("after_train_iter must not call .item()")

    monkeypatch.setattr(torch.Tensor, "item", refuse)
    outputs = {"loss": torch.tensor(0.25), "loss_cls": 0.125}
    hook.after_train_iter(runner, batch_idx=0, outputs=outputs)
    monkeypatch.undo()
    hub = runner.message_hub
    assert hub.get_scalar("train/loss").current() == pytest.approx(0.25)
    assert hub.get_scalar("train/loss_cls").current() == pytest.approx(0.125)


def test_after_train_iter_without_outputs_records_nothing(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    RuntimeInfoHook().after_train_iter(runner, batch_idx=0, outputs=None)
    assert runner.message_hub.log_scalars == {}


def test_after_train_iter_with_a_non_scalar_output_fails_naming_the_key(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    with pytest.raises(ValueError, match="train/bad"):
        RuntimeInfoHook().after_train_iter(runner, batch_idx=0, outputs={"bad": torch.ones(3)})


@pytest.mark.parametrize("mode", ["val", "test"])
def test_metrics_go_to_scalars_and_non_scalars_to_info_not_resumed(
    tmp_path: Path, mode: str
) -> None:
    runner = fake.FakeRunner(tmp_path)
    metrics = {
        "acc": 0.75,
        "top5": torch.tensor(0.9),
        "count": np.int64(3),
        "confusion": torch.eye(2),
        "names": ["a", "b"],
    }
    getattr(RuntimeInfoHook(), f"after_{mode}_epoch")(runner, metrics=metrics)
    hub = runner.message_hub
    assert hub.get_scalar(f"{mode}/acc").current() == pytest.approx(0.75)
    assert hub.get_scalar(f"{mode}/top5").current() == pytest.approx(0.9)
    assert hub.get_scalar(f"{mode}/count").current() == 3
    assert torch.equal(hub.get_info(f"{mode}/confusion"), torch.eye(2))
    assert hub.get_info(f"{mode}/names") == ["a", "b"]
    state = hub.state_dict()
    assert not any(key.startswith(f"{mode}/") for key in state["log_scalars"])
    assert not any(key.startswith(f"{mode}/") for key in state["runtime_info"])


def test_no_metrics_records_nothing(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    RuntimeInfoHook().after_val_epoch(runner, metrics=None)
    RuntimeInfoHook().after_test_epoch(runner, metrics={})
    assert runner.message_hub.log_scalars == {}


# --- IterTimerHook -------------------------------------------------------------------------


def test_timer_records_data_time_time_and_eta(tmp_path: Path, clock: FakeClock) -> None:
    runner = fake.FakeRunner(tmp_path, max_epochs=1, batches=10)  # max_iters 10
    hook = IterTimerHook()
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    for seconds_data, seconds_step in [(0.5, 1.5), (0.25, 3.75)]:
        clock.tick(seconds_data)
        hook.before_train_iter(runner, batch_idx=runner.iter)
        clock.tick(seconds_step)
        hook.after_train_iter(runner, batch_idx=runner.iter)
        runner.iter += 1
    hub = runner.message_hub
    assert hub.get_scalar("train/data_time").data[0].tolist() == [0.5, 0.25]
    assert hub.get_scalar("train/time").data[0].tolist() == [2.0, 4.0]
    # mean 3 s per iteration, 8 iterations left after the second
    assert hub.get_info("eta") == pytest.approx(24.0)


def test_eta_after_a_resume_uses_only_the_iterations_since(
    tmp_path: Path, clock: FakeClock
) -> None:
    runner = fake.FakeRunner(tmp_path, max_epochs=1, batches=10)
    runner.iter = 7  # resumed: 7 done, 3 left
    hook = IterTimerHook()
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    clock.tick(2.0)
    hook.before_train_iter(runner, batch_idx=7)
    hook.after_train_iter(runner, batch_idx=7)
    assert runner.message_hub.get_info("eta") == pytest.approx(2.0 * 2)


def test_timer_clock_restarts_at_each_epoch(tmp_path: Path, clock: FakeClock) -> None:
    runner = fake.FakeRunner(tmp_path)
    hook = IterTimerHook()
    hook.before_train(runner)
    clock.tick(50.0)  # time outside the epoch is not the first batch's wait
    hook.before_train_epoch(runner)
    clock.tick(0.5)
    hook.before_train_iter(runner, batch_idx=0)
    assert runner.message_hub.get_scalar("train/data_time").current() == pytest.approx(0.5)


@pytest.mark.parametrize("mode", ["val", "test"])
def test_evaluation_times_and_eta(tmp_path: Path, clock: FakeClock, mode: str) -> None:
    runner = fake.FakeRunner(tmp_path, val_batches=4)
    hook = IterTimerHook()
    getattr(hook, f"before_{mode}_epoch")(runner)
    for batch_idx in range(2):
        clock.tick(1.0)
        getattr(hook, f"before_{mode}_iter")(runner, batch_idx=batch_idx)
        clock.tick(1.0)
        getattr(hook, f"after_{mode}_iter")(runner, batch_idx=batch_idx)
    hub = runner.message_hub
    assert hub.get_scalar(f"{mode}/data_time").data[0].tolist() == [1.0, 1.0]
    assert hub.get_scalar(f"{mode}/time").data[0].tolist() == [2.0, 2.0]
    assert hub.get_info("eta") == pytest.approx(2.0 * 2)  # 2 s each, 2 batches left


def test_evaluation_without_a_sized_loader_records_times_but_no_eta(
    tmp_path: Path, clock: FakeClock
) -> None:
    runner = fake.FakeRunner(tmp_path)
    runner.val_dataloader = iter([[0], [1]])  # no len()
    hook = IterTimerHook()
    hook.before_val_epoch(runner)
    clock.tick(1.0)
    hook.after_val_iter(runner, batch_idx=0)
    assert runner.message_hub.get_scalar("val/time").current() == pytest.approx(1.0)
    assert runner.message_hub.get_info("eta") is None


# --- DistSamplerSeedHook -------------------------------------------------------------------


def _runner_with_loader(tmp_path: Path, loader: Any, epoch: int) -> Any:
    runner = fake.FakeRunner(tmp_path)
    runner.train_loop.dataloader = loader
    runner.epoch = epoch
    return runner


def test_sampler_seed_sets_the_epoch_of_the_loader_sampler(tmp_path: Path) -> None:
    sampler = DefaultSampler(range(8), seed=0, rank=0, world_size=1)
    loader = DataLoader(range(8), batch_size=2, sampler=sampler)
    first = list(sampler)
    DistSamplerSeedHook().before_train_epoch(_runner_with_loader(tmp_path, loader, 3))
    assert sampler.epoch == 3
    assert list(sampler) != first  # a new shuffle


def test_sampler_seed_falls_back_to_the_batch_sampler_sampler(tmp_path: Path) -> None:
    sampler = DefaultSampler(range(8), seed=0, rank=0, world_size=1)
    loader = DataLoader(range(8), batch_sampler=BatchSampler(sampler, 2, drop_last=False))
    DistSamplerSeedHook().before_train_epoch(_runner_with_loader(tmp_path, loader, 2))
    assert sampler.epoch == 2


@pytest.mark.parametrize("loader", [DataLoader(range(4)), [[0], [1]], None])
def test_sampler_seed_leaves_loaders_without_set_epoch_alone(tmp_path: Path, loader: Any) -> None:
    runner = _runner_with_loader(tmp_path, loader, 1)
    runner.train_dataloader = loader
    DistSamplerSeedHook().before_train_epoch(runner)  # no error, nothing to set


# --- the per-iteration cost of the six hooks -----------------------------------------------


def test_an_iteration_costs_few_calls_in_the_default_hooks(tmp_path: Path) -> None:
    runner = fake.FakeRunner(
        tmp_path, schedulers=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=3)]
    )
    dispatcher = HookDispatcher()
    for hook in _default_hooks():
        dispatcher.register(hook)
    dispatcher.call("before_train", runner)
    dispatcher.call("before_train_epoch", runner)
    outputs = {"loss": 0.5, "acc": 0.25}
    hook_files = {
        sys.modules[cls.__module__].__file__
        for cls in (
            RuntimeInfoHook,
            IterTimerHook,
            DistSamplerSeedHook,
            ParamSchedulerHook,
            LoggerHook,
            CheckpointHook,
        )
    }
    stages: list[str] = []
    direct: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event not in ("call", "c_call"):
            return
        caller = frame if event == "c_call" else frame.f_back
        in_hooks = caller is not None and caller.f_code.co_filename in hook_files
        if event == "call" and frame.f_code.co_filename in hook_files and not in_hooks:
            stages.append(frame.f_code.co_qualname)  # a stage called by the dispatcher
        elif in_hooks:
            direct.append(getattr(arg, "__qualname__", "") or frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        dispatcher.call("before_train_iter", runner, batch_idx=0, data_batch=None)
        dispatcher.call("after_train_iter", runner, batch_idx=0, data_batch=None, outputs=outputs)
    finally:
        sys.setprofile(None)
    # 2 before_train_iter + 4 after_train_iter: CheckpointHook(by_epoch=True) is not dispatched
    assert len(stages) == 6, stages
    # iter, eta; lr (first time), data_time, time, 2 outputs; items, 2 clocks, 1 scheduler
    assert direct.count("MessageHub.update_scalar") == 5, direct  # lr, 2 times, 2 outputs
    assert len(direct) <= 11, direct


def _default_hooks() -> list[Any]:
    return [
        RuntimeInfoHook(),
        IterTimerHook(),
        DistSamplerSeedHook(),
        ParamSchedulerHook(),
        LoggerHook(interval=1000, progress_bar=False),
        CheckpointHook(),
    ]


def test_a_steady_iteration_costs_few_calls_in_all(tmp_path: Path) -> None:
    """Every call of an iteration of the default hooks, the message hub's included."""
    runner = fake.FakeRunner(tmp_path)  # no scheduler: ParamSchedulerHook is left out
    dispatcher = HookDispatcher()
    for hook in _default_hooks():
        dispatcher.register(hook)
    dispatcher.call("before_train", runner)
    dispatcher.call("before_train_epoch", runner)
    outputs = {"loss": torch.tensor(0.5)}

    def iteration(batch_idx: int) -> None:
        dispatcher.call("before_train_iter", runner, batch_idx=batch_idx, data_batch=None)
        dispatcher.call(
            "after_train_iter", runner, batch_idx=batch_idx, data_batch=None, outputs=outputs
        )

    iteration(0)  # the first one creates the hub's keys and records the learning rate
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            calls.append(frame.f_code.co_qualname)
        elif event == "c_call":
            calls.append(getattr(arg, "__qualname__", repr(arg)))

    sys.setprofile(profile)
    try:
        iteration(1)
    finally:
        sys.setprofile(None)
    calls = [name for name in calls if "iteration" not in name and name != "setprofile"]
    stages = [name for name in calls if name.endswith(("_train_iter", ".call"))]
    assert "ParamSchedulerHook.after_train_iter" not in stages, stages
    assert len(stages) == 2 + 5, stages  # 2 dispatches; RuntimeInfo, IterTimer x2, Logger
    # Each scalar update is update_scalar -> list.append (the hub queues a float or a
    # detached 0-d tensor itself); the unchanged learning rate costs no call at all.
    assert calls.count("list.append") == 3, calls  # data_time, loss, time
    assert calls.count("dict.get") == 0, calls
    assert "OptimWrapper.get_lr" not in calls, calls
    assert len(calls) <= 18, calls


def _schedulers(runner: Any, cfg: list[dict[str, Any]]) -> Any:
    """Schedulers for ``runner``'s optimizer (4 batches per epoch, 3 epochs)."""
    return build_param_schedulers(
        runner.optim_wrapper, cfg, epoch_length=4, max_epochs=3, max_iters=12
    )


def test_param_scheduler_hook_is_not_called_per_iteration_without_iteration_schedulers(
    tmp_path: Path,
) -> None:
    runner = fake.FakeRunner(tmp_path, schedulers=[dict(type="StepLR", step_size=1, by_epoch=True)])
    dispatcher = HookDispatcher()
    hook = ParamSchedulerHook()
    dispatcher.register(hook)
    assert "after_train_iter" in dispatcher.stage_table()  # not known before the run
    dispatcher.call("before_train", runner)
    assert "after_train_iter" not in dispatcher.stage_table()
    assert "after_train_epoch" in dispatcher.stage_table()
    lr = runner.optim_wrapper.param_groups[0]["lr"]
    dispatcher.call("after_train_iter", runner, batch_idx=0)
    assert runner.optim_wrapper.param_groups[0]["lr"] == lr
    dispatcher.call("after_train_epoch", runner)
    assert runner.optim_wrapper.param_groups[0]["lr"] == pytest.approx(lr * 0.1)
    # A second run with an iteration-based scheduler: the next before_train asks again.
    runner.param_schedulers = _schedulers(runner, [dict(type="LinearLR", by_epoch=False)])
    dispatcher.call("before_train", runner)
    assert "after_train_iter" in dispatcher.stage_table()
    lr = runner.optim_wrapper.param_groups[0]["lr"]
    dispatcher.call("after_train_iter", runner, batch_idx=0)
    assert runner.optim_wrapper.param_groups[0]["lr"] != pytest.approx(lr)


def test_param_scheduler_hook_is_called_per_iteration_with_an_iteration_scheduler(
    tmp_path: Path,
) -> None:
    runner = fake.FakeRunner(
        tmp_path, schedulers=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=3)]
    )
    dispatcher = HookDispatcher()
    dispatcher.register(ParamSchedulerHook())
    dispatcher.call("before_train", runner)
    assert "after_train_iter" in dispatcher.stage_table()
    lrs = []
    for batch_idx in range(3):
        lrs.append(runner.optim_wrapper.param_groups[0]["lr"])
        dispatcher.call("after_train_iter", runner, batch_idx=batch_idx)
    assert lrs == pytest.approx([0.05, 0.075, 0.1])  # stepped after every iteration


def test_a_param_scheduler_hook_subclass_keeps_its_own_after_train_iter(tmp_path: Path) -> None:
    seen: list[int] = []

    class Counting(ParamSchedulerHook):
        def after_train_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            seen.append(batch_idx)
            super().after_train_iter(runner, batch_idx, data_batch, outputs)

    runner = fake.FakeRunner(tmp_path)  # no scheduler at all
    dispatcher = HookDispatcher()
    dispatcher.register(Counting())
    dispatcher.call("before_train", runner)
    dispatcher.call("after_train_iter", runner, batch_idx=4)
    assert seen == [4]
