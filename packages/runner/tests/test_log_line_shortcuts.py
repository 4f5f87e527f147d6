"""The log line's shortcuts give what the standard paths give, and step aside when they must.

Covers the logger (record location, formatting, handlers and filters added later, the
console's rank), the LogProcessor's caches (hub keys, epoch facts), HistoryBuffer reads
without a flush, and LocalVisBackend's JSON lines.
"""

from __future__ import annotations

import copy
import enum
import inspect
import json
import logging
import math
import pickle
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from camshaft.runner.logging import HistoryBuffer, LogProcessor, MessageHub, MMLogger, print_log
from camshaft.runner.logging import _logger as logger_module
from camshaft.runner.visualization import _backends as backends_module
from camshaft.runner.visualization import _visualizer as visualizer_module
from camshaft.runner.visualization._backends import LocalVisBackend

# --- the logger -------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _line() -> int:
    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_lineno


def _log_from_helper(logger: logging.Logger) -> None:
    logger.info("from a helper", stacklevel=2)


def test_records_name_the_line_that_logged_them(caplog: pytest.LogCaptureFixture) -> None:
    logger = MMLogger.get_instance("where")
    with caplog.at_level(logging.INFO):
        logger.info("direct"), (line := _line())
        logger.warning("warned"), (warn_line := _line())
        logger.log(logging.INFO, "by level"), (log_line := _line())
        _log_from_helper(logger), (helper_line := _line())
        print_log("printed", logger=logger), (print_line := _line())
        logger.info("with stack", stack_info=True), (stack_line := _line())
    records = caplog.records
    expected = [line, warn_line, log_line, helper_line, print_line, stack_line]
    assert [r.lineno for r in records] == expected
    for record in records:
        assert record.pathname == __file__
        assert record.filename == Path(__file__).name
        assert record.module == Path(__file__).stem
        assert record.funcName == "test_records_name_the_line_that_logged_them"
    assert records[-1].stack_info is not None
    assert records[-1].stack_info.splitlines()[-1].strip() == (
        'logger.info("with stack", stack_info=True), (stack_line := _line())'
    )


def test_repeated_calls_from_several_lines_keep_their_own_line_numbers(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = MMLogger.get_instance("repeated")
    monkeypatch.setattr(logger_module, "_CALLER_LINES_LIMIT", 3)  # forces a clear midway
    expected = []
    with caplog.at_level(logging.INFO):
        for step in range(4):  # the second pass on reads the remembered lines
            logger.info("first %d", step), expected.append(_line())
            logger.info("second %d", step), expected.append(_line())
            exec("logger.info('from a code object of its own')", {"logger": logger})
            expected.append(1)
    assert [r.lineno for r in caplog.records] == expected
    assert len(logger_module._CALLER_LINES) <= 3


def test_find_caller_agrees_with_logging_for_each_stacklevel() -> None:
    logger = MMLogger.get_instance("levels")
    plain = logging.Logger("plain")

    def where(target: logging.Logger, stacklevel: int) -> tuple[str, int, str]:
        found: list[tuple[str, int, str]] = []

        class Spy(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                found.append((record.pathname, record.lineno, record.funcName))

        spy = Spy()
        target.addHandler(spy)
        try:
            target.warning("x", stacklevel=stacklevel)
        finally:
            target.removeHandler(spy)
        return found[0]

    for stacklevel in (1, 2, 3):
        assert where(logger, stacklevel) == where(plain, stacklevel), stacklevel


def test_the_shortcut_formatter_writes_what_logging_formats() -> None:
    layout = "%(asctime)s - camshaft - %(levelname)s - %(message)s"
    for datefmt in ("%m/%d %H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        ours, reference = logger_module._Formatter(datefmt), logging.Formatter(layout, datefmt)
        record = logging.LogRecord("camshaft.x", logging.INFO, __file__, 1, "a %s", ("b",), None)
        assert ours.format(record) == reference.format(record)
        assert record.message == "a b"
    failing = logging.LogRecord("camshaft.x", logging.ERROR, __file__, 7, "bad", (), None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing.exc_info = sys.exc_info()
    text = logger_module._Formatter("%m/%d %H:%M:%S").format(failing)
    assert f" - ERROR - {__file__} - None - 7 - bad\nTraceback" in text
    assert text.endswith("RuntimeError: boom")


def test_formatter_honours_a_changed_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    record = logging.LogRecord("camshaft", logging.INFO, __file__, 1, "m", (), None)
    record.created = 86_400 * 365.0 + 0.5
    local = logger_module._Formatter("%Y %H:%M:%S").format(record)
    monkeypatch.setattr(logging.Formatter, "converter", time.gmtime)
    utc = logger_module._Formatter("%Y %H:%M:%S").format(record)
    assert utc.startswith(time.strftime("%Y %H:%M:%S", time.gmtime(record.created)))
    assert local.startswith(time.strftime("%Y %H:%M:%S", time.localtime(record.created)))


def test_handlers_and_filters_added_later_see_every_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.log"
    logger = MMLogger.get_instance("later", log_file=path)
    logger.info("before")
    mine, parents = _Collect(), _Collect()
    logger.addHandler(mine)
    logging.getLogger("camshaft").addHandler(parents)
    try:
        logger.info("after")
        labels: list[str] = []

        def keep_odd(record: logging.LogRecord) -> bool:
            labels.append(record.camshaft_label)  # type: ignore[attr-defined]
            return record.getMessage() != "dropped"

        logger.addFilter(keep_odd)
        logger.info("dropped")
        logger.info("kept")
        logger.removeFilter(keep_odd)
        logger.info("again")
    finally:
        logging.getLogger("camshaft").removeHandler(parents)
    expected = ["after", "kept", "again"]
    assert [r.getMessage() for r in mine.records] == expected
    assert [r.getMessage() for r in parents.records] == expected
    assert labels == ["camshaft", "camshaft"]
    written = path.read_text()
    out = capsys.readouterr().out
    for text in ("before", "after", "kept", "again"):
        assert f" - camshaft - INFO - {text}\n" in written
        assert f" - camshaft - INFO - {text}\n" in out
    assert "dropped" not in written + out


def test_console_and_file_handler_filters_are_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.log"
    logger = MMLogger.get_instance("filtered", log_file=path)
    console = logger_module._installed["console"]
    console.addFilter(lambda record: "secret" not in record.getMessage())
    logger.handlers[0].addFilter(lambda record: "private" not in record.getMessage())
    logger.info("secret one")
    logger.info("private two")
    out, written = capsys.readouterr().out, path.read_text()
    assert "secret" not in out
    assert "private two" in out
    assert "private" not in written
    assert "secret one" in written


def test_the_console_asks_the_rank_again_when_the_process_group_changes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = MMLogger.get_instance("ranked")
    ranks = iter([0, 1, 0])
    asked: list[int] = []

    def global_rank() -> int:
        asked.append(1)
        return next(ranks)

    group = SimpleNamespace(WORLD=None)
    monkeypatch.setattr(logger_module, "dist", SimpleNamespace(group=group))
    monkeypatch.setattr(logger_module, "_DIST_AVAILABLE", True)
    monkeypatch.setattr(logger_module, "_global_rank", global_rank)
    logger.info("rank 0, no group")
    logger.info("still rank 0")
    group.WORLD = object()  # a process group is created: this process is rank 1
    logger.info("hidden on rank 1")
    logger.error("errors show on every rank")
    group.WORLD = object()  # another group, rank 0 again
    logger.info("rank 0 again")
    out = capsys.readouterr().out
    assert len(asked) == 3
    assert "still rank 0" in out
    assert "rank 0 again" in out
    assert "hidden" not in out
    assert "errors show on every rank" in out


# --- the visualizer's rank --------------------------------------------------------------


def test_is_main_process_is_asked_again_when_the_process_group_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ranks = iter([1, 0])
    group = SimpleNamespace(WORLD=None)
    fake = SimpleNamespace(is_available=lambda: True, group=group, get_rank=lambda: next(ranks))
    monkeypatch.setitem(sys.modules, "torch.distributed", fake)
    assert visualizer_module._is_main_process() is True  # no group
    group.WORLD = object()
    assert visualizer_module._is_main_process() is False
    assert visualizer_module._is_main_process() is False  # asked once for this group
    group.WORLD = object()
    assert visualizer_module._is_main_process() is True
    unavailable = SimpleNamespace(is_available=lambda: False)
    monkeypatch.setitem(sys.modules, "torch.distributed", unavailable)
    assert visualizer_module._is_main_process() is True


# --- LocalVisBackend's JSON lines -------------------------------------------------------


class _Step(enum.IntEnum):
    TEN = 10


def test_json_lines_are_what_json_writes() -> None:
    record: dict[str, Any] = {
        "loss": 0.1 + 0.2,
        "tiny": 1e-300,
        "huge": 1.5e300,
        "zero": -0.0,
        "nan": float("nan"),
        "inf": float("inf"),
        "-inf": float("-inf"),
        "big": 2**70,
        "neg": -3,
        'quote"back\\slash': 1.0,
        "ctrl\n\t": 2.0,
        "ünïcødé ✓": 3.0,
        "step": _Step.TEN,
    }
    line = backends_module._json_line(record)
    assert line == json.dumps(record, ensure_ascii=False) + "\n"
    assert line == backends_module._json_line(record)  # keys from the cache


def test_local_backend_lines_match_json(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    backend.add_scalars({"loss": torch.tensor(0.25), "flag": True, "n": np.int64(3)}, step=4)
    backend.add_scalars({"step": 99, "lr": np.float64(0.5)}, step=_Step.TEN)
    backend.close()
    lines = (tmp_path / "scalars.json").read_text().splitlines(keepends=True)
    assert lines == [
        json.dumps({"loss": 0.25, "flag": 1, "n": 3, "step": 4}) + "\n",
        json.dumps({"step": 99, "lr": 0.5}) + "\n",
    ]
    with pytest.raises(TypeError, match="step"):
        backend.add_scalars({"loss": 1.0}, step=1.5)  # type: ignore[arg-type]


# --- HistoryBuffer reads ----------------------------------------------------------------


def _reference_mean(buffer: HistoryBuffer, window: int | None) -> float:
    """The mean as documented (``math.fsum`` up to 256 values, else numpy); flushes ``buffer``."""
    values, counts, whole = buffer._window(window)
    total = math.fsum(values.tolist()) if values.shape[0] <= 256 else float(values.sum())
    count = float(counts.sum()) if counts is not None else float(values.shape[0])
    if whole:
        total += buffer._evicted[1]
        count += buffer._evicted[2]
    return total / count


@pytest.mark.parametrize("max_length", [1_000_000, 40])
def test_window_means_are_bit_identical_to_the_generic_sum(max_length: int) -> None:
    generator = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 33, 130, 300, 600):
        values = (generator.standard_normal(n) * 10.0 ** generator.integers(-5, 5, n)).tolist()
        for window in (1, 3, 8, 10, 17, 64, 129, 256, 257, n, n + 5):
            queued = HistoryBuffer(max_length=max_length)
            for value in values:
                queued.update(value)
            fast = queued.mean(window)  # from the queue when the window fits in it
            flushed = queued.mean(window)  # the queue moved or not: the same again
            reference = _reference_mean(queued, window)
            ring = queued.mean(window)  # now from the ring
            assert fast == flushed == reference == ring, (n, window)
    negative_zeros = HistoryBuffer()
    for _ in range(3):
        negative_zeros.update(-0.0)
    assert str(negative_zeros.mean(3)) == str(_reference_mean(negative_zeros, 3)) == "0.0"


@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_short_window_is_summed_exactly_rounded(as_tensor: bool) -> None:
    # In float64, 1e16 + 1.0 rounds back to 1e16: a running or pairwise sum of these
    # three values is 0.0, the exactly rounded one is 1.0.
    buffer = HistoryBuffer()
    for value in (1e16, 1.0, -1e16):
        buffer.update(torch.tensor(value, dtype=torch.float64) if as_tensor else value)
    assert buffer.mean(3) == pytest.approx(1.0 / 3)
    assert buffer.mean(3) == buffer.mean()  # the same sum from the ring


def test_float_siblings_stay_queued_and_read_right_after_a_tensor_read() -> None:
    hub = MessageHub("siblings")
    for step in range(12):
        hub.update_scalar("train/loss", torch.tensor(float(step)))
        hub.update_scalar("train/time", float(step) / 10)
    loss, timing = hub.get_scalar("train/loss"), hub.get_scalar("train/time")
    assert loss.mean(4) == pytest.approx(9.5)
    assert loss._pending_n == 0
    assert timing._pending_n == 12  # floats need no sync: left in their queue
    assert timing.current() == 1.1
    assert timing.mean(4) == pytest.approx(0.95)
    assert timing.mean(20) == pytest.approx(sum(range(12)) / 120)  # beyond the queue: moved
    assert timing._pending_n == 0
    assert timing.current() == 1.1


def test_current_reads_the_latest_of_a_mixed_queue() -> None:
    buffer = HistoryBuffer()
    buffer.update(1.0)
    buffer.update(torch.tensor(2.0))
    assert buffer.current() == 2.0
    buffer.update(torch.tensor(3.0))
    buffer.update(4.0)
    assert buffer.current() == 4.0
    with pytest.raises(ValueError, match="empty"):
        HistoryBuffer().current()
    with pytest.raises(ValueError, match="empty"):
        HistoryBuffer().mean(3)


# --- LogProcessor caches ----------------------------------------------------------------


class _Runner:
    def __init__(self, loader: Any, epoch: int = 0, max_epochs: int | None = 5) -> None:
        self.message_hub = MessageHub("cache")
        self.epoch, self.iter = epoch, 0
        self.max_epochs: int | None = max_epochs
        self.max_iters: int | None = 500
        self.train_dataloader, self.val_dataloader, self.test_dataloader = loader, None, None


def _step(runner: _Runner, value: float) -> None:
    hub = runner.message_hub
    hub.update_scalar("train/lr", 0.01)
    hub.update_scalar("train/loss", torch.tensor(value))
    hub.update_scalar("train/time", value / 100)
    hub.update_scalar("train/data_time", value / 1000)
    hub.update_info("eta", 100 - value)
    runner.iter += 1


@pytest.fixture(autouse=True)
def _no_cuda_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)


def _fresh_line(runner: _Runner, batch_idx: int, **kwargs: Any) -> tuple[dict[str, Any], str]:
    return LogProcessor(**kwargs).get_log_after_iter(runner, batch_idx, "train")


@pytest.mark.parametrize("by_epoch", [True, False])
def test_cached_lines_equal_fresh_ones_across_epochs_loaders_and_keys(by_epoch: bool) -> None:
    runner = _Runner(range(100))
    processor = LogProcessor(window_size=3, by_epoch=by_epoch)
    batch = 0
    for step in range(40):
        _step(runner, float(step))
        if step == 10:
            runner.epoch, batch = 1, 0  # a new epoch ...
            runner.train_dataloader = range(7)  # ... with a shorter loader
        if step == 20:
            runner.train_dataloader = range(1234)  # another loader in the same epoch
            runner.max_epochs = 12
        if step == 25:
            runner.message_hub.update_scalar("train/aux_loss", 0.5)  # a key appears
        if step == 30:
            runner.epoch, runner.max_epochs = 2, None
        if step == 35:
            processor.mean_pattern = __import__("re").compile("loss")  # time: latest value
        kwargs: dict[str, Any] = dict(window_size=3, by_epoch=by_epoch)
        if step >= 35:
            kwargs["mean_pattern"] = "loss"
        assert processor.get_log_after_iter(runner, batch, "train") == _fresh_line(
            runner, batch, **kwargs
        ), step
        batch += 1


def test_epoch_header_follows_the_loader_length_of_each_epoch() -> None:
    runner = _Runner(range(100), epoch=0)
    processor = LogProcessor()
    _step(runner, 1.0)
    _, line = processor.get_log_after_iter(runner, 9, "train")
    assert line.startswith("Epoch(train) [1][ 10/100]  lr: 1.0000e-02  eta: 0:01:39")
    runner.epoch, runner.train_dataloader = 1, range(12)
    _, line = processor.get_log_after_iter(runner, 9, "train")
    assert line.startswith("Epoch(train) [2][10/12]")
    processor.by_epoch = False
    tag, line = processor.get_log_after_iter(runner, 9, "train")
    assert line.startswith("Iter(train) [  2/500]")
    assert "epoch" not in tag
    assert tag["iter"] == 2


def test_a_train_line_without_a_loader_still_says_so() -> None:
    runner = _Runner(None)
    _step(runner, 1.0)
    with pytest.raises(ValueError, match=r"runner.train_dataloader is None"):
        LogProcessor().get_log_after_iter(runner, 0, "train")


def test_copies_and_pickles_leave_the_caches_behind() -> None:
    runner = _Runner(range(100))
    processor = LogProcessor()
    _step(runner, 1.0)
    expected = processor.get_log_after_iter(runner, 0, "train")
    for clone in (copy.deepcopy(processor), pickle.loads(pickle.dumps(processor))):
        assert clone._facts is None
        assert clone._plans == {}
        assert clone.get_log_after_iter(runner, 0, "train") == expected
    assert processor._facts is not None
