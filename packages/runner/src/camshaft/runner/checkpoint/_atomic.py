"""Atomic file replacement: a reader sees the old file or the new one, never half of one.

The recipe (used for checkpoints and for the ``last_checkpoint`` pointer):

1. create a hidden temp file ``.<name>.<random>.tmp`` in the *same* directory as the
   target (a rename is only atomic within one file system);
2. write it, ``flush`` and ``os.fsync`` it, so its bytes are on disk;
3. ``os.replace`` it onto the target name (atomic on POSIX and Windows);
4. ``fsync`` the directory, so the rename itself survives a power cut.

Any exception on the way removes the temp file and leaves the target untouched. A
SIGKILL cannot run cleanup, so it may leave a ``.*.tmp`` file behind, but never a
partial file under the target name; :func:`remove_stale_temp_files` clears such
leftovers before the next write to the same name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NoReturn, TypeVar

from camshaft.init import CheckpointError

__all__ = [
    "CheckpointSaveError",
    "StagedWrite",
    "atomic_write",
    "ensure_writable_dir",
    "fsync_dir",
    "remove_stale_temp_files",
    "stage_write",
    "temp_name_pattern",
]

# errnos meaning "this file system cannot fsync a directory": durability is best-effort
# there, and the rename has already happened.
_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EISDIR}
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class CheckpointSaveError(CheckpointError, OSError):
    """A checkpoint or pointer file could not be written.

    Raised when the work directory cannot be created or written, or the disk fails
    mid-write. The message names the directory or file and the operating system's
    reason; the original ``OSError`` is chained. Nothing is left under the target name.
    """


def ensure_writable_dir(directory: str | os.PathLike[str], what: str = "work_dir") -> None:
    """Create ``directory`` (with parents) or raise naming it.

    Args:
        directory: The folder a file is about to be written into.
        what: How the folder is called in the error message.

    Raises:
        CheckpointSaveError: The folder cannot be created, or exists but is not a folder.

    Example:
        >>> ensure_writable_dir(Path("work_dirs/exp1"))  # doctest: +SKIP
    """
    if os.path.isdir(directory):  # the usual case, checked with one stat
        return
    name = os.fspath(directory)
    try:
        Path(name).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointSaveError(
            f"cannot create the {what} {name!r}: {exc.strerror or exc}. Choose a "
            f"{what} you can write to, or fix its permissions."
        ) from exc
    if not os.path.isdir(name):
        raise CheckpointSaveError(
            f"the {what} {name!r} exists but is not a directory; choose another path."
        )


_P = TypeVar("_P", str, Path)


def atomic_write(path: _P, write: Callable[[BinaryIO], None]) -> _P:
    """Write ``path`` atomically: ``write`` fills a temp file that then replaces ``path``.

    Args:
        path: The final file name (a ``str`` or a :class:`~pathlib.Path`). Its
            directory must exist.
        write: Called once with the open binary temp file; must not close it.

    Returns:
        ``path``.

    Raises:
        CheckpointSaveError: The directory cannot be written, or writing failed with
            an ``OSError``. Other exceptions from ``write`` propagate unchanged. In
            every case the temp file is removed and ``path`` is untouched.

    Example:
        >>> atomic_write(Path("out/last_checkpoint"), lambda f: f.write(b"epoch_1.pth"))
        ... # doctest: +SKIP
    """
    stage_write(path, write).commit()
    return path


class StagedWrite:
    """A file written under its temp name, not yet synced to disk nor in place.

    Made by :func:`stage_write`; :meth:`commit` finishes the recipe (steps 2-4 of the
    module docstring), :meth:`discard` abandons it. Until one of them runs, the target
    still holds its previous file. Splitting the write lets the slow part, waiting
    for ``fsync``, run on another thread while the caller goes on.
    """

    def __init__(self, file: BinaryIO, tmp: str, target: str, directory: str) -> None:
        self._file = file
        self._tmp = tmp
        self.target = target
        """The final file name."""
        self._directory = directory

    def commit(self) -> None:
        """``fsync`` the temp file, rename it onto the target and ``fsync`` the directory.

        Raises:
            CheckpointSaveError: ``fsync`` or the rename failed; the temp file is
                removed and the target untouched.
        """
        try:
            try:
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
            os.replace(self._tmp, self.target)
        except BaseException as exc:
            _abandon(self._tmp, self.target, exc)
        finally:
            _IN_FLIGHT.discard(self._tmp)
        fsync_dir(self._directory)

    def discard(self) -> None:
        """Close and remove the temp file; the target keeps its previous file."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
        _IN_FLIGHT.discard(self._tmp)


def stage_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> StagedWrite:
    """The first half of :func:`atomic_write`: ``write`` fills a fresh temp file, flushed.

    Args:
        path: The final file name. Its directory must exist.
        write: Called once with the open binary temp file; must not close it.

    Returns:
        The staged file; call :meth:`StagedWrite.commit` (on any thread) to make it
        durable and put it in place, or :meth:`StagedWrite.discard`.

    Raises:
        CheckpointSaveError: As :func:`atomic_write`; the temp file is removed.

    Example:
        >>> staged = stage_write("out/epoch_1.pth", lambda f: f.write(b"data"))  # doctest: +SKIP
        >>> staged.commit()  # doctest: +SKIP
    """
    target = os.fspath(path)
    directory, name = split_path(target)
    _remove_stale(directory, name)
    fd, tmp = _open_temp(directory, name)
    file = open(fd, "wb")  # noqa: SIM115 - kept open until commit() or discard()
    try:
        write(file)
        file.flush()
    except BaseException as exc:
        file.close()
        _abandon(tmp, target, exc)
    _IN_FLIGHT.add(tmp)
    return StagedWrite(file, tmp, target, directory)


def _abandon(tmp: str, target: str, exc: BaseException) -> NoReturn:
    """Remove the temp file; raise ``exc``, an ``OSError`` as a CheckpointSaveError."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    if isinstance(exc, OSError) and not isinstance(exc, CheckpointError):
        raise CheckpointSaveError(
            f"writing {target!r} failed: {exc.strerror or exc}. The previous file, if "
            "any, is untouched; check free disk space and permissions."
        ) from exc
    raise exc


# Temp files staged and not yet committed: never "stale", even for a second write of
# the same name staged while the first one waits for its commit on another thread.
_IN_FLIGHT: set[str] = set()


def split_path(path: str) -> tuple[str, str]:
    """``os.path.split(path)``, with ``'.'`` for a name without a directory.

    Example:
        >>> split_path("work_dirs/exp/epoch_1.pth"), split_path("epoch_1.pth")
        (('work_dirs/exp', 'epoch_1.pth'), ('.', 'epoch_1.pth'))
    """
    head, name = os.path.split(path)
    return head or os.curdir, name


join_path = os.path.join


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry to disk, so a rename inside it is durable.

    A no-op on Windows and on file systems that cannot fsync a directory.

    Args:
        directory: The folder whose entries changed.

    Example:
        >>> fsync_dir(Path("work_dirs/exp1"))  # doctest: +SKIP
    """
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def temp_name_pattern(path: Path) -> re.Pattern[str]:
    """The names :func:`atomic_write` gives its temp files for ``path``."""
    return re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{16}}\.tmp")


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files a killed earlier write of ``path`` left behind.

    Args:
        path: The target file name whose leftovers are removed.

    Returns:
        The removed files.

    Example:
        >>> remove_stale_temp_files(Path("work_dirs/exp1/epoch_2.pth"))  # doctest: +SKIP
        []
    """
    directory, name = split_path(os.fspath(path))
    return [Path(found) for found in _remove_stale(directory, name)]


def _remove_stale(directory: str, name: str) -> list[str]:
    """:func:`remove_stale_temp_files` on a split path, returning the removed paths."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    prefix = f".{name}."
    width = len(prefix)
    # A slice comparison costs no call per entry; only candidates meet the pattern.
    candidates = [entry for entry in entries if entry[:width] == prefix]
    if not candidates:
        return []
    pattern = temp_name_pattern(Path(name))
    removed = []
    for entry in candidates:
        found = join_path(directory, entry)
        if found in _IN_FLIGHT or not pattern.fullmatch(entry) or not _is_plain_file(found):
            continue
        try:
            os.unlink(found)
        except OSError:
            continue
        removed.append(found)
    return removed


def _is_plain_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _open_temp(directory: str, name: str) -> tuple[int, str]:
    """Create a fresh hidden temp file ``directory/.name.<16 hex>.tmp``, default permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
    for _ in range(100):
        tmp = join_path(directory, f".{name}.{os.urandom(8).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise CheckpointSaveError(
                f"cannot write into the directory {directory!r} (creating a temp file "
                f"for {name!r} failed: {exc.strerror or exc}). Choose a work_dir you can "
                "write to, or fix its permissions."
            ) from exc
    target = join_path(directory, name)
    raise CheckpointSaveError(f"could not pick an unused temp file name beside {target!r}")
