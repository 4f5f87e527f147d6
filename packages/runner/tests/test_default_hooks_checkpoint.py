"""CheckpointHook: which files are written when, pruning, best tracking, bad arguments.

The fake runner's ``save_checkpoint`` writes a tiny ``torch.save`` file and the
``last_checkpoint`` pointer (when asked), and records every call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import _fake_runner as fake  # registered by conftest.py
import pytest
import torch

from camshaft.runner.checkpoint import read_last_checkpoint
from camshaft.runner.hooks import HookError
from camshaft.runner.hooks._checkpoint_hook import CheckpointHook


def _run(tmp_path: Path, hook: CheckpointHook, metrics: Any = None, **kwargs: Any) -> Any:
    """Train a fake runner (work_dir ``tmp_path/work``) with ``hook``; return the runner."""
    runner = fake.FakeRunner(tmp_path / "work", **kwargs)
    runner.register_hook(hook)
    fake.train(runner, metrics=metrics)
    return runner


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.suffix == ".pth")


# --- periodic checkpoints -------------------------------------------------------------------


def test_every_epoch_is_saved_with_its_number_and_the_pointer_follows(tmp_path: Path) -> None:
    runner = _run(tmp_path, CheckpointHook(), max_epochs=3, batches=2)
    work = tmp_path / "work"
    assert runner.saved_names() == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]
    assert _files(work) == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]
    assert read_last_checkpoint(work) == work / "epoch_3.pth"
    first = runner.saved[0]
    assert first.meta == {"epoch": 1, "iter": 2}
    assert (first.save_optimizer, first.save_param_scheduler, first.update_pointer) == (
        True,
        True,
        True,
    )
    assert runner.message_hub.get_info("last_ckpt") == str(work / "epoch_3.pth")


@pytest.mark.parametrize(
    ("save_last", "expected"),
    [
        (True, ["epoch_2.pth", "epoch_4.pth", "epoch_5.pth"]),
        (False, ["epoch_2.pth", "epoch_4.pth"]),
    ],
)
def test_interval_and_save_last_by_epoch(
    tmp_path: Path, save_last: bool, expected: list[str]
) -> None:
    hook = CheckpointHook(interval=2, save_last=save_last)
    assert _run(tmp_path, hook, max_epochs=5, batches=1).saved_names() == expected


@pytest.mark.parametrize(
    ("save_last", "expected"),
    [(True, ["iter_3.pth", "iter_6.pth", "iter_7.pth"]), (False, ["iter_3.pth", "iter_6.pth"])],
)
def test_interval_and_save_last_by_iteration(
    tmp_path: Path, save_last: bool, expected: list[str]
) -> None:
    hook = CheckpointHook(interval=3, by_epoch=False, save_last=save_last)
    runner = _run(tmp_path, hook, by_epoch=False, max_iters=7)
    assert runner.saved_names() == expected
    assert runner.saved[0].meta == {"epoch": 0, "iter": 3}
    assert runner.saved[0].by_epoch is False


def test_epoch_based_hook_is_not_called_every_iteration() -> None:
    assert "after_train_iter" not in CheckpointHook(by_epoch=True).get_triggered_stages()
    assert "after_train_epoch" in CheckpointHook(by_epoch=True).get_triggered_stages()
    assert "after_train_iter" in CheckpointHook(by_epoch=False).get_triggered_stages()


def test_interval_minus_one_saves_only_the_last(tmp_path: Path) -> None:
    assert _run(
        tmp_path / "e", CheckpointHook(interval=-1), max_epochs=3, batches=1
    ).saved_names() == ["epoch_3.pth"]
    by_iter = CheckpointHook(interval=-1, by_epoch=False)
    assert _run(tmp_path / "i", by_iter, by_epoch=False, max_iters=4).saved_names() == [
        "iter_4.pth"
    ]
    with pytest.raises(ValueError, match=r"`interval` must be a positive int or -1 .*got -2"):
        CheckpointHook(interval=-2)


def test_save_begin_starts_the_count_later(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=2, save_begin=3, save_last=False)
    runner = _run(tmp_path, hook, max_epochs=7, batches=1)
    assert runner.saved_names() == ["epoch_3.pth", "epoch_5.pth", "epoch_7.pth"]


def test_optimizer_and_scheduler_flags_reach_save_checkpoint(tmp_path: Path) -> None:
    hook = CheckpointHook(save_optimizer=False, save_param_scheduler=False)
    saved = _run(tmp_path, hook, max_epochs=1, batches=1).saved[0]
    assert (saved.save_optimizer, saved.save_param_scheduler) == (False, False)


def test_an_epoch_hook_ignores_iterations_and_an_iteration_hook_epochs(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    by_epoch, by_iter = CheckpointHook(interval=1), CheckpointHook(interval=1, by_epoch=False)
    by_epoch.after_train_iter(runner, batch_idx=0)
    by_iter.after_train_epoch(runner)
    assert runner.saved == []


def test_out_dir_gets_the_work_dir_name_appended(tmp_path: Path) -> None:
    runner = _run(tmp_path, CheckpointHook(out_dir=tmp_path / "ckpts"), max_epochs=1, batches=1)
    assert runner.saved[0].path == tmp_path / "ckpts" / "work" / "epoch_1.pth"


def test_out_dir_equal_to_work_dir_is_used_as_is(tmp_path: Path) -> None:
    hook = CheckpointHook(out_dir=str(tmp_path / "work"))
    runner = _run(tmp_path, hook, max_epochs=1, batches=1)
    assert runner.saved[0].path == tmp_path / "work" / "epoch_1.pth"


# --- max_keep_ckpts ---------------------------------------------------------------------------


def test_max_keep_ckpts_keeps_the_newest_periodic_ones(tmp_path: Path) -> None:
    hook = CheckpointHook(max_keep_ckpts=2, save_best="acc")
    metrics = [{"acc": 0.9}, {"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}]
    _run(tmp_path, hook, metrics, max_epochs=4, batches=1)
    # the best (epoch 1) is never pruned
    assert _files(tmp_path / "work") == ["best_acc_epoch_1.pth", "epoch_3.pth", "epoch_4.pth"]


def test_max_keep_ckpts_by_iteration(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=1)
    _run(tmp_path, hook, by_epoch=False, max_iters=6)
    assert _files(tmp_path / "work") == ["iter_6.pth"]


def test_max_keep_ckpts_with_a_custom_template_remembers_saved_steps(tmp_path: Path) -> None:
    hook = CheckpointHook(max_keep_ckpts=2, filename_tmpl="ckpt_{:03d}.pth")
    runner = _run(tmp_path, hook, max_epochs=4, batches=1)
    assert _files(tmp_path / "work") == ["ckpt_003.pth", "ckpt_004.pth"]
    assert runner.message_hub.get_info("keep_ckpt_ids") == [3, 4]


def test_pruning_happens_on_rank_zero_only(tmp_path: Path) -> None:
    hook = CheckpointHook(max_keep_ckpts=1)
    _run(tmp_path, hook, max_epochs=3, batches=1, rank=1)
    assert _files(tmp_path / "work") == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]


# --- save_best --------------------------------------------------------------------------------


def test_best_is_saved_on_improvement_and_the_previous_best_deleted(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="acc")
    runner = _run(tmp_path, hook, [{"acc": 0.5}, {"acc": 0.7}, {"acc": 0.6}], max_epochs=3)
    work = tmp_path / "work"
    assert runner.saved_names() == ["best_acc_epoch_1.pth", "best_acc_epoch_2.pth"]
    assert _files(work) == ["best_acc_epoch_2.pth"]
    best = runner.saved[-1]
    assert (best.save_optimizer, best.save_param_scheduler, best.update_pointer) == (
        False,
        False,
        False,
    )
    assert best.meta == {"epoch": 2, "iter": 8}
    hub = runner.message_hub
    assert hub.get_info("best_score_acc") == pytest.approx(0.7)
    assert hub.get_info("best_score") == pytest.approx(0.7)
    assert (
        hub.get_info("best_ckpt_acc")
        == hub.get_info("best_ckpt")
        == str(work / "best_acc_epoch_2.pth")
    )
    assert read_last_checkpoint(work) is None  # best saves never move the pointer


def test_the_hub_holding_the_best_is_in_the_best_checkpoint(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="acc")
    runner = _run(tmp_path, hook, [{"acc": 0.5}], max_epochs=1)
    assert runner.message_hub.state_dict()["runtime_info"]["best_score_acc"] == 0.5


def test_a_loss_key_is_better_when_smaller(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="val_loss")
    runner = _run(tmp_path, hook, [{"val_loss": 0.5}, {"val_loss": 0.7}, {"val_loss": 0.2}])
    assert runner.saved_names() == ["best_val_loss_epoch_1.pth", "best_val_loss_epoch_3.pth"]


def test_an_explicit_rule_overrides_the_inferred_one(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="acc", rule="less")
    runner = _run(tmp_path, hook, [{"acc": 0.5}, {"acc": 0.7}, {"acc": 0.2}])
    assert runner.saved_names() == ["best_acc_epoch_1.pth", "best_acc_epoch_3.pth"]


def test_several_keys_keep_their_own_best(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best=["acc", "loss"])
    metrics = [{"acc": 0.5, "loss": 1.0}, {"acc": 0.7, "loss": 2.0}]
    runner = _run(tmp_path, hook, metrics, max_epochs=2)
    assert _files(tmp_path / "work") == ["best_acc_epoch_2.pth", "best_loss_epoch_1.pth"]
    hub = runner.message_hub
    assert (hub.get_info("best_score_acc"), hub.get_info("best_score_loss")) == (0.7, 1.0)
    assert hub.get_info("best_score") is None


def test_auto_uses_the_first_metric_key(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="auto")
    metrics = [{"coco/bbox_mAP": 0.3, "loss": 1.0}, {"coco/bbox_mAP": 0.4}]
    runner = _run(tmp_path, hook, metrics, max_epochs=2)
    assert runner.saved_names() == [
        "best_coco_bbox_mAP_epoch_1.pth",
        "best_coco_bbox_mAP_epoch_2.pth",
    ]
    assert hook.key_indicators == ["coco/bbox_mAP"]
    assert hook.rules == ["greater"]


def test_auto_with_a_key_whose_rule_cannot_be_inferred_asks_for_rule(tmp_path: Path) -> None:
    hook = CheckpointHook(save_best="auto")
    with pytest.raises(HookError) as info:
        _run(tmp_path, hook, [{"psnr": 30.0}], max_epochs=1)
    assert isinstance(info.value.__cause__, ValueError)
    info.match(r"'psnr'.*rule='greater'")


def test_auto_with_an_explicit_rule(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="auto", rule="greater")
    runner = _run(tmp_path, hook, [{"psnr": 30.0}, {"psnr": 29.0}], max_epochs=2)
    assert runner.saved_names() == ["best_psnr_epoch_1.pth"]


def test_best_by_iteration_is_named_by_iteration(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=100, by_epoch=False, save_last=False, save_best="acc")
    runner = fake.FakeRunner(tmp_path / "work", by_epoch=False, max_iters=4)
    runner.register_hook(hook)
    fake.train(runner, metrics=lambda runner: {"acc": float(runner.iter)}, val_interval=2)
    assert runner.saved_names() == ["best_acc_iter_2.pth", "best_acc_iter_4.pth"]
    assert _files(tmp_path / "work") == ["best_acc_iter_4.pth"]


def test_a_resumed_best_score_is_respected(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path / "work", max_epochs=2)
    runner.message_hub.update_info("best_score_acc", 0.8)
    runner.register_hook(CheckpointHook(interval=10, save_last=False, save_best="acc"))
    fake.train(runner, metrics=[{"acc": 0.7}, {"acc": 0.9}])
    assert runner.saved_names() == ["best_acc_epoch_2.pth"]


def test_an_mmengine_best_score_is_respected_for_a_single_key(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    old = work / "best_acc_epoch_1.pth"
    torch.save({}, old)
    runner = fake.FakeRunner(work, max_epochs=2)
    runner.message_hub.update_info_dict({"best_score": 0.8, "best_ckpt": str(old)})
    runner.register_hook(CheckpointHook(interval=10, save_last=False, save_best="acc"))
    fake.train(runner, metrics=[{"acc": 0.7}, {"acc": 0.9}])
    assert _files(work) == ["best_acc_epoch_2.pth"]  # the old best was replaced


def test_previous_best_is_kept_on_other_ranks(tmp_path: Path) -> None:
    hook = CheckpointHook(interval=10, save_last=False, save_best="acc")
    _run(tmp_path, hook, [{"acc": 0.5}, {"acc": 0.7}], max_epochs=2, rank=1)
    assert _files(tmp_path / "work") == ["best_acc_epoch_1.pth", "best_acc_epoch_2.pth"]


def test_a_missing_save_best_key_lists_the_metrics_present(tmp_path: Path) -> None:
    hook = CheckpointHook(save_best=["acc", "top5"])
    runner = fake.FakeRunner(tmp_path)
    hook.before_train(runner)
    with pytest.raises(KeyError, match=r"'top5'.*\['acc', 'loss'\]"):
        hook.after_val_epoch(runner, {"acc": 0.5, "loss": 0.1})


def test_a_non_numeric_save_best_metric_is_a_type_error(tmp_path: Path) -> None:
    hook = CheckpointHook(save_best="acc")
    runner = fake.FakeRunner(tmp_path)
    hook.before_train(runner)
    with pytest.raises(TypeError, match=r"'acc'.*number.*list"):
        hook.after_val_epoch(runner, {"acc": [0.5, 0.6]})


def test_empty_metrics_warn_and_save_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hook = CheckpointHook(save_best="acc")
    runner = fake.FakeRunner(tmp_path)
    hook.before_train(runner)
    with caplog.at_level(logging.WARNING):
        hook.after_val_epoch(runner, {})
    assert runner.saved == []
    assert any("no metrics" in record.getMessage() for record in caplog.records)


def test_validation_outside_training_saves_no_best(tmp_path: Path) -> None:
    runner = fake.FakeRunner(tmp_path)
    CheckpointHook(save_best="acc").after_val_epoch(runner, {"acc": 1.0})
    assert runner.saved == []


# --- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("accuracy/top1", "greater"),
        ("mAP", "greater"),
        ("coco/bbox_mAP", "greater"),
        ("AR@100", "greater"),
        ("mIoU", "greater"),
        ("AUC", "greater"),
        ("val_loss", "less"),
        ("Loss", "less"),
    ],
)
def test_rules_are_inferred_from_the_key(key: str, rule: str) -> None:
    assert CheckpointHook(save_best=key).rules == [rule]


def test_greater_and_less_keys_replace_the_defaults() -> None:
    hook = CheckpointHook(save_best=["psnr", "mse"], greater_keys="psnr", less_keys=["mse"])
    assert hook.rules == ["greater", "less"]
    with pytest.raises(ValueError, match="'acc'"):
        CheckpointHook(save_best="acc", greater_keys=["psnr"])


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"interval": 0}, ValueError, "interval.*positive int.*0"),
        ({"interval": -3}, ValueError, "interval.*-3"),
        ({"interval": "1"}, TypeError, "interval.*str"),
        ({"interval": True}, TypeError, "interval.*bool"),
        ({"by_epoch": "yes"}, TypeError, "by_epoch.*bool"),
        ({"save_last": None}, TypeError, "save_last.*bool"),
        ({"max_keep_ckpts": 0}, ValueError, "max_keep_ckpts.*got 0"),
        ({"max_keep_ckpts": -2}, ValueError, "max_keep_ckpts.*-2"),
        ({"max_keep_ckpts": 1.5}, TypeError, "max_keep_ckpts.*float"),
        ({"save_begin": -1}, ValueError, "save_begin.*-1"),
        ({"out_dir": 5}, TypeError, "out_dir.*int"),
        ({"save_best": 5}, TypeError, "save_best.*int"),
        ({"save_best": ""}, ValueError, "save_best.*empty"),
        ({"save_best": []}, ValueError, "save_best.*empty"),
        ({"save_best": ["acc", "acc"]}, ValueError, "save_best.*twice"),
        ({"save_best": ["auto", "acc"]}, ValueError, "'auto'.*other keys"),
        ({"save_best": "acc", "rule": "bigger"}, ValueError, "rule.*'greater'.*'bigger'"),
        ({"save_best": "acc", "rule": 1}, TypeError, "rule.*int"),
        ({"save_best": ["acc", "loss"], "rule": ["greater"]}, ValueError, "one rule per"),
        ({"save_best": "psnr"}, ValueError, "'psnr'.*rule="),
        ({"greater_keys": [1]}, TypeError, "greater_keys"),
        ({"less_keys": 3}, TypeError, "less_keys"),
        ({"filename_tmpl": "ckpt.pth"}, ValueError, "filename_tmpl.*placeholder"),
        ({"filename_tmpl": "{step}.pth"}, ValueError, "filename_tmpl.*KeyError"),
        ({"filename_tmpl": "best_{}.pth"}, ValueError, "filename_tmpl.*best_"),
        ({"filename_tmpl": 7}, TypeError, "filename_tmpl.*int"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        CheckpointHook(**kwargs)
