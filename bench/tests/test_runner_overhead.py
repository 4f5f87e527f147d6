"""runner_overhead's pieces: rotated rounds, the ablation contenders, the cost split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def common(load_bench):  # type: ignore[no-untyped-def]
    return load_bench("_common")


@pytest.fixture
def contenders(load_bench):  # type: ignore[no-untyped-def]
    # Imported by name (bench/ is on the path now): its dataclass needs sys.modules.
    import _runner_contenders

    return _runner_contenders


@pytest.fixture
def targets(load_bench):  # type: ignore[no-untyped-def]
    return load_bench("_runner_targets")


def _recording_runners(calls: list[str]) -> dict[str, Any]:
    def runner(name: str) -> Any:
        def run() -> str:
            calls.append(name)
            return f"{name}{len(calls)}"

        return run

    return {name: runner(name) for name in "ABC"}


def test_rotated_rounds_start_one_runner_later_each_time(common) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    samples = common.interleave(_recording_runners(calls), repeats=3, warmup=2, rotate=True)
    assert "".join(calls) == "ABC" + "BCA" + "CAB" + "ABC" + "BCA"
    # The warm-up rounds (the first six calls) are dropped, the rest kept per runner.
    assert samples == {
        "A": ["A8", "A10", "A15"],
        "B": ["B9", "B11", "B13"],
        "C": ["C7", "C12", "C14"],
    }


def test_rounds_keep_their_order_without_rotate(common) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    common.interleave(_recording_runners(calls), repeats=2, warmup=0)
    assert "".join(calls) == "ABCABC"


def test_interleave_refuses_no_repeats(common) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="repeats >= 1"):
        common.interleave(_recording_runners([]), repeats=0, rotate=True)


def _checkpoints(work_dir: str) -> list[str]:
    return sorted(name for name in os.listdir(work_dir) if name.endswith(".pth"))


@pytest.mark.parametrize(
    ("kind", "checkpoints", "logger"),
    [
        ("camshaft", ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"], True),
        ("camshaft-no-ckpt", [], True),
        ("camshaft-core", [], False),
    ],
)
def test_each_ablation_drops_its_default_hooks(  # type: ignore[no-untyped-def]
    contenders, kind: str, checkpoints: list[str], logger: bool
) -> None:
    dims = (8, 8, 2)
    case = contenders.Case("tiny", dims, contenders.make_dataset(dims, 3), 3)
    stamps = contenders.Stamps()
    with contenders.contender(kind, case) as (runner, construction_s):
        train, _ = contenders.train_contender(kind, runner, stamps.stamp)
        train()
        names = {type(hook).__name__ for hook in runner.hooks}
        assert _checkpoints(str(runner.work_dir)) == checkpoints
        assert ("LoggerHook" in names) is logger
        assert ("CheckpointHook" in names) is bool(checkpoints)
        assert Path(runner.work_dir).is_dir()
    assert construction_s > 0
    assert len(stamps.times) == case.iters  # the probe ran on every iteration
    assert contenders.runner_of(kind) == "camshaft"
    assert contenders.runner_of("raw") == "raw"


def _entry(per_iter: dict[str, float], overhead: dict[str, float]) -> dict[str, Any]:
    # The same figures for whole, steady and typical iterations.
    times = {kind: {"median": value} for kind, value in per_iter.items()}
    overheads = {kind: {"median": value} for kind, value in overhead.items()}
    metrics = ("per_iter_ms", "steady_per_iter_ms", "typical_iter_ms")
    names = ("overhead_ms_per_iter", "steady_overhead_ms_per_iter", "typical_overhead_ms_per_iter")
    return {name: dict(times) for name in metrics} | {name: dict(overheads) for name in names}


def test_cost_split_takes_each_default_hooks_share(targets) -> None:  # type: ignore[no-untyped-def]
    per_iter = {
        "raw": 1.0,
        "camshaft": 1.3,
        "camshaft-no-ckpt": 1.1,
        "camshaft-core": 1.05,
        "mmengine": 2.0,
        "mmengine-no-ckpt": 1.5,
        "mmengine-core": 1.25,
    }
    overhead = {kind: value - 1.0 for kind, value in per_iter.items() if kind != "raw"}
    results = {name: _entry(per_iter, overhead) for name in targets.MODELS}
    split = targets.cost_split(results, ["raw", "camshaft", "mmengine"])
    ours, theirs = split["mlp32"]["camshaft"], split["mlp32"]["mmengine"]
    assert ours["core"] == pytest.approx(0.05)
    assert ours["logger"] == pytest.approx(0.05)
    assert ours["checkpoint"] == pytest.approx(0.2)
    assert ours["total"] == pytest.approx(0.3)
    assert (ours["core_vs_raw"], ours["no_ckpt_vs_raw"], ours["vs_raw"]) == (1.05, 1.1, 1.3)
    assert theirs["checkpoint"] == pytest.approx(0.5)
    assert split["mlp32"]["camshaft_vs_mmengine"] == pytest.approx(
        {"core": 0.2, "logger": 0.2, "checkpoint": 0.4, "total": 0.3}
    )


def test_cost_split_skips_a_runner_without_ablations_and_a_zero_part(targets) -> None:  # type: ignore[no-untyped-def]
    per_iter = {"raw": 1.0, "camshaft": 1.2, "camshaft-no-ckpt": 1.1, "camshaft-core": 1.1}
    per_iter |= {"mmengine": 1.5, "mmengine-no-ckpt": 1.4, "mmengine-core": 1.4}
    overhead = {kind: value - 1.0 for kind, value in per_iter.items() if kind != "raw"}
    results = {name: _entry(per_iter, overhead) for name in targets.MODELS}
    split = targets.cost_split(results, ["raw", "camshaft", "mmengine"])
    assert split["mlp784"]["camshaft_vs_mmengine"]["logger"] is None  # MMEngine's is 0
    del results["mlp32"]["overhead_ms_per_iter"]["mmengine-core"]
    assert set(targets.cost_split(results, ["raw", "camshaft", "mmengine"])["mlp32"]) == {
        "camshaft"
    }
    lines = targets._split_lines(split)
    assert lines[0].split()[-4:] == ["core", "logger", "checkpoint", "total"]
    assert any(line.startswith("mlp784 camshaft_vs_mmengine") and " - " in line for line in lines)


@pytest.mark.parametrize("kind", ["raw+ckpt", "raw+ckpt+log"])
def test_each_floor_saves_every_epoch_durably_and_logs_if_asked(  # type: ignore[no-untyped-def]
    contenders, kind: str
) -> None:
    import torch

    dims = (8, 8, 2)
    iters = 2 * contenders.LOG_INTERVAL
    case = contenders.Case("tiny", dims, contenders.make_dataset(dims, iters), iters)
    stamps = contenders.Stamps()
    with contenders.contender(kind, case) as (built, construction_s):
        train, _ = contenders.train_contender(kind, built, stamps.stamp)
        model = train()
        work_dir = built[2]
        assert _checkpoints(work_dir) == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]
        assert not [name for name in os.listdir(work_dir) if name.endswith(".tmp")]
        last = Path(work_dir, "epoch_3.pth")
        assert Path(work_dir, "last_checkpoint").read_text() == str(last)
        saved = torch.load(last, weights_only=True)
        assert saved["meta"] == {"epoch": 3}
        assert torch.equal(saved["state_dict"]["0.weight"], model.state_dict()["0.weight"])
        log = Path(work_dir, "run.log").read_text().splitlines()
        # Two lines an epoch (iterations 10 and 20) when logging, none otherwise.
        assert len(log) == (6 if kind.endswith("+log") else 0)
        assert all("loss: " in line for line in log)
    assert construction_s == 0.0
    assert len(stamps.times) == case.iters
    assert contenders.runner_of(kind) == "raw"


def test_cost_split_and_targets_show_the_floor(targets) -> None:  # type: ignore[no-untyped-def]
    per_iter = {"raw": 1.0, "camshaft": 1.2, "camshaft-no-ckpt": 1.1, "camshaft-core": 1.05}
    per_iter |= {"mmengine": 1.5, "mmengine-no-ckpt": 1.3, "mmengine-core": 1.2}
    per_iter |= {"raw+ckpt": 1.04, "raw+ckpt+log": 1.1}
    overhead = {kind: value - 1.0 for kind, value in per_iter.items() if kind != "raw"}
    results = {name: _entry(per_iter, overhead) for name in targets.MODELS}
    kinds = ["raw", "camshaft", "mmengine"]
    split = targets.cost_split(results, kinds)
    floor = split["mlp784"]["raw+ckpt+log"]
    assert floor["core"] == 0.0
    assert floor["checkpoint"] == pytest.approx(0.04)
    assert floor["logger"] == pytest.approx(0.06)
    assert (floor["total"], floor["vs_raw"]) == (pytest.approx(0.1), 1.1)
    results["calls"] = {"extra_per_iter": {"camshaft": 40.0}, "extra_amortised": {"camshaft": 90.0}}
    results["construction_s"] = {"camshaft": {"median": 0.01}, "mmengine": {"median": 1.0}}
    beyond = {"beyond_torch": {"median": 0.02}}
    results["import_s"] = {"camshaft.runner": beyond, "mmengine.runner": beyond}
    ratios = targets.compute_ratios(results, kinds)
    assert ratios["raw+ckpt+log_vs_raw_mlp784"] == ratios["raw+ckpt+log_vs_raw_mlp32"] == 1.1
    checked = targets.check_targets(results, ratios, kinds, split)
    assert checked["time_ratio_mlp784"]["raw+ckpt+log"] == 1.1
    assert checked["time_ratio_mlp784"]["met"] is False  # camshaft's 1.2 decides
    assert checked["overhead_vs_mmengine_mlp32"]["raw+ckpt+log"] == pytest.approx(0.2)
    assert "raw+ckpt+log" not in targets.check_targets(results, ratios, kinds)["time_ratio_mlp784"]
