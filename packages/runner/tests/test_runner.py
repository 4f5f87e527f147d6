"""The Runner end to end on a toy classifier: training, validation, checkpoints, configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import runner_toys as toys  # registered by conftest.py
import torch
from torch.utils.data import DataLoader

from camshaft.registry import ConfigError
from camshaft.runner import Runner
from camshaft.runner.hooks import Hook, HookError


def _loader(n: int = 24, batch_size: int = 6, shuffle: bool = True) -> dict[str, Any]:
    return dict(
        dataset=toys.ToyDataset(n),
        batch_size=batch_size,
        sampler=dict(type="DefaultSampler", shuffle=shuffle),
        collate_fn=dict(type="default_collate"),
    )


def _kwargs(work_dir: Path, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        model=toys.ToyClassifier(data_preprocessor=toys.MixUpPreprocessor()),
        work_dir=str(work_dir),
        train_dataloader=_loader(),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_loader(12, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type=toys.ToyAccuracy),
        randomness=dict(seed=0),
    )
    kwargs.update(overrides)
    return kwargs


def test_epoch_training_validates_checkpoints_and_logs(tmp_path: Path) -> None:
    runner = Runner(**_kwargs(tmp_path))
    before = {k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()}
    runner.train()
    assert (runner.epoch, runner.iter) == (2, 8)
    assert any(
        not torch.equal(before[k], v) for k, v in runner.unwrapped_model.state_dict().items()
    )
    assert (tmp_path / "epoch_1.pth").is_file()
    assert (tmp_path / "epoch_2.pth").is_file()
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("epoch_2.pth")
    checkpoint = torch.load(tmp_path / "epoch_2.pth", weights_only=True)
    assert checkpoint["meta"]["epoch"] == 2
    assert checkpoint["meta"]["iter"] == 8
    assert checkpoint["meta"]["seed"] == 0
    assert checkpoint["meta"]["dataset_meta"] == {"classes": ["a", "b", "c"]}
    assert set(checkpoint) >= {"state_dict", "optimizer", "message_hub", "rng", "loop"}
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in checkpoint["state_dict"])
    log_dir = Path(runner.log_dir)
    assert (log_dir / f"{runner.timestamp}.log").is_file()
    lines = (log_dir / "vis_data" / "scalars.json").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert any("accuracy" in r for r in records), records
    assert (log_dir / "vis_data" / "config.py").is_file()
    assert runner.message_hub.get_scalar("val/accuracy").current() >= 0


def test_iteration_training_validates_every_interval(tmp_path: Path) -> None:
    seen: list[int] = []

    class CountVal(Hook):
        def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
            seen.append(runner.iter)

    runner = Runner(
        **_kwargs(
            tmp_path,
            train_cfg=dict(by_epoch=False, max_iters=10, val_interval=4),
            default_hooks=dict(checkpoint=dict(by_epoch=False, interval=5)),
            custom_hooks=[CountVal()],
        )
    )
    runner.train()
    assert runner.iter == 10
    assert seen == [4, 8, 10]
    assert sorted(p.name for p in tmp_path.glob("iter_*.pth")) == ["iter_10.pth", "iter_5.pth"]


def test_epoch_checkpoint_is_written_after_that_epochs_validation(tmp_path: Path) -> None:
    from camshaft.runner import EarlyStoppingHook

    # min_delta so large that only the first validation counts as an improvement
    stopper = EarlyStoppingHook(monitor="accuracy", patience=5, min_delta=1000.0)
    runner = Runner(**_kwargs(tmp_path, custom_hooks=[stopper]))
    runner.train()
    checkpoint = torch.load(tmp_path / "epoch_2.pth", weights_only=True)
    # The hook state and the hub include epoch 2's validation, so a resume keeps counting.
    saved = checkpoint["hook_state"]["EarlyStoppingHook"]
    assert saved == {"best_score": stopper.best_score, "wait_count": 1}
    assert stopper.wait_count == 1
    first = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert first["hook_state"]["EarlyStoppingHook"]["wait_count"] == 0
    assert checkpoint["meta"]["epoch"] == 2


def test_val_and_test_alone_load_weights(tmp_path: Path) -> None:
    trained = Runner(**_kwargs(tmp_path / "a"))
    trained.train()
    runner = Runner(
        model=toys.ToyClassifier(data_preprocessor=toys.MixUpPreprocessor()),
        work_dir=str(tmp_path / "b"),
        test_dataloader=_loader(12, shuffle=False),
        test_cfg=dict(),
        test_evaluator=[toys.ToyAccuracy()],
        load_from=str(tmp_path / "a" / "epoch_2.pth"),
    )
    metrics = runner.test()
    assert set(metrics) == {"accuracy"}
    for key, value in trained.unwrapped_model.state_dict().items():
        assert torch.equal(runner.unwrapped_model.state_dict()[key], value)


def test_val_fp16_on_cpu_uses_bfloat16(tmp_path: Path) -> None:
    dtypes: list[torch.dtype] = []

    class Spy(toys.ToyClassifier):
        def forward(self, inputs: Any, labels: Any = None, mode: str = "tensor") -> Any:
            dtypes.append(self.net[0](inputs).dtype)
            return super().forward(inputs, labels, mode)

    runner = Runner(
        **_kwargs(
            tmp_path, model=Spy(data_preprocessor=toys.MixUpPreprocessor()), val_cfg=dict(fp16=True)
        )
    )
    runner.val()
    assert dtypes
    assert set(dtypes) == {torch.bfloat16}


def test_evaluator_forms(tmp_path: Path) -> None:
    from camshaft.runner.evaluator import Evaluator

    for i, form in enumerate(
        [
            toys.ToyAccuracy(),
            dict(metrics=toys.ToyAccuracy()),
            [toys.ToyAccuracy()],
            Evaluator(toys.ToyAccuracy()),
        ]
    ):
        runner = Runner(**_kwargs(tmp_path / str(i), val_evaluator=form))
        assert set(runner.val()) == {"accuracy"}


def test_default_hooks_merge_update_remove_and_custom(tmp_path: Path) -> None:
    runner = Runner(
        **_kwargs(
            tmp_path,
            default_hooks=dict(checkpoint=dict(interval=2), timer=None),
            custom_hooks=[dict(type="EmptyCacheHook")],
        )
    )
    names = [type(h).__name__ for h in runner.hooks]
    assert "IterTimerHook" not in names
    assert "EmptyCacheHook" in names
    checkpoint_hook = next(h for h in runner.hooks if type(h).__name__ == "CheckpointHook")
    assert checkpoint_hook.interval == 2
    runner.train()
    assert not (tmp_path / "epoch_1.pth").exists()
    assert (tmp_path / "epoch_2.pth").exists()


def test_from_cfg_with_config_object(tmp_path: Path) -> None:
    from camshaft.registry import Config

    cfg = Config(_kwargs(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 8
    assert runner.cfg is cfg


def test_compiled_model_saves_plain_keys(tmp_path: Path) -> None:
    runner = Runner(
        **_kwargs(
            tmp_path,
            train_cfg=dict(by_epoch=True, max_epochs=1),
            cfg=dict(compile=dict(backend="eager")),
        )
    )
    runner.train()
    keys = torch.load(tmp_path / "epoch_1.pth", weights_only=True)["state_dict"].keys()
    assert keys
    assert not any("_orig_mod" in k or k.startswith("module.") for k in keys)


def test_close_releases_the_log_file_and_is_idempotent(tmp_path: Path) -> None:
    with Runner(**_kwargs(tmp_path, train_cfg=dict(max_epochs=1))) as runner:
        runner.train()
        assert runner.logger.handlers
    assert not runner.logger.handlers
    runner.close()
    log = Path(runner.log_dir) / f"{runner.timestamp}.log"
    assert "hooks by stage:" in log.read_text()


def test_learning_rate_recorded_when_it_changes(tmp_path: Path) -> None:
    constant = Runner(**_kwargs(tmp_path / "c", train_cfg=dict(max_epochs=1)))
    constant.train()
    assert len(constant.message_hub.get_scalar("train/lr")) == 1
    assert constant.message_hub.get_scalar("train/lr").current() == pytest.approx(0.1)
    warmup = [dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=3)]
    scheduled = Runner(
        **_kwargs(tmp_path / "s", train_cfg=dict(max_epochs=1), param_scheduler=warmup)
    )
    scheduled.train()
    lrs = scheduled.message_hub.get_scalar("train/lr").data[0].tolist()
    assert lrs == pytest.approx([0.05, 0.075, 0.1])  # the warm-up, then constant: once


# --- non-finite losses -------------------------------------------------------------


class _NaNAt(toys.ToyClassifier):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, inputs: Any, labels: Any = None, mode: str = "tensor") -> Any:
        out = super().forward(inputs, labels, mode)
        if mode == "loss":
            self.calls += 1
            if self.calls == self.at:
                out["loss"] = out["loss"] * float("nan")
        return out


def _plain_loader() -> DataLoader:
    return DataLoader(
        toys.ToyDataset(24),
        batch_size=6,
        collate_fn=lambda b: {
            "inputs": torch.stack([x for x, _ in b]),
            "labels": torch.stack([y for _, y in b]),
        },
    )


def test_nan_loss_stops_before_the_step_naming_iteration_and_terms(tmp_path: Path) -> None:
    from camshaft.runner import NonFiniteLossError

    model = _NaNAt(3)
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=_plain_loader(),
        train_cfg=dict(max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
    )
    snapshots: list[dict[str, torch.Tensor]] = []

    class Snap(Hook):
        def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
            snapshots.append({k: v.clone() for k, v in runner.unwrapped_model.state_dict().items()})

    runner.register_hook(Snap())
    with pytest.raises(NonFiniteLossError, match=r"iteration 3 \(epoch 1\).*loss=nan.*acc_proxy="):
        runner.train()
    for key, value in runner.unwrapped_model.state_dict().items():
        assert torch.equal(value, snapshots[-1][key]), f"{key} changed by the NaN step"


def test_nan_loss_skip_policy_skips_and_continues(tmp_path: Path) -> None:
    runner = Runner(
        model=_NaNAt(2),
        work_dir=str(tmp_path),
        train_dataloader=_plain_loader(),
        train_cfg=dict(max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
        cfg=dict(nonfinite="skip"),
    )
    runner.train()
    assert runner.iter == 4
    assert all(torch.isfinite(v).all() for v in runner.unwrapped_model.state_dict().values())
    assert runner.optim_wrapper.loss_guard.skipped == 1


def test_bad_nonfinite_policy(tmp_path: Path) -> None:
    runner = Runner(**_kwargs(tmp_path, cfg=dict(nonfinite="ignore")))
    with pytest.raises(
        ValueError, match="`nonfinite` must be one of 'error', 'skip', 'off', got 'ignore'"
    ):
        runner.train()


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (
            "optim_wrapper",
            "train is half configured: got train_dataloader, train_cfg but not optim_wrapper",
        ),
        (
            "val_evaluator",
            "val is half configured: got val_dataloader, val_cfg but not val_evaluator",
        ),
    ],
)
def test_half_configured_triples_name_the_missing_part(
    tmp_path: Path, drop: str, message: str
) -> None:
    kwargs = _kwargs(tmp_path)
    kwargs[drop] = None
    with pytest.raises(ConfigError, match=message):
        Runner(**kwargs)


def test_unknown_loop_hook_metric_and_dataset_types_list_close_names(tmp_path: Path) -> None:
    from camshaft.registry import RegistryError

    with pytest.raises(RegistryError, match="EpochBasedTrainLoop"):
        Runner(**_kwargs(tmp_path, train_cfg=dict(type="EpochBasedTrainLop", max_epochs=1))).train()
    with pytest.raises(RegistryError, match="CheckpointHook"):
        Runner(**_kwargs(tmp_path, custom_hooks=[dict(type="CheckpointHok")]))
    with pytest.raises(RegistryError, match="'NoSuchMetric' is not registered in registry"):
        Runner(**_kwargs(tmp_path, val_evaluator=dict(type="NoSuchMetric"))).val()
    bad_loader = dict(dataset=dict(type="NoSuchDataset"), batch_size=2)
    with pytest.raises(RegistryError, match="NoSuchDataset"):
        Runner(**_kwargs(tmp_path, train_dataloader=bad_loader)).train()


def test_a_runner_subclass_overriding_call_hook_sees_every_iteration_stage(
    tmp_path: Path,
) -> None:
    """The loops bypass ``Runner.call_hook`` only when it is not overridden."""
    seen: list[str] = []

    class Recording(Runner):
        def call_hook(self, fn_name: str, **kwargs: Any) -> None:
            seen.append(fn_name)
            super().call_hook(fn_name, **kwargs)

    kwargs = _kwargs(tmp_path, val_dataloader=None, val_cfg=None, val_evaluator=None)
    Recording(**kwargs).train()
    assert seen.count("before_train_iter") == seen.count("after_train_iter") == 8
    counted: list[int] = []

    class Counter(Hook):
        def after_train_iter(self, runner: Any, batch_idx: int, **kwargs: Any) -> None:
            counted.append(batch_idx)

    plain = Runner(
        **_kwargs(tmp_path / "plain", val_dataloader=None, val_cfg=None, val_evaluator=None)
    )
    plain.register_hook(Counter())
    plain.train()
    assert counted == [0, 1, 2, 3] * 2


def test_failing_hook_is_named_with_its_stage(tmp_path: Path) -> None:
    class Broken(Hook):
        def before_train_epoch(self, runner: Any) -> None:
            raise ZeroDivisionError("boom")

    runner = Runner(**_kwargs(tmp_path, custom_hooks=[Broken()]))
    with pytest.raises(HookError, match=r"Broken.*before_train_epoch.*boom"):
        runner.train()


def test_resume_without_checkpoint_warns_and_starts_fresh(tmp_path: Path) -> None:
    runner = Runner(**_kwargs(tmp_path, resume=True))
    with pytest.warns(UserWarning, match="no checkpoint to resume from"):
        runner.train()
    assert runner.iter == 8


def test_resume_from_another_models_checkpoint_lists_keys(tmp_path: Path) -> None:
    from camshaft.init import CheckpointError

    Runner(**_kwargs(tmp_path / "a", train_cfg=dict(max_epochs=1))).train()
    other = torch.nn.Sequential(torch.nn.Linear(8, 4))
    runner = Runner(
        **_kwargs(
            tmp_path / "b",
            model=toys.ToyClassifier(in_features=8, classes=5),
            resume=True,
            load_from=str(tmp_path / "a" / "epoch_1.pth"),
        )
    )
    del other
    with pytest.raises(CheckpointError, match=r"net\.3\.(weight|bias)"):
        runner.train()


def test_unwritable_work_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")  # even root cannot create a directory under a file
    with pytest.raises(PermissionError, match=r"`work_dir` .*a_file/run.* cannot be written"):
        Runner(**_kwargs(blocker / "run"))


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`resume` must be a bool, got str"):
        Runner(**_kwargs(tmp_path, resume="yes"))
    with pytest.raises(
        ValueError, match="`launcher` must be one of none, pytorch, slurm, mpi; got 'local'"
    ):
        Runner(**_kwargs(tmp_path, launcher="local"))
    with pytest.raises(ConfigError, match="by_epoch=False but no 'max_iters'"):
        Runner(**_kwargs(tmp_path, train_cfg=dict(by_epoch=False))).train()
    with pytest.raises(ConfigError, match="`randomness` has unknown keys \\['sed'\\]"):
        Runner(**_kwargs(tmp_path, randomness=dict(sed=1)))
    with pytest.raises(ConfigError, match="'bogus' is not a default hook"):
        Runner(**_kwargs(tmp_path, default_hooks=dict(bogus=dict(interval=1))))
