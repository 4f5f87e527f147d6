"""_runner_stages: stage names, the arithmetic, each stage run plainly, the driver."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def stages(load_bench):  # type: ignore[no-untyped-def]
    return load_bench("_runner_stages")


def test_unknown_stages_are_named_with_the_known_ones(stages) -> None:  # type: ignore[no-untyped-def]
    stages.check_stages(["hooks", "train_step"])
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['hook'\]; choose from empty, "):
        stages.check_stages(["hooks", "hook"])


def test_per_call_subtracts_the_empty_stage(stages) -> None:  # type: ignore[no-untyped-def]
    totals = {"empty": 200 * 700, "hooks": 200 * 30_700, "hooks_with_log_line": 200 * 80_700}
    costs = stages.per_call(totals)
    assert costs == {"hooks": 30_000.0, "hooks_with_log_line": 80_000.0}
    assert stages.derived(costs) == {"log_line": 50_000.0}
    with pytest.raises(ValueError, match="'empty' stage is needed"):
        stages.per_call({"hooks": 1})


def test_derived_gives_the_train_step_over_raw(stages) -> None:  # type: ignore[no-untyped-def]
    assert stages.derived({"raw_step": 850.0, "train_step": 910.0}) == {"train_step_over_raw": 60.0}
    assert stages.derived({"raw_step": 850.0}) == {}


def test_each_stage_runs_between_the_two_switches(stages) -> None:  # type: ignore[no-untyped-def]
    for stage in stages.STAGES:
        switched = []
        assert (
            stages.run_stage(stage, functools.partial(switched.append, 1), calls=3)
            == stages.WARM_CALLS + 3
        )
        assert switched == [1, 1], stage


def test_an_unknown_stage_is_refused_before_any_run(  # type: ignore[no-untyped-def]
    stages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "run", pytest.fail)
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['step'\]"):
        stages.main(["step"])


def test_without_valgrind_the_line_says_it_was_skipped(  # type: ignore[no-untyped-def]
    stages, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert stages.main(["hooks"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["config"]["stages"] == ["empty", "hooks"]
    assert "valgrind is not on PATH" in line["skipped"]


def test_main_reports_costs_per_call_and_the_differences(  # type: ignore[no-untyped-def]
    stages, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    per_stage = {"empty": 1_000, "raw_step": 851_000, "train_step": 911_000}
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(stages, "build_shim", lambda compiler, out_dir: "/x/libtoggle.so")
    monkeypatch.setattr(
        stages, "_count", lambda valgrind, shim, out_dir, stage: stages.CALLS * per_stage[stage]
    )
    assert stages.main(["raw_step", "train_step", "--jobs", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["results"]["instructions_per_call"] == {"raw_step": 850_000, "train_step": 910_000}
    assert line["results"]["derived"] == {"train_step_over_raw": 60_000}


def test_a_failed_stage_run_is_reported_with_its_stderr(  # type: ignore[no-untyped-def]
    stages, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        assert command[-3:] == ["--worker", "hooks", "/x/libtoggle.so"]
        assert kwargs["env"]["PYTHONHASHSEED"] == "0"
        return subprocess.CompletedProcess(command, 1, None, "valgrind: boom")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(
        RuntimeError, match=r"run of stage hooks failed \(exit 1\):\nvalgrind: boom"
    ):
        stages._count("valgrind", "/x/libtoggle.so", str(tmp_path), "hooks")
