"""progress_wanted, EpochProgressBar, plot_curves, and the import cost of the package."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from camshaft.runner.visualization import EpochProgressBar, plot_curves, progress_wanted
from camshaft.runner.visualization._plot import _is_train_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RICH_MODULES = ("rich", "rich.console", "rich.progress")


class FakeTTY(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class BrokenStream(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make rich trust the fake tty whatever the CI environment says."""
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


# --- progress_wanted --------------------------------------------------------------------


def test_progress_wanted_false_for_a_stringio() -> None:
    assert progress_wanted(io.StringIO()) is False


def test_progress_wanted_true_for_a_tty_when_rich_importable() -> None:
    pytest.importorskip("rich")
    assert progress_wanted(FakeTTY()) is True


def test_progress_wanted_false_when_rich_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    assert progress_wanted(FakeTTY()) is False


def test_progress_wanted_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress_wanted(BrokenStream()) is False
    assert progress_wanted(object()) is False  # type: ignore[arg-type]
    monkeypatch.setattr(sys, "stdout", None)
    assert progress_wanted() is False


def test_progress_wanted_defaults_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    monkeypatch.setattr(sys, "stdout", FakeTTY())
    assert progress_wanted() is True


# --- EpochProgressBar -----------------------------------------------------------------------


@pytest.mark.usefixtures("terminal_env")
def test_bar_renders_description_counts_and_fields() -> None:
    pytest.importorskip("rich")
    stream = FakeTTY()
    bar = EpochProgressBar(10, "Epoch [2/5]", stream=stream)
    for done in range(1, 11):
        bar.update(done, loss=0.31270001, acc=0.5)
    bar.close()
    out = stream.getvalue()
    assert "Epoch [2/5]" in out  # rendered literally, not as rich markup
    assert "loss 0.3127" in out
    assert "acc 0.5000" in out
    assert "10/10" in out
    assert "\x1b[" in out  # drawn as a live terminal display


@pytest.mark.usefixtures("terminal_env")
def test_bar_close_is_idempotent_and_update_after_close_is_ignored() -> None:
    pytest.importorskip("rich")
    stream = FakeTTY()
    with EpochProgressBar(4, "val", stream=stream) as bar:
        bar.update(2, loss=1.0)
    assert bar.closed
    out = stream.getvalue()
    bar.close()
    bar.update(3, loss=2.0)
    assert stream.getvalue() == out
    assert "loss 1.0000" in out


def test_bar_fields_persist_and_unknown_total() -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()  # not a terminal: rich prints the final state once
    bar = EpochProgressBar(None, "Test", stream=stream)
    bar.update(3, loss=0.25)
    bar.update(7)  # no fields: the previous ones stay
    bar.close()
    out = stream.getvalue()
    assert "7/?" in out
    assert "loss 0.2500" in out


def test_bar_formats_non_numbers_as_text() -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()
    bar = EpochProgressBar(2, "x", stream=stream)
    bar.update(1, note="warmup")  # type: ignore[arg-type]
    bar.close()
    assert "note warmup" in stream.getvalue()


@pytest.mark.parametrize(
    ("total", "description", "error", "pattern"),
    [
        (2.5, "x", TypeError, "`total`"),
        (True, "x", TypeError, "`total`"),
        (-1, "x", ValueError, "`total` must be >= 0"),
        (3, None, TypeError, "`description`"),
    ],
)
def test_bar_bad_arguments(total: Any, description: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        EpochProgressBar(total, description, stream=io.StringIO())


def test_bar_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _RICH_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "camshaft-runner\[progress\]"'):
        EpochProgressBar(3, "Epoch 1", stream=io.StringIO())


# --- plot_curves ---------------------------------------------------------------------------

TRAIN = [
    {"lr": 0.1, "data_time": 0.01, "loss": 1.0, "time": 0.1, "epoch": 1, "iter": 10, "step": 10},
    {"lr": 0.1, "data_time": 0.01, "loss": 0.6, "time": 0.1, "epoch": 1, "iter": 20, "step": 20},
    {"lr": 0.05, "data_time": 0.01, "loss": 0.4, "time": 0.1, "epoch": 2, "iter": 30, "step": 30},
]
VAL = [
    {"accuracy": 71.0, "loss": 0.8, "data_time": 0.0, "time": 0.05, "step": 20},
    {"accuracy": 80.0, "loss": 0.5, "data_time": 0.0, "time": 0.05, "step": 30},
]


def _write_run(
    work_dir: Path, timestamp: str, records: list[dict[str, Any]], tail: str = ""
) -> Path:
    path = work_dir / timestamp / "vis_data" / "scalars.json"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write_run(tmp_path, "20261123_101502", [TRAIN[0], TRAIN[1], VAL[0], TRAIN[2], VAL[1]])
    out = plot_curves(tmp_path, keys=("loss", "accuracy"))
    assert out == tmp_path / "curves.png"
    _assert_png(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20261123_101502", "curves.png"]


def test_plot_custom_out_and_single_key_string(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write_run(tmp_path, "20261123_101502", TRAIN)
    target = tmp_path / "figures" / "nested" / "loss.png"
    assert plot_curves(str(tmp_path), keys="loss", out=str(target)) == target
    _assert_png(target)


def test_plot_picks_newest_run_with_a_scalars_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write_run(tmp_path, "20250101_000000", [{"old_only": 1.0, "step": 1}])
    newest = _write_run(tmp_path, "20261123_101502", TRAIN)
    (tmp_path / "20270101_000000").mkdir()  # newer, but it has no scalars file
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(KeyError, match="old_only") as info:
        plot_curves(tmp_path, keys=("old_only",))
    message = str(info.value)
    assert str(newest) in message
    assert "'loss'" in message  # the keys present are listed
    assert "'lr'" in message
    _assert_png(plot_curves(tmp_path, keys=("loss", "lr")))


def test_plot_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write_run(tmp_path, "20261123_101502", TRAIN, tail='{"loss": 0.3, "st')
    _assert_png(plot_curves(tmp_path))


def test_plot_rejects_a_broken_middle_line(tmp_path: Path) -> None:
    path = _write_run(tmp_path, "20261123_101502", TRAIN)
    path.write_text("not json\n" + path.read_text(), encoding="utf-8")
    with pytest.raises(ValueError, match=r"scalars.json:1 is not a JSON object"):
        plot_curves(tmp_path)


def test_plot_no_scalars_file(tmp_path: Path) -> None:
    (tmp_path / "20261123_101502" / "vis_data").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"vis_data/scalars\.json") as info:
        plot_curves(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        plot_curves(tmp_path / "missing")


def test_plot_missing_key_lists_present_keys(tmp_path: Path) -> None:
    _write_run(tmp_path, "20261123_101502", TRAIN + VAL)
    with pytest.raises(KeyError, match=r"\['mAP'\].*keys present: \['accuracy', 'data_time'"):
        plot_curves(tmp_path, keys=("loss", "mAP"))


def test_plot_bad_keys(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`keys`"):
        plot_curves(tmp_path, keys=())
    with pytest.raises(TypeError, match="`keys`"):
        plot_curves(tmp_path, keys=("loss", 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`work_dir`"):
        plot_curves(None)  # type: ignore[arg-type]


def test_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_run(tmp_path, "20261123_101502", TRAIN)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "camshaft-runner\[plot\]"'):
        plot_curves(tmp_path)
    assert not (tmp_path / "curves.png").exists()


def test_train_records_are_those_with_a_learning_rate() -> None:
    assert all(_is_train_record(r) for r in TRAIN)
    assert not any(_is_train_record(r) for r in VAL)
    assert _is_train_record({"train/lr": 0.1, "train/loss": 1.0, "step": 1})
    assert _is_train_record({"generator.lr": 0.1, "step": 1})


# --- import cost --------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import camshaft.runner.visualization, sys; "
        "print(sorted(m for m in ('rich', 'matplotlib', 'tensorboard', 'torch', 'numpy') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
