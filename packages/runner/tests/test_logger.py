"""MMLogger and print_log: format, one console, files, ranks, caplog, bad input."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from camshaft.runner.logging import MMLogger, print_log

CONSOLE_LINE = re.compile(r"^\d\d/\d\d \d\d:\d\d:\d\d - camshaft - INFO - hello$")
FILE_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d - camshaft - INFO - hello$")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_console_line_has_mmengine_format(capsys: pytest.CaptureFixture[str]) -> None:
    logger = MMLogger.get_instance("fmt")
    logger.info("hello")
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 1
    assert CONSOLE_LINE.match(lines[0]), lines[0]


def test_several_loggers_never_duplicate_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    first = MMLogger.get_instance("one")
    MMLogger.get_instance("two")
    MMLogger.get_instance("three", log_level="DEBUG")
    MMLogger.get_instance("one")
    first.info("hello")
    MMLogger.get_current_instance().info("hello")
    assert len(_lines(capsys.readouterr().out)) == 2
    assert len(logging.getLogger("camshaft").handlers) == 1


def test_caplog_sees_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = MMLogger.get_instance("captured")
    with caplog.at_level(logging.INFO):
        logger.info("hello")
        print_log("from print_log", logger="current", level=logging.WARNING)
    assert [r.getMessage() for r in caplog.records] == ["hello", "from print_log"]
    assert caplog.records[0].name == "camshaft.captured"
    assert caplog.records[1].levelno == logging.WARNING


def test_log_file_is_written_with_the_year(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run.log"
    logger = MMLogger.get_instance("file", log_file=path)
    logger.info("hello")
    logger.debug("not at INFO")
    assert logger.log_file == path
    lines = _lines(path.read_text())
    assert len(lines) == 1
    assert FILE_LINE.match(lines[0]), lines[0]


def test_file_mode_a_appends(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("earlier\n")
    MMLogger.get_instance("append", log_file=path, file_mode="a").info("hello")
    assert _lines(path.read_text())[0] == "earlier"
    MMLogger._reset_instances()
    MMLogger.get_instance("fresh", log_file=path).info("hello")
    assert len(_lines(path.read_text())) == 1


def test_errors_name_where_they_were_logged(capsys: pytest.CaptureFixture[str]) -> None:
    MMLogger.get_instance("err").error("broken")
    line = _lines(capsys.readouterr().out)[0]
    assert " - camshaft - ERROR - " in line
    assert "test_logger.py - test_errors_name_where_they_were_logged - " in line
    assert line.endswith(" - broken")


def test_camshaft_package_records_reach_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    MMLogger.get_instance("pkg")
    logging.getLogger("camshaft").info("init summary")  # how camshaft.model logs
    assert "- camshaft - INFO - init summary" in capsys.readouterr().out


def test_other_ranks_print_only_errors_and_write_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANK", "1")
    path = tmp_path / "run.log"
    logger = MMLogger.get_instance("rank1", log_file=path)
    logger.info("quiet")
    logger.error("loud")
    out = capsys.readouterr().out
    assert "quiet" not in out
    assert "loud" in out
    assert not path.exists()
    assert logger.log_file is None


def test_distributed_writes_one_file_per_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    logger = MMLogger.get_instance("ranks", log_file=tmp_path / "run.log", distributed=True)
    logger.info("hello")
    assert logger.log_file == tmp_path / "run_rank3.log"
    assert "hello" in (tmp_path / "run_rank3.log").read_text()


def test_reset_closes_files_and_removes_the_console(tmp_path: Path) -> None:
    root = logging.getLogger("camshaft")
    before = list(root.handlers)
    logger = MMLogger.get_instance("closing", log_file=tmp_path / "a.log")
    handler = logger.handlers[0]
    MMLogger._reset_instances()
    assert root.handlers == before
    assert root.level == logging.NOTSET
    assert handler.stream is None  # type: ignore[attr-defined]
    assert not MMLogger.check_instance_created("closing")


def test_current_instance_defaults_to_camshaft() -> None:
    assert MMLogger.get_current_instance().instance_name == "camshaft"
    made = MMLogger.get_instance("later")
    assert MMLogger.get_current_instance() is made
    assert isinstance(made, logging.Logger)


def test_logging_disable_is_honoured(capsys: pytest.CaptureFixture[str]) -> None:
    logger = MMLogger.get_instance("disabled")
    logger.info("first")
    logging.disable(logging.CRITICAL)
    try:
        logger.info("hidden")
    finally:
        logging.disable(logging.NOTSET)
    assert "hidden" not in capsys.readouterr().out


# --- print_log -------------------------------------------------------------------------


def test_print_log_targets(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    print_log("plain")
    print_log("nothing", logger="silent")
    MMLogger.get_instance("named")
    print_log("to named", logger="named", level="WARNING")
    other = logging.getLogger("elsewhere")
    with caplog.at_level(logging.INFO, logger="elsewhere"):
        print_log("to a logger", logger=other)
    out = capsys.readouterr().out
    assert out.startswith("plain\n")
    assert "nothing" not in out
    assert "- camshaft - WARNING - to named" in out
    assert any(r.getMessage() == "to a logger" and r.name == "elsewhere" for r in caplog.records)


def test_print_log_bad_input() -> None:
    with pytest.raises(ValueError, match=r"no MMLogger called 'ghost'.*get_instance\('ghost'\)"):
        print_log("x", logger="ghost")
    with pytest.raises(TypeError, match="logger"):
        print_log("x", logger=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        print_log("x", level="LOUD")


def test_constructor_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="log_level"):
        MMLogger.get_instance("lvl", log_level="VERBOSE")
    with pytest.raises(ValueError, match="file_mode"):
        MMLogger.get_instance("mode", log_file=tmp_path / "x.log", file_mode="x")
    with pytest.raises(TypeError, match="non-empty str"):
        MMLogger.get_instance("")
    assert not MMLogger.check_instance_created("lvl")
