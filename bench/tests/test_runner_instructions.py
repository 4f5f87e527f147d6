"""runner_instructions: the window, the callgrind file reader, bad input, the worker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def bench(load_bench):  # type: ignore[no-untyped-def]
    return load_bench("runner_instructions")


def test_the_window_is_steady_iterations_of_the_second_epoch(bench) -> None:  # type: ignore[no-untyped-def]
    # After the 15th iteration of epoch 2 to after its 215th: 200 iterations, 20 log lines.
    assert bench.window(220) == (235, 435)
    assert bench.window_iters(220) == 200
    start, stop = bench.window(40)
    assert 40 < start < stop < 80  # inside the second epoch, its boundaries left out


def test_read_total_reads_the_summary_line(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "callgrind.out"
    out.write_text(
        "# callgrind format\nversion: 1\nevents: Ir\nsummary: 123456789\n\nfn=(1) f\n0 5\n"
    )
    assert bench.read_total(out) == 123456789
    totals_only = tmp_path / "callgrind.totals"
    totals_only.write_text("events: Ir\nfn=(1) f\n0 5\ntotals: 42\n")
    assert bench.read_total(totals_only) == 42


def test_read_total_names_a_file_that_is_not_callgrind_output(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "other.txt"
    out.write_text("hello\n")
    with pytest.raises(ValueError, match=r"other\.txt.*no summary/totals line"):
        bench.read_total(out)


@pytest.mark.parametrize("length", [30, 45, 0, -20])
def test_check_iters_per_epoch_rejects_a_window_of_partial_log_intervals(  # type: ignore[no-untyped-def]
    bench, length: int
) -> None:
    with pytest.raises(ValueError, match=f"multiple of 10 and at least 40, got {length}"):
        bench.check_iters_per_epoch(length)
    bench.check_iters_per_epoch(220)  # the default passes
    bench.check_iters_per_epoch(40)


def test_summarize_counts_gives_ratios_and_target_records(bench) -> None:  # type: ignore[no-untyped-def]
    # Per iteration: raw 1,000; camshaft 1,050; MMEngine 1,300 (windows of 200 iterations).
    totals = {
        ("mlp32", kind): 200 * n
        for kind, n in (("raw", 1000), ("camshaft", 1050), ("mmengine", 1300))
    }
    per_iter, ratios, targets = bench.summarize_counts(totals, 200)
    assert per_iter == {"mlp32": {"raw": 1000.0, "camshaft": 1050.0, "mmengine": 1300.0}}
    assert ratios["camshaft_vs_raw_mlp32"] == pytest.approx(1.05)
    assert ratios["overhead_vs_mmengine_mlp32"] == pytest.approx(50 / 300)
    record = targets["overhead_vs_mmengine_mlp32"]
    assert record["target"] == 0.2
    assert record["met"] is True
    assert set(targets) == {"overhead_vs_mmengine_mlp32"}  # raw's ratio is bounded on mlp784


def test_the_784_mlp_is_judged_against_raw(bench) -> None:  # type: ignore[no-untyped-def]
    totals = {("mlp784", "raw"): 100 * 10_000, ("mlp784", "camshaft"): 100 * 10_150}
    _, ratios, targets = bench.summarize_counts(totals, 100)
    assert ratios == {"camshaft_vs_raw_mlp784": pytest.approx(1.015)}
    assert targets["camshaft_vs_raw_mlp784"]["target"] == 1.03
    assert targets["camshaft_vs_raw_mlp784"]["met"] is True


def test_summarize_counts_flags_a_missed_target(bench) -> None:  # type: ignore[no-untyped-def]
    totals = {
        ("mlp32", kind): 120 * n
        for kind, n in (("raw", 1000), ("camshaft", 1100), ("mmengine", 1300))
    }
    _, ratios, targets = bench.summarize_counts(totals, 120)
    assert ratios["overhead_vs_mmengine_mlp32"] == pytest.approx(1 / 3)
    assert targets["overhead_vs_mmengine_mlp32"]["met"] is False


def test_without_valgrind_the_line_says_it_was_skipped(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.main(["--model", "mlp784"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["bench"] == "runner_instructions"
    assert line["config"]["model"] == "mlp784"
    assert "valgrind is not on PATH" in line["skipped"]


def test_bad_lengths_are_refused_before_any_run(bench, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bench.subprocess, "run", pytest.fail)
    with pytest.raises(ValueError, match="--iters-per-epoch must be a multiple of 10"):
        bench.main(["--iters-per-epoch", "25"])


def test_without_a_c_compiler_the_line_says_it_was_skipped(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        bench.shutil, "which", lambda name: "/usr/bin/valgrind" if name == "valgrind" else None
    )
    monkeypatch.setattr(bench.subprocess, "run", pytest.fail)
    assert bench.main([]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "a C compiler (cc or gcc) is not on PATH" in line["skipped"]
    assert line["config"]["window_iters"] == 100
    assert line["config"]["repeats"] == 3


def test_each_repeat_runs_with_a_differently_padded_environment(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pads = []

    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        pads.append(kwargs["env"][bench.LAYOUT_VARIABLE])
        out = next(arg for arg in command if arg.startswith("--callgrind-out-file="))
        Path(out.split("=", 1)[1]).write_text("summary: 7\n")
        return bench.subprocess.CompletedProcess(command, 0, None, "")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    for repeat in range(3):
        bench._count("valgrind", "/x/libtoggle.so", str(tmp_path), "raw", "mlp32", 60, repeat)
    assert [len(pad) for pad in pads] == [0, bench.LAYOUT_PAD_STEP, 2 * bench.LAYOUT_PAD_STEP]
    assert len(list(tmp_path.iterdir())) == 3  # one output file per repeat


def test_median_totals_takes_each_contenders_middle_run(bench) -> None:  # type: ignore[no-untyped-def]
    runs = {("mlp32", "raw"): [30, 10, 20], ("mlp32", "camshaft"): [8, 4], ("m", "x"): [5]}
    assert bench.median_totals(runs) == {
        ("mlp32", "raw"): 20,
        ("mlp32", "camshaft"): 4,
        ("m", "x"): 5,
    }
    with pytest.raises(ValueError, match="no runs for camshaft on mlp32"):
        bench.median_totals({("mlp32", "camshaft"): []})


def test_main_reports_the_median_of_the_repeats_and_their_spread(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Per iteration over a 100-iteration window: raw 1,000 +/- 10, camshaft 1,050,
    # MMEngine 1,300; the outlying run of each is not the one used.
    per_repeat = {
        "raw": [1000, 1010, 990],
        "camshaft": [1050, 1300, 1050],
        "mmengine": [900, 1300, 1301],
    }
    monkeypatch.setattr(bench.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(bench, "build_shim", lambda compiler, out_dir: "/x/libtoggle.so")
    monkeypatch.setattr(bench, "_mmengine_available", lambda: True)
    monkeypatch.setattr(
        bench,
        "_count",
        lambda valgrind, shim, out_dir, kind, model, length, repeat: 100 * per_repeat[kind][repeat],
    )
    assert bench.main(["--jobs", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["results"]["instructions_per_iter"]["mlp32"] == {
        "raw": 1000.0,
        "camshaft": 1050.0,
        "mmengine": 1300.0,
    }
    assert line["results"]["spread_per_iter"] == {
        "mlp32/raw": 20.0,
        "mlp32/camshaft": 250.0,
        "mlp32/mmengine": 401.0,
    }
    assert line["ratios"]["overhead_vs_mmengine_mlp32"] == pytest.approx(50 / 300)
    assert line["targets"]["overhead_vs_mmengine_mlp32"]["met"] is True


@pytest.mark.parametrize("repeats", ["0", "-1"])
def test_repeats_below_one_are_refused_before_any_run(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, repeats: str
) -> None:
    monkeypatch.setattr(bench.subprocess, "run", pytest.fail)
    with pytest.raises(ValueError, match=f"--repeats must be at least 1, got {repeats}"):
        bench.main(["--repeats", repeats])


def test_a_shim_that_does_not_compile_is_reported_with_the_compiler_output(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        return bench.subprocess.CompletedProcess(
            command, 1, "", "fatal error: valgrind/callgrind.h"
        )

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match=r"exit 1\):\nfatal error: valgrind/callgrind\.h"):
        bench.build_shim("cc", str(tmp_path))
    assert "CALLGRIND_TOGGLE_COLLECT" in (tmp_path / "toggle.c").read_text()


def test_the_worker_trains_each_contender(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # What runs under callgrind, run plainly: warm-up, then three 40-iteration epochs.
    for kind in ("raw", "camshaft"):
        assert bench.worker(kind, "mlp32", 40, None) == 3 * (bench.WARMUP_ITERS + 40)


@pytest.mark.parametrize("kind", ["raw", "camshaft"])
def test_the_window_covers_steady_iterations_of_the_measured_run(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import _runner_contenders

    # Count every training iteration, the warm-up's included, to see where the switch
    # fires: after the 15th and the 35th iteration of the measured run's second epoch.
    finished = [0]
    train_contender = _runner_contenders.train_contender

    def counting_train_contender(kind, built, probe):  # type: ignore[no-untyped-def]
        def counted() -> None:
            finished[0] += 1
            probe()

        return train_contender(kind, built, counted)

    monkeypatch.setattr(_runner_contenders, "train_contender", counting_train_contender)
    toggled_after: list[int] = []
    total = bench.train_windowed(kind, "mlp32", 40, lambda: toggled_after.append(finished[0]))
    warm_up = 3 * bench.WARMUP_ITERS
    assert total == finished[0] == warm_up + 3 * 40
    assert toggled_after == [warm_up + 40 + 15, warm_up + 80 - 5]
    assert [n - warm_up for n in toggled_after] == list(bench.window(40))


def test_each_callgrind_run_is_single_threaded(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = {}

    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(command=command, env=kwargs["env"])
        out = next(arg for arg in command if arg.startswith("--callgrind-out-file="))
        Path(out.split("=", 1)[1]).write_text("summary: 7\n")
        return bench.subprocess.CompletedProcess(command, 0, None, "")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert bench._count("valgrind", "/x/libtoggle.so", str(tmp_path), "camshaft", "mlp32", 60) == 7
    assert seen["command"][:3] == ["valgrind", "--tool=callgrind", "--collect-atstart=no"]
    assert seen["command"][-5:] == ["--worker", "camshaft", "mlp32", "60", "/x/libtoggle.so"]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert seen["env"][name] == "1"
    assert seen["env"]["PYTHONHASHSEED"] == "0"


def test_a_failed_callgrind_run_is_reported_with_its_stderr(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        return bench.subprocess.CompletedProcess(command, 1, None, "valgrind: boom")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    failed = r"raw/mlp32/60 \(repeat 0\) failed \(exit 1\):\nvalgrind: boom"
    with pytest.raises(RuntimeError, match=failed):
        bench._count("valgrind", "/x/libtoggle.so", str(tmp_path), "raw", "mlp32", 60)


def test_an_unknown_model_is_refused_by_name(  # type: ignore[no-untyped-def]
    bench, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--model", "mlp1"])
    assert "invalid choice: 'mlp1'" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("valgrind") is None or (shutil.which("cc") or shutil.which("gcc")) is None,
    reason="needs valgrind and a C compiler, which the bench session does not install",
)
def test_the_shim_counts_only_between_its_two_calls(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shim = bench.build_shim(shutil.which("cc") or shutil.which("gcc"), str(tmp_path))
    program = (
        "import ctypes, sys\n"
        f"toggle = ctypes.CDLL({shim!r}).camshaft_bench_toggle_collect\n"
        "n = int(sys.argv[1])\n"
        "toggle(); total = sum(i * i for i in range(n)); toggle()\n"
    )
    counts = []
    for n in (1_000, 21_000):
        out = tmp_path / f"callgrind.{n}"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                program,
                str(n),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, **bench.FIXED_HASH_SEED},
        )
        counts.append(bench.read_total(out))
    # Only the sum is counted: no interpreter start-up (tens of millions of instructions),
    # and 20,000 more terms cost 20,000 times one term's few dozen instructions.
    assert 0 < counts[0] < 2_000_000
    assert 20 * 20_000 < counts[1] - counts[0] < 2_000 * 20_000
