"""LoggerHook (log lines, visualizer steps, progress bar) and ParamSchedulerHook.

Hooks run against ``_fake_runner.FakeRunner`` (registered by conftest.py); the progress-bar
module is replaced in ``sys.modules`` by a recording fake.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar

import _fake_runner as fake  # registered by conftest.py
import pytest

from camshaft.runner.hooks import HookError
from camshaft.runner.hooks._logger_hook import PROGRESS_MODULE, LoggerHook
from camshaft.runner.hooks._param_scheduler_hook import ParamSchedulerHook
from camshaft.runner.hooks._runtime_info_hook import RuntimeInfoHook
from camshaft.runner.optim import ConstantLR


def _runner(tmp_path: Path, *hooks: Any, **kwargs: Any) -> Any:
    """A fake runner with ``hooks`` and a RuntimeInfoHook (so lines have lr and loss)."""
    runner = fake.FakeRunner(tmp_path, **kwargs)
    for hook in (RuntimeInfoHook(), *hooks):
        runner.register_hook(hook)
    return runner


def _train_steps(runner: Any) -> list[int]:
    """Steps of the visualizer calls made by training lines (their tags have 'lr')."""
    return [step for tags, step in runner.visualizer.scalars if "lr" in tags]


def _lines(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


# --- LoggerHook: training lines ------------------------------------------------------------


@pytest.mark.parametrize(("ignore_last", "expected"), [(True, [2, 4]), (False, [2, 4, 5])])
def test_epoch_based_logs_every_interval_within_the_epoch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ignore_last: bool, expected: list[int]
) -> None:
    hook = LoggerHook(interval=2, ignore_last=ignore_last, progress_bar=False)
    runner = _runner(tmp_path, hook, max_epochs=2, batches=5)
    with caplog.at_level(logging.INFO):
        fake.train(runner)
    # epoch 1 at iterations 2, 4 (5); epoch 2 counts from its own start
    assert _train_steps(runner) == expected + [5 + n for n in expected]
    lines = _lines(caplog, "Epoch(train)")
    assert len(lines) == 2 * len(expected)
    assert lines[0].startswith("Epoch(train) [1][2/5]")
    assert "loss: " in lines[0]
    assert "lr: 1.0000e-01" in lines[0]


@pytest.mark.parametrize(("ignore_last", "expected"), [(True, [3, 6]), (False, [3, 6, 7])])
def test_iteration_based_logs_every_interval_and_maybe_the_last(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ignore_last: bool, expected: list[int]
) -> None:
    hook = LoggerHook(interval=3, ignore_last=ignore_last, progress_bar=False)
    runner = _runner(tmp_path, hook, by_epoch=False, max_iters=7)
    with caplog.at_level(logging.INFO):
        fake.train(runner)
    assert _train_steps(runner) == expected
    assert _lines(caplog, "Iter(train)")[0].startswith("Iter(train) [3/7]")


def test_an_interval_longer_than_the_run_logs_nothing_per_iteration(tmp_path: Path) -> None:
    runner = _runner(tmp_path, LoggerHook(interval=100, progress_bar=False), batches=3)
    fake.train(runner)
    assert runner.visualizer.scalars == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"interval": 0}, ValueError, "interval.*positive int.*0"),
        ({"interval": -5}, ValueError, "interval.*-5"),
        ({"interval": 2.5}, ValueError, "interval.*2.5"),
        ({"interval": True}, ValueError, "interval.*True"),
        ({"ignore_last": "yes"}, TypeError, "ignore_last.*bool.*'yes'"),
        ({"log_metric_by_epoch": 1}, TypeError, "log_metric_by_epoch.*bool"),
        ({"progress_bar": "always"}, ValueError, "progress_bar.*'auto'.*'always'"),
        ({"progress_bar": None}, ValueError, "progress_bar.*None"),
    ],
)
def test_bad_logger_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        LoggerHook(**kwargs)


# --- LoggerHook: evaluation ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["val", "test"])
def test_evaluation_iterations_are_logged_every_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    runner = _runner(tmp_path, LoggerHook(interval=2, progress_bar=False), val_batches=5)
    runner.message_hub.update_scalar(f"{mode}/time", 0.1)
    with caplog.at_level(logging.INFO):
        fake.evaluate(runner, mode, {"acc": 0.5})
    header = "Epoch(val) [0]" if mode == "val" else "Epoch(test)"
    assert len([line for line in _lines(caplog, header) if "/5]" in line]) == 3  # 2, 4, summary


def test_validation_summary_is_stepped_by_epoch_without_timing_tags(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = _runner(tmp_path)
    runner.epoch, runner.iter = 2, 8
    runner.message_hub.update_scalar("val/time", 0.5)
    runner.message_hub.update_scalar("val/acc", 0.75)
    with caplog.at_level(logging.INFO):
        LoggerHook(progress_bar=False).after_val_epoch(runner, {"acc": 0.75})
    assert runner.visualizer.scalars == [({"acc": 0.75}, 2)]
    assert any("acc: 0.7500" in line for line in _lines(caplog, "Epoch(val) [2]"))


@pytest.mark.parametrize(
    ("log_metric_by_epoch", "by_epoch"), [(False, True), (True, False), (False, False)]
)
def test_validation_summary_is_stepped_by_iteration_otherwise(
    tmp_path: Path, log_metric_by_epoch: bool, by_epoch: bool
) -> None:
    runner = _runner(tmp_path, by_epoch=by_epoch)
    runner.epoch, runner.iter = 2, 8
    runner.message_hub.update_scalar("val/time", 0.5)
    hook = LoggerHook(log_metric_by_epoch=log_metric_by_epoch, progress_bar=False)
    hook.after_val_epoch(runner, {})
    [(tags, step)] = runner.visualizer.scalars
    assert step == 8
    assert "time" in tags


def test_validation_without_training_is_stepped_at_zero(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    runner.train_loop = None
    LoggerHook(progress_bar=False).after_val_epoch(runner, {})
    assert runner.visualizer.scalars[0][1] == 0


def test_validation_without_a_dataloader_fails_naming_it(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    runner.val_dataloader = None
    with pytest.raises(ValueError, match=r"runner\.val_dataloader is None"):
        LoggerHook(progress_bar=False).after_val_epoch(runner, {})


def test_test_summary_includes_non_scalar_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = _runner(tmp_path)
    runner.message_hub.update_info("test/names", ["a", "b"], resumed=False)
    with caplog.at_level(logging.INFO):
        LoggerHook(progress_bar=False).after_test_epoch(runner, {})
    assert any("names: ['a', 'b']" in line for line in _lines(caplog, "Epoch(test)"))


def test_after_run_closes_the_visualizer(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    LoggerHook(progress_bar=False).after_run(runner)
    assert runner.visualizer.closed == 1


# --- LoggerHook: progress bar --------------------------------------------------------------


class FakeBar:
    instances: ClassVar[list[FakeBar]] = []

    def __init__(self, total: int | None, description: str, *, stream: Any = None) -> None:
        self.total, self.description = total, description
        self.updates: list[tuple[int, dict[str, float]]] = []
        self.closed = False
        FakeBar.instances.append(self)

    def update(self, completed: int, **fields: float) -> None:
        assert not self.closed
        self.updates.append((completed, fields))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def progress(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A fake progress module in sys.modules; ``wanted`` sets what progress_wanted says."""
    state = SimpleNamespace(wanted=True)
    module = ModuleType(PROGRESS_MODULE)
    module.progress_wanted = lambda stream=None: state.wanted  # type: ignore[attr-defined]
    module.EpochProgressBar = FakeBar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PROGRESS_MODULE, module)
    FakeBar.instances = []
    return state


def test_auto_bar_on_a_terminal_draws_one_bar_per_epoch(
    tmp_path: Path, progress: SimpleNamespace
) -> None:
    runner = _runner(tmp_path, LoggerHook(interval=2), max_epochs=2, batches=3)
    fake.train(runner)
    assert [(bar.total, bar.description) for bar in FakeBar.instances] == [
        (3, "Epoch 1"),
        (3, "Epoch 2"),
    ]
    first = FakeBar.instances[0]
    assert [completed for completed, _ in first.updates] == [1, 2, 3]
    assert first.updates[1][1] == {"loss": pytest.approx(0.5)}  # float of tensor(1/2)
    assert all(bar.closed for bar in FakeBar.instances)
    assert _train_steps(runner) == [2, 5]  # log lines are still written


def test_iteration_based_bar_counts_the_whole_run(
    tmp_path: Path, progress: SimpleNamespace
) -> None:
    runner = _runner(tmp_path, LoggerHook(), by_epoch=False, max_iters=4)
    fake.train(runner, outputs=lambda runner, idx: {"acc": 1.0})  # no loss: no fields
    [bar] = FakeBar.instances
    assert bar.total == 4
    assert bar.updates == [(1, {}), (2, {}), (3, {}), (4, {})]
    assert bar.closed


@pytest.mark.parametrize(
    ("setting", "wanted", "rank", "bars"),
    [
        ("auto", False, 0, 0),
        ("auto", True, 1, 0),
        (True, False, 0, 1),
        (False, True, 0, 0),
    ],
)
def test_when_a_bar_is_drawn(
    tmp_path: Path, progress: SimpleNamespace, setting: Any, wanted: bool, rank: int, bars: int
) -> None:
    progress.wanted = wanted
    runner = _runner(tmp_path, LoggerHook(progress_bar=setting), max_epochs=1, rank=rank)
    fake.train(runner)
    assert len(FakeBar.instances) == bars


def test_forced_bar_without_the_module_warns_and_trains_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, PROGRESS_MODULE, None)  # import fails
    runner = _runner(tmp_path, LoggerHook(interval=1, progress_bar=True), max_epochs=1)
    with caplog.at_level(logging.INFO):
        fake.train(runner)
    assert any("progress_bar=True" in r.getMessage() for r in caplog.records)
    assert len(_train_steps(runner)) == 4


def test_a_bar_left_open_by_a_stopped_run_is_closed_after_training(
    tmp_path: Path, progress: SimpleNamespace
) -> None:
    hook = LoggerHook()
    runner = _runner(tmp_path, hook)
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    hook.after_train(runner)
    assert FakeBar.instances[0].closed


# --- ParamSchedulerHook ----------------------------------------------------------------------


def _lr(runner: Any, group: int = 0) -> float:
    return float(runner.optim_wrapper.param_groups[group]["lr"])


def test_iteration_and_epoch_schedulers_step_at_their_cadence(tmp_path: Path) -> None:
    schedulers = [
        dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=3),
        dict(type="MultiStepLR", milestones=[1], gamma=0.1, by_epoch=True),
    ]
    runner = _runner(tmp_path, ParamSchedulerHook(), schedulers=schedulers, max_epochs=2)
    seen: list[float] = []
    fake.train(runner, outputs=lambda runner, idx: seen.append(_lr(runner)) or {})
    # warm-up over iterations 0-2, then the epoch milestone divides by 10
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01])


def test_a_dict_of_scheduler_lists_steps_each(tmp_path: Path) -> None:
    schedulers = dict(
        gen=[dict(type="ConstantLR", factor=0.5, by_epoch=False, end=2)],
        disc=[dict(type="StepLR", step_size=1, gamma=0.5, by_epoch=True)],
    )
    runner = _runner(tmp_path, ParamSchedulerHook(), optim="dict", schedulers=schedulers)
    fake.train(runner)
    assert runner.optim_wrapper["gen"].param_groups[0]["lr"] == pytest.approx(0.2)
    # StepLR ends at max_epochs (3): two of its three epoch steps fall inside the window
    assert runner.optim_wrapper["disc"].param_groups[0]["lr"] == pytest.approx(0.02 / 4)


def test_no_schedulers_is_a_no_op(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ParamSchedulerHook())
    fake.train(runner, metrics=lambda runner: {"acc": 1.0})
    assert _lr(runner) == pytest.approx(0.1)


def test_schedulers_are_sorted_once_in_before_train(tmp_path: Path) -> None:
    runner = _runner(
        tmp_path, schedulers=[dict(type="ConstantLR", factor=0.5, by_epoch=False, end=3)]
    )
    [scheduler] = runner.param_schedulers
    hook = ParamSchedulerHook()
    hook.before_train(runner)
    runner.param_schedulers = "not read again"  # the iteration stages use the prebuilt tuple
    hook.after_train_iter(runner, batch_idx=0)
    hook.after_train_epoch(runner)
    assert scheduler._global_step == 1


@pytest.mark.parametrize(
    ("schedulers", "match"),
    [
        ("cosine", r"runner\.param_schedulers must be a list.*str"),
        ({"gen": ConstantLR}, r"param_schedulers\['gen'\] must be a list"),
        ([{"type": "ConstantLR"}], r"param_schedulers\[0\] must be a built.*dict"),
    ],
)
def test_bad_param_schedulers_are_a_type_error_naming_where(
    tmp_path: Path, schedulers: Any, match: str
) -> None:
    runner = _runner(tmp_path, ParamSchedulerHook())
    runner.param_schedulers = schedulers
    with pytest.raises(HookError) as info:
        fake.train(runner)
    assert isinstance(info.value.__cause__, TypeError)
    info.match(match)
    with pytest.raises(TypeError, match=match):
        ParamSchedulerHook().before_train(runner)


class PlateauLike(ConstantLR):
    """An epoch scheduler that asks for validation metrics, as ReduceOnPlateau does."""

    need_val_args = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.received: list[Any] = []
        super().__init__(*args, **kwargs)

    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        self.received.append(metrics)
        super().step()


def test_schedulers_asking_for_metrics_get_them_after_validation(tmp_path: Path) -> None:
    runner = _runner(tmp_path, max_epochs=2)
    plateau = PlateauLike(runner.optim_wrapper, factor=0.5, by_epoch=True)
    plain = ConstantLR(runner.optim_wrapper, factor=0.5, by_epoch=True)
    runner.param_schedulers = [plateau, plain]
    runner.register_hook(ParamSchedulerHook())
    fake.train(runner, metrics=[{"loss": 0.3}, {"loss": 0.2}])
    # constructor, then per epoch: after_train_epoch (no metrics) and after_val_epoch
    assert plateau.received == [None, None, {"loss": 0.3}, None, {"loss": 0.2}]
    assert plain._global_step == 2


def test_metrics_are_not_passed_outside_training_or_when_none(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    plateau = PlateauLike(runner.optim_wrapper, factor=0.5, by_epoch=True)
    runner.param_schedulers = [plateau]
    hook = ParamSchedulerHook()
    hook.after_val_epoch(runner, {"loss": 0.1})  # runner.val() alone: no before_train
    hook.before_train(runner)
    hook.after_val_epoch(runner, None)
    assert plateau.received == [None]
