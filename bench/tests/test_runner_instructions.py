"""runner_instructions: the arithmetic, the callgrind file reader, bad input, the worker."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(
        "bench_runner_instructions", BENCH / "runner_instructions.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_iteration_divides_the_difference_by_the_extra_iterations(bench) -> None:  # type: ignore[no-untyped-def]
    # 3 epochs of 40 extra iterations each: 120 iterations for 600,000 instructions.
    assert bench.per_iteration(1_000_000, 1_600_000, short=20, long=60) == 5000.0


def test_per_iteration_rejects_a_long_run_that_is_not_longer(bench) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="long=20, short=20"):
        bench.per_iteration(1, 2, short=20, long=20)


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


@pytest.mark.parametrize(
    ("short", "long", "message"),
    [
        (5, 45, "--short must be at least 10, got 5"),
        (20, 55, "short=20, long=55"),
        (20, 20, "long=20"),
    ],
)
def test_check_lengths_rejects_lengths_whose_difference_is_not_clean(  # type: ignore[no-untyped-def]
    bench, short: int, long: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bench.check_lengths(short, long)
    bench.check_lengths(20, 60)  # the defaults pass


def test_summarize_counts_gives_ratios_and_target_records(bench) -> None:  # type: ignore[no-untyped-def]
    # Per iteration: raw 1,000; camshaft 1,050; MMEngine 1,300 (120 extra iterations).
    totals = {}
    for kind, per_iter in (("raw", 1000), ("camshaft", 1050), ("mmengine", 1300)):
        totals["mlp32", kind, 20] = 10_000_000
        totals["mlp32", kind, 60] = 10_000_000 + 120 * per_iter
    per_iter, ratios, targets = bench.summarize_counts(totals, 20, 60)
    assert per_iter == {"mlp32": {"raw": 1000.0, "camshaft": 1050.0, "mmengine": 1300.0}}
    assert ratios["camshaft_vs_raw_mlp32"] == pytest.approx(1.05)
    assert ratios["overhead_vs_mmengine_mlp32"] == pytest.approx(50 / 300)
    record = targets["overhead_vs_mmengine_mlp32"]
    assert record["target"] == 0.2
    assert record["met"] is True
    assert set(targets) == {"overhead_vs_mmengine_mlp32"}  # raw's ratio is bounded on mlp784


def test_the_784_mlp_is_judged_against_raw(bench) -> None:  # type: ignore[no-untyped-def]
    totals = {}
    for kind, per_iter in (("raw", 10_000), ("camshaft", 10_150)):
        totals["mlp784", kind, 20] = 5
        totals["mlp784", kind, 220] = 5 + 600 * per_iter
    _, ratios, targets = bench.summarize_counts(totals, 20, 220)
    assert ratios == {"camshaft_vs_raw_mlp784": pytest.approx(1.015)}
    assert targets["camshaft_vs_raw_mlp784"]["target"] == 1.03
    assert targets["camshaft_vs_raw_mlp784"]["met"] is True


def test_summarize_counts_flags_a_missed_target(bench) -> None:  # type: ignore[no-untyped-def]
    totals = {}
    for kind, per_iter in (("raw", 1000), ("camshaft", 1100), ("mmengine", 1300)):
        totals["mlp32", kind, 20] = 0
        totals["mlp32", kind, 60] = 120 * per_iter
    _, ratios, targets = bench.summarize_counts(totals, 20, 60)
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
    with pytest.raises(ValueError, match="--long must exceed --short"):
        bench.main(["--short", "20", "--long", "25"])


def test_the_worker_trains_each_contender(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # What runs under callgrind, run plainly: warm-up and a 12-iteration epoch, 3 times.
    for kind in ("raw", "camshaft"):
        assert bench.worker(kind, "mlp32", 12) == 3 * (bench.WARMUP_ITERS + 12)


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
    assert bench._count("valgrind", str(tmp_path), "camshaft", "mlp32", 20) == 7
    assert seen["command"][:2] == ["valgrind", "--tool=callgrind"]
    assert seen["command"][-4:] == ["--worker", "camshaft", "mlp32", "20"]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert seen["env"][name] == "1"


def test_a_failed_callgrind_run_is_reported_with_its_stderr(  # type: ignore[no-untyped-def]
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fake_run(command, **kwargs):  # type: ignore[no-untyped-def]
        return bench.subprocess.CompletedProcess(command, 1, None, "valgrind: boom")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match=r"raw/mlp32/60 failed \(exit 1\):\nvalgrind: boom"):
        bench._count("valgrind", str(tmp_path), "raw", "mlp32", 60)


def test_an_unknown_model_is_refused_by_name(  # type: ignore[no-untyped-def]
    bench, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--model", "mlp1"])
    assert "invalid choice: 'mlp1'" in capsys.readouterr().err
