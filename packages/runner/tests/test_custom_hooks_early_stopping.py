"""EarlyStoppingHook: rule inference, patience, min_delta, threshold, non-finite, resume."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks import HookDispatcher, Priority
from camshaft.runner.hooks._early_stopping_hook import EarlyStoppingHook
from camshaft.runner.logging import MessageHub

LOGGER = "test_custom_hooks_early_stopping"


def make_runner() -> SimpleNamespace:
    return SimpleNamespace(
        model=None,
        unwrapped_model=None,
        epoch=0,
        iter=0,
        train_loop=SimpleNamespace(by_epoch=True, stop_training=False),
        message_hub=MessageHub.get_instance("early_stopping_test"),
        logger=logging.getLogger(LOGGER),
        distributed=False,
    )


def feed(hook: EarlyStoppingHook, runner: SimpleNamespace, key: str, values: list[Any]) -> int:
    """Validate once per value; return how many validations ran before the stop (or all)."""
    for count, value in enumerate(values, start=1):
        hook.after_val_epoch(runner, metrics={key: value, "other": 0.0})
        if runner.train_loop.stop_training:
            return count
    return len(values)


# --- construction --------------------------------------------------------------------


def test_registered_built_from_config_with_very_low_priority() -> None:
    hook = HOOKS.build(dict(type="EarlyStoppingHook", monitor="loss", patience=2))
    assert isinstance(hook, EarlyStoppingHook)
    assert (hook.rule, hook.patience, hook.min_delta, hook.best_score) == ("less", 2, 0.1, math.inf)
    assert Priority[hook.priority] == Priority.VERY_LOW
    assert hook.get_triggered_stages() == [
        "after_load_checkpoint",
        "after_val_epoch",
        "before_save_checkpoint",
    ]


@pytest.mark.parametrize(
    ("monitor", "rule"),
    [
        ("accuracy/top1", "greater"),
        ("acc", "greater"),
        ("AUC", "greater"),
        ("coco/bbox_mAP", "greater"),
        ("mIoU", "greater"),
        ("ar@100", "greater"),
        ("loss", "less"),
        ("val/loss_cls", "less"),
    ],
)
def test_rule_is_inferred_from_the_metric_name(monitor: str, rule: str) -> None:
    hook = EarlyStoppingHook(monitor)
    assert hook.rule == rule
    assert hook.best_score == (-math.inf if rule == "greater" else math.inf)


def test_explicit_rule_wins_and_an_unknown_name_asks_for_one() -> None:
    assert EarlyStoppingHook("accuracy", rule="less").rule == "less"
    assert EarlyStoppingHook("psnr", rule="greater").rule == "greater"
    with pytest.raises(ValueError, match=r"`monitor`='psnr'.*pass rule='greater' or rule='less'"):
        EarlyStoppingHook("psnr")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(monitor=""), TypeError, r"`monitor` must be a non-empty metric name.*got ''"),
        (dict(monitor=None), TypeError, r"`monitor` must be a non-empty metric name.*None"),
        (
            dict(rule="bigger"),
            ValueError,
            r"`rule` must be 'greater', 'less' or None, got 'bigger'",
        ),
        (dict(patience=0), ValueError, r"`patience` must be an int >= 1, got 0"),
        (dict(patience=2.5), TypeError, r"`patience` must be an int >= 1, got 2.5"),
        (dict(patience=True), TypeError, r"`patience` must be an int >= 1, got True"),
        (dict(min_delta=-0.1), ValueError, r"`min_delta` must be a finite number >= 0, got -0.1"),
        (dict(min_delta=math.inf), ValueError, r"`min_delta` must be a finite number >= 0"),
        (dict(min_delta="0.1"), TypeError, r"`min_delta` must be a number >= 0, got '0.1'"),
        (dict(strict="yes"), TypeError, r"`strict` must be a bool, got str 'yes'"),
        (dict(check_finite=1), TypeError, r"`check_finite` must be a bool, got int 1"),
        (dict(stopping_threshold="1"), TypeError, r"`stopping_threshold` must be a number"),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        EarlyStoppingHook(**{"monitor": "acc", **kwargs})


# --- stopping ------------------------------------------------------------------------


@pytest.mark.parametrize("patience", [1, 2, 4])
def test_stops_after_exactly_patience_validations_without_improvement(patience: int) -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", min_delta=0.0, patience=patience)
    # 0.5 and 0.6 improve; then nothing beats 0.6 (an equal value is no improvement).
    values = [0.5, 0.6, 0.6, 0.55, 0.59, 0.6, 0.3, 0.2]
    assert feed(hook, runner, "acc", values) == 2 + patience
    assert runner.train_loop.stop_training
    assert hook.best_score == 0.6
    assert hook.wait_count == patience


def test_an_improvement_resets_the_wait() -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("loss", min_delta=0.0, patience=3)
    assert feed(hook, runner, "loss", [1.0, 1.1, 1.2, 0.9, 1.0, 1.0]) == 6
    assert not runner.train_loop.stop_training
    assert (hook.best_score, hook.wait_count) == (0.9, 2)
    feed(hook, runner, "loss", [0.95])
    assert runner.train_loop.stop_training


def test_min_delta_is_respected_for_both_rules() -> None:
    runner = make_runner()
    greater = EarlyStoppingHook("acc", min_delta=0.1, patience=10)
    feed(greater, runner, "acc", [0.5, 0.59])  # not more than 0.1 better
    assert (greater.best_score, greater.wait_count) == (0.5, 1)
    feed(greater, runner, "acc", [0.61])  # more than 0.1 better
    assert (greater.best_score, greater.wait_count) == (0.61, 0)

    less = EarlyStoppingHook("loss", min_delta=0.25, patience=10)
    feed(less, runner, "loss", [2.0, 1.8, 1.76])
    assert (less.best_score, less.wait_count) == (2.0, 2)
    feed(less, runner, "loss", [1.7])
    assert (less.best_score, less.wait_count) == (1.7, 0)
    assert not runner.train_loop.stop_training


def test_min_delta_counts_small_gains_towards_patience() -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", min_delta=0.05, patience=3)
    assert feed(hook, runner, "acc", [0.50, 0.52, 0.54, 0.545, 0.6]) == 4
    assert runner.train_loop.stop_training


@pytest.mark.parametrize(
    ("monitor", "threshold", "values", "stopped_at"),
    [
        ("acc", 0.9, [0.5, 0.85, 0.9, 0.95], 3),  # reaching it is enough
        ("acc", 0.9, [0.5, 0.95], 2),
        ("loss", 0.1, [1.0, 0.2, 0.1], 3),
        ("loss", 0.1, [1.0, 0.05], 2),
    ],
)
def test_reaching_the_stopping_threshold_stops(
    monitor: str,
    threshold: float,
    values: list[float],
    stopped_at: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = make_runner()
    hook = EarlyStoppingHook(monitor, min_delta=0.0, stopping_threshold=threshold)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert feed(hook, runner, monitor, values) == stopped_at
    assert runner.train_loop.stop_training
    assert hook.best_score == values[stopped_at - 1]
    assert "reached stopping_threshold" in caplog.text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_metric_stops_when_checked(
    bad: float, caplog: pytest.LogCaptureFixture
) -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("loss", patience=5)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert feed(hook, runner, "loss", [1.0, bad]) == 2
    assert runner.train_loop.stop_training
    assert hook.best_score == 1.0
    assert "EarlyStoppingHook: stopping training: loss = " in caplog.text
    assert "is not finite" in caplog.text


def test_a_nan_without_check_finite_is_just_no_improvement() -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("loss", check_finite=False, patience=2)
    assert feed(hook, runner, "loss", [1.0, math.nan]) == 2
    assert not runner.train_loop.stop_training
    assert hook.wait_count == 1
    feed(hook, runner, "loss", [math.nan])
    assert runner.train_loop.stop_training


def test_patience_stop_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=1)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        feed(hook, runner, "acc", [0.5, 0.5])
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.INFO
    assert "acc did not improve by more than min_delta = 0.1 in the last 1" in record.message


def test_tensor_metrics_are_read_as_numbers() -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=1)
    feed(hook, runner, "acc", [torch.tensor(0.5)])
    assert hook.best_score == 0.5
    with pytest.raises(TypeError, match=r"metric 'acc' must be a number, got str 'high'"):
        feed(hook, runner, "acc", ["high"])


def test_missing_monitor_strict_raises_listing_present_keys() -> None:
    hook = EarlyStoppingHook("acc", strict=True)
    with pytest.raises(
        KeyError, match=r"'acc' is not among the validation metrics \['loss', 'top'\]"
    ):
        hook.after_val_epoch(make_runner(), metrics={"top": 1.0, "loss": 0.2})


def test_missing_monitor_warns_once_and_changes_nothing() -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=1)
    with pytest.warns(
        UserWarning, match=r"'acc' is not among.*\['loss'\]; early stopping is skipped"
    ):
        hook.after_val_epoch(runner, metrics={"loss": 0.2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hook.after_val_epoch(runner, metrics={"loss": 0.1})
        hook.after_val_epoch(runner, metrics=None)
    assert not runner.train_loop.stop_training
    assert (hook.best_score, hook.wait_count) == (-math.inf, 0)


def test_works_through_the_dispatcher_and_without_a_train_loop() -> None:
    runner = make_runner()
    dispatcher = HookDispatcher()
    dispatcher.register(EarlyStoppingHook("acc", patience=1))
    dispatcher.call("after_val_epoch", runner, metrics={"acc": 0.5})
    dispatcher.call("after_val_epoch", runner, metrics={"acc": 0.4})
    assert runner.train_loop.stop_training
    runner.train_loop = None  # a validation-only run
    dispatcher.call("after_val_epoch", runner, metrics={"acc": 0.3})


# --- resume ----------------------------------------------------------------------------


def test_state_round_trips_through_a_checkpoint_and_counting_resumes(tmp_path: Path) -> None:
    runner = make_runner()
    hook = EarlyStoppingHook("acc", min_delta=0.0, patience=3)
    feed(hook, runner, "acc", [0.7, 0.6, 0.65])  # best 0.7, waiting 2
    checkpoint: dict[str, Any] = {"hook_state": {"Other": {"x": 1}}}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint["hook_state"] == {
        "Other": {"x": 1},
        "EarlyStoppingHook": {"best_score": 0.7, "wait_count": 2},
    }
    torch.save(checkpoint, tmp_path / "ckpt.pth")
    loaded = torch.load(tmp_path / "ckpt.pth", weights_only=True)

    resumed = EarlyStoppingHook("acc", min_delta=0.0, patience=3)
    resumed.after_load_checkpoint(runner, loaded)
    assert (resumed.best_score, resumed.wait_count) == (0.7, 2)
    assert feed(resumed, make_runner(), "acc", [0.69, 0.1]) == 1  # the third miss stops


def test_an_infinite_initial_best_round_trips(tmp_path: Path) -> None:
    checkpoint: dict[str, Any] = {}
    EarlyStoppingHook("loss").before_save_checkpoint(make_runner(), checkpoint)
    torch.save(checkpoint, tmp_path / "c.pth")
    hook = EarlyStoppingHook("loss")
    hook.best_score, hook.wait_count = 1.0, 3
    hook.after_load_checkpoint(make_runner(), torch.load(tmp_path / "c.pth", weights_only=True))
    assert (hook.best_score, hook.wait_count) == (math.inf, 0)


def test_checkpoints_without_its_state_leave_the_hook_alone() -> None:
    hook = EarlyStoppingHook("acc")
    hook.best_score, hook.wait_count = 0.4, 1
    for checkpoint in ({}, {"hook_state": {}}, {"hook_state": {"Other": {}}}):
        hook.after_load_checkpoint(make_runner(), checkpoint)
    assert (hook.best_score, hook.wait_count) == (0.4, 1)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ([0.5, 1], r"must be a dict with 'best_score'.*got list"),
        ({"best_score": "x", "wait_count": 1}, r"\['best_score'\] must be a number, got 'x'"),
        ({"wait_count": 1}, r"\['best_score'\] must be a number, got None"),
        ({"best_score": 0.5, "wait_count": -1}, r"\['wait_count'\] must be an int >= 0, got -1"),
        ({"best_score": 0.5, "wait_count": 1.0}, r"\['wait_count'\] must be an int >= 0, got 1.0"),
    ],
)
def test_a_malformed_state_is_refused_without_changes(state: Any, match: str) -> None:
    hook = EarlyStoppingHook("acc")
    hook.best_score, hook.wait_count = 0.4, 1
    with pytest.raises(ValueError, match=match):
        hook.after_load_checkpoint(make_runner(), {"hook_state": {"EarlyStoppingHook": state}})
    assert (hook.best_score, hook.wait_count) == (0.4, 1)


def test_a_hook_state_that_is_not_a_dict_is_refused_on_save() -> None:
    with pytest.raises(TypeError, match=r"checkpoint\['hook_state'\] must be a dict, got list"):
        EarlyStoppingHook("acc").before_save_checkpoint(make_runner(), {"hook_state": []})
