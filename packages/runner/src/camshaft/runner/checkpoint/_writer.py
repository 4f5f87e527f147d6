"""Checkpoint files written in order on a background thread, so training does not wait.

Writing a checkpoint is mostly waiting: serialising, then ``fsync`` of the file and of
its directory, twice (checkpoint, then the ``last_checkpoint`` pointer). None of it
needs the training thread once the state is copied. :class:`CheckpointWriter` runs
such jobs one at a time, in the order they were submitted, on a worker thread that
lives while there is work; :func:`~._save.snapshot_checkpoint` makes the copy that
lets training go on changing its tensors meanwhile.

Guarantees:

* order: a job runs after every job submitted before it, so the pointer never names a
  checkpoint that is not complete, and pruning never runs ahead of the save it
  follows;
* errors are not lost: a failed job drops the jobs queued after it (they depended on
  it) and the next :meth:`~CheckpointWriter.submit` or
  :meth:`~CheckpointWriter.wait` raises :class:`CheckpointSaveError` naming it;
* exit: the worker is not a daemon thread, so an interpreter that exits normally
  first finishes the queued writes. A SIGKILL cannot be waited for, but every file is
  written atomically, so it leaves the previous checkpoint and pointer loadable.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable

from camshaft.runner.checkpoint._atomic import CheckpointSaveError

__all__ = ["CheckpointWriter"]


class CheckpointWriter:
    """Runs checkpoint file jobs in submission order, in the background or inline.

    Example:
        >>> writer = CheckpointWriter()
        >>> done = []
        >>> writer.submit(lambda: done.append(1), "first")
        >>> writer.submit(lambda: done.append(2), "second", asynchronous=False)
        >>> done  # the inline job waited for the queued one
        [1, 2]
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        # (description, job, cleanup if the job is dropped)
        self._jobs: deque[tuple[str, Callable[[], object], Callable[[], object] | None]] = deque()
        self._busy = False  # a worker thread is draining the queue
        self._running = False  # that thread is inside a job
        self._failure: tuple[str, BaseException] | None = None

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._condition:
            return len(self._jobs) + int(self._running)

    def submit(
        self,
        job: Callable[[], object],
        description: str,
        *,
        asynchronous: bool = True,
        cleanup: Callable[[], object] | None = None,
    ) -> None:
        """Queue ``job``, or with ``asynchronous=False`` run it now after the queue drains.

        Args:
            job: Writes or deletes files; its exceptions are reported as described in
                the module docstring.
            description: What it writes, for error messages (e.g. the file name).
            asynchronous: Whether to return before the job ran.
            cleanup: Called instead of ``job`` when a queued job is dropped because an
                earlier one failed, or when this submit reports such a failure (e.g.
                removing a temp file the job would have renamed). Its own errors are
                ignored.

        Raises:
            CheckpointSaveError: An earlier background job failed (raised once).
            Exception: With ``asynchronous=False``, whatever ``job`` raises.
        """
        if not asynchronous:
            # Read without the lock (what wait() would find under it): a worker clears
            # _busy only after recording any failure, so False means nothing is pending.
            if self._busy or self._failure is not None:
                try:
                    self.wait()
                except BaseException:
                    _run_cleanup(cleanup)
                    raise
            job()
            return
        with self._condition:
            if self._failure is not None:
                _run_cleanup(cleanup)
                self._raise_failure()
            self._jobs.append((description, job, cleanup))
            if not self._busy:
                self._busy = True
                threading.Thread(target=self._drain, name="camshaft-checkpoint-writer").start()

    def wait(self) -> None:
        """Block until every submitted job ran.

        Raises:
            CheckpointSaveError: A background job failed (raised once, the job's own
                exception chained).
        """
        with self._condition:
            while self._busy:
                self._condition.wait()
            self._raise_failure()

    def _drain(self) -> None:
        while True:
            with self._condition:
                if not self._jobs or self._failure is not None:
                    for _, _, cleanup in self._jobs:  # they depended on the failed job
                        _run_cleanup(cleanup)
                    self._jobs.clear()
                    self._busy = False
                    self._condition.notify_all()
                    return
                description, job, _ = self._jobs.popleft()
                self._running = True
            try:
                job()
            except BaseException as exc:  # reported to the training thread, not lost
                with self._condition:
                    self._failure = (description, exc)
            finally:
                with self._condition:
                    self._running = False

    def _raise_failure(self) -> None:
        if self._failure is None:
            return
        (description, exc), self._failure = self._failure, None
        what = "" if description.strip("'") in str(exc) else f" ({description})"
        raise CheckpointSaveError(
            f"a background checkpoint write failed{what}: {exc}. Earlier checkpoints and the "
            "last_checkpoint pointer are intact; the writes queued after it were dropped."
        ) from exc


def _run_cleanup(cleanup: Callable[[], object] | None) -> None:
    if cleanup is not None:
        with contextlib.suppress(Exception):
            cleanup()
