"""MMLogger and print_log: MMEngine's logging names on the standard ``logging`` module.

How the pieces fit:

* Every :class:`MMLogger` is a :class:`logging.Logger` named ``camshaft.<name>`` whose
  parent is ``logging.getLogger('camshaft')`` — the logger the other camshaft packages
  already log to (init reports, checkpoint warnings). Records propagate, so logging
  configuration, third-party handlers and pytest's ``caplog`` see them. An MMLogger is
  not entered in ``logging``'s own table: ``logging.getLogger('camshaft.<name>')``
  returns a plain logger, so get yours with :meth:`MMLogger.get_instance`.
* The console handler is attached once, to the ``camshaft`` logger, however many
  MMLoggers are created: no line is ever printed twice by camshaft. It writes to the
  current ``sys.stdout``; on ranks other than 0 it prints only errors (as MMEngine).
  If you also give the root logger a console handler, records reach both; stop that
  with ``logging.getLogger('camshaft').propagate = False``.
* A log file, when given, is written by rank 0 only (MMEngine's default); with
  ``distributed=True`` every other rank writes ``<stem>_rank<r><suffix>`` beside it.
* The first MMLogger also sets the ``camshaft`` logger's level when nobody has, so
  camshaft's own INFO records (the init summary) appear as they do in MMEngine.

Lines read ``11/23 12:00:00 - camshaft - INFO - message`` (the log file writes the year
too); from ERROR up, the file, function and line are added, as in MMEngine.
``MMLogger._reset_instances()`` removes every handler camshaft added and closes its
files (the runner's tests do it after each test).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import torch.distributed as dist

from camshaft.dist import get_rank, is_distributed
from camshaft.runner.logging._instances import NamedInstances

__all__ = ["MMLogger", "print_log"]

_ROOT_NAME = "camshaft"
_DEFAULT_NAME = "camshaft"
_FORMAT = "%(asctime)s - {label} - %(levelname)s - %(message)s"
_ERROR_FORMAT = (
    "%(asctime)s - {label} - %(levelname)s - %(pathname)s - %(funcName)s - %(lineno)d - %(message)s"
)
_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
if TYPE_CHECKING:  # generic in typeshed, subscriptable at runtime only from Python 3.11
    _StreamHandler = logging.StreamHandler[TextIO]
else:
    _StreamHandler = logging.StreamHandler
# What MMLogger changed on the ``camshaft`` logger, undone by ``_reset_instances``.
_installed: dict[str, Any] = {}


class _Formatter(logging.Formatter):
    """MMEngine's layout: ``time - label - LEVEL - message``; errors add the location.

    A plain record (no traceback, no stack) is formatted without the generic
    ``Formatter.format`` chain; what it sets on the record (``message``, ``asctime``)
    and the text are the same.
    """

    # (converter, created, converter(created)) of the last record formatted.
    _last_time: ClassVar[tuple[Any, float, time.struct_time] | None] = None

    def __init__(self, datefmt: str) -> None:
        super().__init__(datefmt=datefmt)
        # (label, is_error) -> layout with the label filled in.
        self._layouts: dict[tuple[str, bool], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        """The record's line; see the class docstring."""
        try:
            label = record.camshaft_label  # type: ignore[attr-defined]
        except AttributeError:
            label = None
        if not label:
            label = record.name.partition(".")[0]
        error = record.levelno >= logging.ERROR
        try:
            layout = self._layouts[label, error]
        except KeyError:
            escaped = label.replace("%", "%%")
            layout = (_ERROR_FORMAT if error else _FORMAT).format(label=escaped)
            self._layouts[label, error] = layout
        style, datefmt = self._style, self.datefmt
        if (
            not datefmt
            or type(record) is not logging.LogRecord
            or record.exc_info
            or record.exc_text
            or record.stack_info
            or type(style) is not logging.PercentStyle
            or style._defaults  # type: ignore[attr-defined]  # PercentStyle's, since 3.10
        ):
            style._fmt = layout
            return super().format(record)
        msg = str(record.msg)
        if record.args:
            msg = msg % record.args
        record.message = msg
        # formatTime, with converter(created) computed once for all handlers of a record.
        converter, created = self.converter, record.created
        cached = _Formatter._last_time
        if cached is not None and cached[0] is converter and cached[1] == created:
            struct = cached[2]
        else:
            struct = converter(created)
            _Formatter._last_time = (converter, created, struct)
        record.asctime = time.strftime(datefmt, struct)
        return layout % record.__dict__


class _ConsoleHandler(_StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record arrives (pytest swaps it).

    On ranks other than 0 only errors pass (its one filter, :class:`_RankZeroOrError`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.rank_filter = _RankZeroOrError()
        self.addFilter(self.rank_filter)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and emit ``record``; truthy when it was emitted.

        With only its own filter and a formatter, the filtering and the write are done
        here rather than through ``Filterer.filter``, ``emit``, ``format`` and
        ``flush``; any other filter, or none, takes the standard path.
        """
        formatter = self.formatter
        rank_filter = self.rank_filter
        if formatter is None or self.filters != [rank_filter]:
            return super().handle(record)
        if record.levelno < logging.ERROR and rank_filter.rank() != 0:
            return False
        _write_record(self, sys.stdout, formatter, record)
        return True


class _FileHandler(logging.FileHandler):
    """``logging.FileHandler`` that writes a record without the generic call chain.

    Only while it has no filter, a formatter and an open file; otherwise (and for the
    first record after ``close``, which opens the file again) the standard path runs.
    """

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and emit ``record``; truthy when it was emitted."""
        formatter = self.formatter
        stream = self.stream
        if self.filters or formatter is None or stream is None:
            return super().handle(record)
        _write_record(self, stream, formatter, record)
        return True


def _write_record(
    handler: logging.StreamHandler[Any],
    stream: Any,
    formatter: logging.Formatter,
    record: logging.LogRecord,
) -> None:
    """``StreamHandler.emit`` and ``flush`` in one call, under the handler's lock."""
    with handler.lock:  # type: ignore[union-attr]
        try:
            stream.write(formatter.format(record) + handler.terminator)
            try:
                flush = stream.flush
            except AttributeError:  # StreamHandler.flush skips such a stream
                pass
            else:
                flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(record)


class _Label(logging.Filter):
    """Stamps the label to print on the records logged through one MMLogger."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        record.camshaft_label = self.label
        return True


def _global_rank() -> int:
    """The process's rank: the process group's, else torchrun's ``RANK``, else 0."""
    if is_distributed():
        return get_rank()
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


class _RankZeroOrError(logging.Filter):
    """Lets a record through on rank 0, and from ERROR up on every rank.

    The rank is looked up again only when the default process group changes (one is
    created or destroyed); ``RANK`` from the environment is read with it.
    """

    _UNSET: Any = object()

    def __init__(self) -> None:
        super().__init__()
        self._group: Any = self._UNSET
        self._rank = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or self.rank() == 0

    def rank(self) -> int:
        """The rank, cached while the default process group stays the same."""
        group = dist.group.WORLD if _DIST_AVAILABLE else None
        if group is not self._group:
            self._rank = _global_rank()
            self._group = group
        return self._rank


_DIST_AVAILABLE = dist.is_available()
# What MMLogger.findCaller's shortcut recognises: logging's own frames above the caller.
_LOGGING_SOURCE = os.path.normcase(logging.Logger._log.__code__.co_filename)
_LOG_CODE = logging.Logger._log.__code__
_LEVEL_METHOD_CODES = frozenset(
    getattr(logging.Logger, name).__code__
    for name in ("debug", "info", "warning", "error", "critical", "log")
)
_INTERNAL_FILES: dict[str, bool] = {}  # co_filename -> whether findCaller skips it
# (id(code), instruction offset) -> (code, line). A frame's line is a function of its code
# and offset, but ``f_lineno`` decodes the code's line table on every read: about a
# tenth of a log line's cost. The code is kept so that a reused id cannot match.
_CALLER_LINES: dict[tuple[int, int], tuple[CodeType, int]] = {}
_CALLER_LINES_LIMIT = 4096


def _caller_line(frame: FrameType, code: CodeType) -> int:
    """``frame.f_lineno``, remembered by code object and instruction offset."""
    key = (id(code), frame.f_lasti)
    try:
        known, line = _CALLER_LINES[key]
    except KeyError:
        pass
    else:
        if known is code:
            return line
    line = frame.f_lineno
    if len(_CALLER_LINES) >= _CALLER_LINES_LIMIT:
        _CALLER_LINES.clear()
    _CALLER_LINES[key] = (code, line)
    return line


def _is_internal_file(filename: str) -> bool:
    """``logging``'s test for frames that are not the caller (its own, importlib's)."""
    name = os.path.normcase(filename)
    return name == logging._srcfile or ("importlib" in name and "_bootstrap" in name)


def _check_level(level: int | str, argument: str) -> int:
    if isinstance(level, str) and level.upper() in _LEVELS:
        return int(logging.getLevelName(level.upper()))
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    raise ValueError(f"`{argument}` must be one of {list(_LEVELS)} or an int >= 0, got {level!r}")


def _install_console(level: int) -> None:
    """Give the ``camshaft`` logger its one console handler (once)."""
    root = logging.getLogger(_ROOT_NAME)
    if "console" in _installed:
        return
    handler = _ConsoleHandler()
    handler.setFormatter(_Formatter(datefmt="%m/%d %H:%M:%S"))
    root.addHandler(handler)
    _installed["console"] = handler
    if root.level == logging.NOTSET:
        root.setLevel(level)
        _installed["level"] = True


class MMLogger(logging.Logger):
    """A logger with MMEngine's format, a rank-0 console and an optional log file.

    Create it with :meth:`get_instance` so that :meth:`get_current_instance` and
    ``print_log(..., logger='current')`` find it.

    Args:
        name: The instance name; the logger is called ``camshaft.<name>``.
        logger_name: The label printed in each line.
        log_file: Where to write the log (rank 0); parent folders are created.
        log_level: The lowest level logged (a name such as ``'INFO'`` or an int).
        file_mode: ``'w'`` to start the file afresh, ``'a'`` to append.
        distributed: Also write a log file on every other rank (``<stem>_rank<r>``).

    Raises:
        ValueError: ``log_level`` or ``file_mode`` is not one of the accepted values.
        TypeError: ``name`` is not a non-empty str.

    Example:
        >>> logger = MMLogger.get_instance('demo', log_level='INFO')
        >>> logger.info('hello')  # doctest: +SKIP
        11/23 12:00:00 - camshaft - INFO - hello
    """

    _instances: ClassVar[NamedInstances[MMLogger]] = NamedInstances("MMLogger")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instances = NamedInstances(cls.__name__)

    def __init__(
        self,
        name: str,
        logger_name: str = "camshaft",
        log_file: str | os.PathLike[str] | None = None,
        log_level: int | str = "INFO",
        file_mode: str = "w",
        distributed: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}")
        if file_mode not in ("w", "a"):
            raise ValueError(f"`file_mode` must be 'w' or 'a', got {file_mode!r}")
        level = _check_level(log_level, "log_level")
        super().__init__(f"{_ROOT_NAME}.{name}", level)
        self._instance_name = name
        self.parent = logging.getLogger(_ROOT_NAME)
        self.propagate = True
        self._label = _Label(str(logger_name))
        self.addFilter(self._label)
        _install_console(level)
        self._log_file: Path | None = None
        if log_file is not None:
            self._open_file(Path(log_file), file_mode, distributed)

    def _open_file(self, path: Path, mode: str, distributed: bool) -> None:
        rank = _global_rank()
        if rank != 0:
            if not distributed:
                return
            path = path.with_name(f"{path.stem}_rank{rank}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _FileHandler(path, mode, encoding="utf-8")
        handler.setFormatter(_Formatter(datefmt="%Y/%m/%d %H:%M:%S"))
        self.addHandler(handler)
        self._log_file = path

    @property
    def instance_name(self) -> str:
        """The name this logger was created with."""
        return self._instance_name

    @property
    def log_file(self) -> Path | None:
        """The file this process writes, or None (no file, or not rank 0)."""
        return self._log_file

    def isEnabledFor(self, level: int) -> bool:
        """Whether ``level`` passes; never cached, as this logger is not in ``logging``'s table."""
        if self.disabled or self.manager.disable >= level:
            return False
        logger: logging.Logger | None = self
        while logger is not None:  # getEffectiveLevel, without its call
            if logger.level:
                return level >= logger.level
            logger = logger.parent
        return level >= logging.NOTSET

    def handle(self, record: logging.LogRecord) -> None:
        """Filter ``record`` and pass it to the handlers, as ``logging.Logger.handle``.

        With only the label filter, the label is stamped here, without running the
        filters one by one; any other filter, once added, runs as usual.
        """
        if self.disabled:
            return
        label = self._label
        if self.filters == [label]:
            record.camshaft_label = label.label
        else:
            passed = self.filter(record)
            if not passed:
                return
            if isinstance(passed, logging.LogRecord):  # Python 3.12+: a filter may replace it
                record = passed
        self.callHandlers(record)

    def findCaller(
        self, stack_info: bool = False, stacklevel: int = 1
    ) -> tuple[str, int, str, str | None]:
        """Where the record was logged, as ``logging.Logger.findCaller`` finds it.

        A record logged by a level method (``info``, ``warning``, ..., ``log``) straight
        from code outside ``logging`` is located from the two frames above it; every
        other case walks the stack as the standard method does.
        """
        if stacklevel == 1 and not stack_info and logging._srcfile == _LOGGING_SOURCE:
            log_frame = sys._getframe(1)
            method_frame = log_frame.f_back
            if (
                log_frame.f_code is _LOG_CODE
                and method_frame is not None
                and method_frame.f_code in _LEVEL_METHOD_CODES
            ):
                caller = method_frame.f_back
                if caller is not None:
                    code = caller.f_code
                    filename = code.co_filename
                    try:
                        internal = _INTERNAL_FILES[filename]
                    except KeyError:
                        internal = _INTERNAL_FILES[filename] = _is_internal_file(filename)
                    if not internal:
                        return filename, _caller_line(caller, code), code.co_name, None
        # The standard walk counts this method's frame as a caller: one level more.
        return super().findCaller(stack_info, stacklevel + 1)

    def close(self) -> None:
        """Detach and close this logger's file handler."""
        for handler in list(self.handlers):
            self.removeHandler(handler)
            handler.close()

    @classmethod
    def get_instance(cls, name: str, **kwargs: Any) -> MMLogger:
        """Return the logger called ``name``, creating it with ``kwargs`` if needed.

        Creating one makes it the current logger. ``kwargs`` for a logger that
        already exists are ignored with a warning.

        Example:
            >>> logger = MMLogger.get_instance('demo_get', log_level='WARNING')
            >>> MMLogger.get_current_instance() is logger
            True
        """
        return cls._instances.get_instance(name, lambda: cls(name, **kwargs), kwargs)

    @classmethod
    def get_current_instance(cls) -> MMLogger:
        """The most recently created logger; one called ``'camshaft'`` is made if none."""
        current = cls._instances.current()
        return current if current is not None else cls.get_instance(_DEFAULT_NAME)

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether a logger called ``name`` was created by :meth:`get_instance`."""
        return name in cls._instances

    @classmethod
    def _reset_instances(cls) -> None:
        """Forget every named logger, close their files, remove the console handler."""
        for logger in cls._instances.clear():
            logger.close()
        root = logging.getLogger(_ROOT_NAME)
        handler = _installed.pop("console", None)
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
        if _installed.pop("level", False):
            root.setLevel(logging.NOTSET)


def print_log(
    msg: object,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None = None,
    level: int | str = logging.INFO,
) -> None:
    """Log ``msg`` where ``logger`` says.

    Args:
        msg: The message.
        logger: ``None`` prints it; ``'silent'`` drops it; ``'current'`` logs to
            :meth:`MMLogger.get_current_instance`; another str names an MMLogger
            created with :meth:`MMLogger.get_instance`; a ``logging.Logger`` (or
            adapter) is used as it is.
        level: The level (int or name such as ``'WARNING'``).

    Raises:
        ValueError: ``logger`` names no MMLogger, or ``level`` is not a level.
        TypeError: ``logger`` is of another type.

    Example:
        >>> print_log('hello')
        hello
        >>> print_log('nobody hears this', logger='silent')
    """
    number = _check_level(level, "level")
    if logger is None:
        print(msg)
    elif isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        logger.log(number, msg, stacklevel=2)
    elif logger == "silent":
        return
    elif logger == "current":
        MMLogger.get_current_instance().log(number, msg, stacklevel=2)
    elif isinstance(logger, str):
        if not MMLogger.check_instance_created(logger):
            raise ValueError(
                f"print_log(logger={logger!r}): no MMLogger called {logger!r} exists; create "
                f"it with MMLogger.get_instance({logger!r}), or pass 'current', 'silent', "
                "None or a logging.Logger"
            )
        MMLogger.get_instance(logger).log(number, msg, stacklevel=2)
    else:
        raise TypeError(
            "`logger` must be None, 'silent', 'current', the name of an MMLogger or a "
            f"logging.Logger, got {type(logger).__name__}: {logger!r}"
        )
