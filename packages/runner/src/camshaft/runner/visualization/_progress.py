"""A live progress bar for the terminal, drawn with the optional ``rich`` package.

:func:`progress_wanted` tells whether a bar makes sense (an interactive terminal and
rich installed); :class:`EpochProgressBar` draws one: the description, a bar, ``M/N``,
the elapsed time, the time remaining, and fields such as ``loss 0.3127``. Install
rich with ``pip install "camshaft-runner[progress]"``.

The per-iteration cost is kept small: :meth:`EpochProgressBar.update` stores the
numbers it is given, and they are formatted only when rich redraws the bar (a few
times a second, on its own thread).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["EpochProgressBar", "progress_wanted"]

_RICH_HINT = 'EpochProgressBar needs rich: pip install "camshaft-runner[progress]"'


def progress_wanted(stream: TextIO | None = None) -> bool:
    """Whether a live progress bar should be drawn on ``stream``.

    True when ``stream`` (default ``sys.stdout``) is an interactive terminal and
    ``rich`` can be imported. It never raises: a closed or odd stream answers False.

    Args:
        stream: The stream the bar would be written to.

    Returns:
        Whether to draw the bar.

    Example:
        >>> import io
        >>> progress_wanted(io.StringIO())
        False
    """
    try:
        target = sys.stdout if stream is None else stream
        if target is None or not bool(target.isatty()):
            return False
        import importlib.util

        return importlib.util.find_spec("rich") is not None
    except Exception:
        return False


class _Fields:
    """The numbers of one update, formatted as ``loss 0.3127  acc 0.9000`` when drawn."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def __format__(self, spec: str) -> str:
        parts = []
        for name, value in self.values.items():
            try:
                parts.append(f"{name} {float(value):.4f}")
            except (TypeError, ValueError):
                parts.append(f"{name} {value}")
        return "  ".join(parts)

    def __str__(self) -> str:
        return self.__format__("")


class EpochProgressBar:
    """A live progress bar for one epoch (or one validation/test run).

    Args:
        total: The number of steps, or None when unknown (the bar then pulses and
            shows ``M/?``).
        description: The text before the bar, e.g. ``'Epoch 3/10'``.
        stream: Where to draw (default ``sys.stdout``).

    Raises:
        ImportError: rich is not installed (``pip install "camshaft-runner[progress]"``).
        TypeError: ``total`` is not an int or None, or ``description`` not a str.
        ValueError: ``total`` is negative.

    Example:
        >>> import io
        >>> bar = EpochProgressBar(100, 'Epoch 1', stream=io.StringIO())
        >>> bar.update(10, loss=0.3127)
        >>> bar.close()
        >>> bar.update(11)  # after close: ignored
    """

    def __init__(
        self, total: int | None, description: str, *, stream: TextIO | None = None
    ) -> None:
        if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
            raise TypeError(
                f"`total` must be an int or None, got {type(total).__name__}: {total!r}"
            )
        if total is not None and total < 0:
            raise ValueError(f"`total` must be >= 0, got {total}")
        if not isinstance(description, str):
            raise TypeError(
                f"`description` must be a str, got {type(description).__name__}: {description!r}"
            )
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError as err:
            raise ImportError(_RICH_HINT) from err
        target = sys.stdout if stream is None else stream
        self._closed = False
        self._progress: Progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta", markup=False),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}", markup=False),
            console=Console(file=target),
            refresh_per_second=4,
            # While the bar is live, prints (and the logger's console lines) to the bar's
            # own stream go above it; the other stream is left alone.
            redirect_stdout=target is sys.stdout,
            redirect_stderr=target is sys.stderr,
        )
        self._task: TaskID = self._progress.add_task(description, total=total, metrics=_Fields({}))
        self._progress.start()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def update(self, completed: int, **fields: float) -> None:
        """Set how many steps are done and, optionally, the numbers shown after the bar.

        Fields given replace the previous ones; with none, the previous ones stay. A
        call after :meth:`close` does nothing.

        Args:
            completed: Steps done so far (not an increment).
            **fields: Numbers to show, e.g. ``loss=0.3127`` (drawn as ``loss 0.3127``).
        """
        if self._closed:
            return
        if fields:
            self._progress.update(self._task, completed=completed, metrics=_Fields(fields))
        else:
            self._progress.update(self._task, completed=completed)

    def close(self) -> None:
        """Draw the bar a last time and stop refreshing it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._progress.stop()

    def __enter__(self) -> EpochProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}({state})"
