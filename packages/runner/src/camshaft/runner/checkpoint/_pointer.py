"""The ``last_checkpoint`` pointer, finding the checkpoint to resume from, and pruning.

``work_dir/last_checkpoint`` is a one-line text file naming the newest complete
checkpoint. It holds the checkpoint's path *relative to* ``work_dir`` (e.g.
``epoch_3.pth``) when the checkpoint lies inside ``work_dir``, so a work dir can be moved
or mounted elsewhere and still resumes; otherwise it holds the absolute path. Readers
accept both. It is written atomically, after the checkpoint itself, so a kill at any
moment leaves a pointer naming a complete checkpoint.

Periodic checkpoints are called ``epoch_<N>.pth`` or ``iter_<N>.pth``; pruning
(``max_keep_ckpts``) keeps the newest ones by ``N`` and never deletes the file the
pointer names nor a ``best_*`` checkpoint.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import BinaryIO

from camshaft.runner.checkpoint._atomic import (
    CheckpointSaveError,
    atomic_write,
    ensure_writable_dir,
    join_path,
    split_path,
)

__all__ = [
    "LAST_CHECKPOINT",
    "write_last_checkpoint",
    "read_last_checkpoint",
    "find_latest_checkpoint",
    "prune_checkpoints",
]

LAST_CHECKPOINT = "last_checkpoint"
"""Name of the pointer file inside ``work_dir``."""

_PERIODIC = re.compile(r"(epoch|iter)_(\d+)\.pth")


def write_last_checkpoint(
    work_dir: str | os.PathLike[str], checkpoint_path: str | os.PathLike[str]
) -> Path:
    """Point ``work_dir/last_checkpoint`` at ``checkpoint_path``, atomically.

    Call it after :func:`save_checkpoint` returned. The pointer holds the path
    relative to ``work_dir`` when the checkpoint lies inside it, else the absolute path.

    Args:
        work_dir: The run's work directory (created if missing).
        checkpoint_path: The checkpoint file; relative paths are taken relative to the
            current directory, as for ``open``.

    Returns:
        The pointer file's path.

    Raises:
        FileNotFoundError: ``checkpoint_path`` does not exist (a pointer must never
            name a missing file).
        CheckpointSaveError: ``work_dir`` cannot be created or written.

    Example:
        >>> write_last_checkpoint("work_dirs/exp", "work_dirs/exp/epoch_3.pth")  # doctest: +SKIP
        PosixPath('work_dirs/exp/last_checkpoint')
    """
    directory = os.fspath(work_dir)
    write_pointer(directory, os.fspath(checkpoint_path))
    return Path(directory, LAST_CHECKPOINT)


def write_pointer(work_dir: str, checkpoint_path: str) -> None:
    """:func:`write_last_checkpoint` on ``str`` paths, returning nothing (fewer calls).

    Raises:
        FileNotFoundError, CheckpointSaveError: as :func:`write_last_checkpoint`.
    """
    if not os.path.isfile(checkpoint_path):
        raise FileNotFoundError(
            f"`checkpoint_path` {checkpoint_path!r} is not an existing file; save the "
            "checkpoint first, then write the pointer to it"
        )
    ensure_writable_dir(work_dir)
    parent, name = split_path(checkpoint_path)
    if parent == work_dir or parent == work_dir.rstrip(os.sep):
        text = name  # the usual case: saved straight into work_dir, nothing to resolve
    else:
        absolute = Path(checkpoint_path).resolve()
        try:
            text = str(absolute.relative_to(Path(work_dir).resolve()))
        except ValueError:
            text = str(absolute)
    data = (text + "\n").encode("utf-8")

    def write(file: BinaryIO) -> None:
        file.write(data)

    atomic_write(join_path(work_dir, LAST_CHECKPOINT), write)


def read_last_checkpoint(work_dir: str | os.PathLike[str]) -> Path | None:
    """The path ``work_dir/last_checkpoint`` names, or None if there is no pointer.

    Args:
        work_dir: The run's work directory.

    Returns:
        The named checkpoint path (absolute, or relative to the current directory as
        ``work_dir`` is), whether or not that file still exists; None when the pointer
        file is missing or empty.

    Example:
        >>> read_last_checkpoint("work_dirs/exp")  # doctest: +SKIP
        PosixPath('work_dirs/exp/epoch_3.pth')
    """
    pointer = Path(work_dir) / LAST_CHECKPOINT
    try:
        text = pointer.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        warnings.warn(f"cannot read the pointer file {str(pointer)!r}: {exc}", stacklevel=2)
        return None
    if not text:
        return None
    named = Path(text)
    return named if named.is_absolute() else Path(work_dir) / named


def find_latest_checkpoint(work_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint to resume from: the pointer's, else the newest periodic one.

    When the pointer is missing, or names a file that no longer exists, the newest
    ``epoch_<N>.pth`` / ``iter_<N>.pth`` in ``work_dir`` (largest ``N``; ties broken by
    modification time) is returned with a warning. Every such file is complete, since
    checkpoints are written atomically.

    Args:
        work_dir: The run's work directory.

    Returns:
        The checkpoint path, or None when there is none (a fresh start).

    Example:
        >>> find_latest_checkpoint("work_dirs/exp")  # doctest: +SKIP
        PosixPath('work_dirs/exp/epoch_3.pth')
    """
    directory = Path(work_dir)
    named = read_last_checkpoint(directory)
    if named is not None and named.is_file():
        return named
    newest = _periodic_checkpoints(directory)
    if not newest:
        if named is not None:
            warnings.warn(
                f"{str(directory / LAST_CHECKPOINT)!r} names {str(named)!r}, which does not "
                "exist, and there is no epoch_*.pth or iter_*.pth to fall back to",
                stacklevel=2,
            )
        return None
    chosen = newest[-1][1]
    reason = f"names {str(named)!r}, which does not exist" if named else "is missing"
    warnings.warn(
        f"{str(directory / LAST_CHECKPOINT)!r} {reason}; using the newest checkpoint "
        f"found in the work_dir instead: {str(chosen)!r}",
        stacklevel=2,
    )
    return chosen


def prune_checkpoints(
    work_dir: str | os.PathLike[str], keep: int, pattern: str = "epoch"
) -> list[Path]:
    """Delete all but the newest ``keep`` periodic checkpoints (``max_keep_ckpts``).

    Args:
        work_dir: The run's work directory.
        keep: How many ``<pattern>_<N>.pth`` files to keep (largest ``N``); -1 keeps all.
            The file ``last_checkpoint`` names and ``best_*`` files are never deleted.
        pattern: Which checkpoints: ``'epoch'`` (``epoch_<N>.pth``) or ``'iter'``.

    Returns:
        The deleted files, oldest first.

    Raises:
        ValueError: ``keep`` is 0 or below -1, or ``pattern`` is not ``'epoch'``/``'iter'``.
        CheckpointSaveError: A file could not be deleted.

    Example:
        >>> prune_checkpoints("work_dirs/exp", keep=2)  # doctest: +SKIP
        [PosixPath('work_dirs/exp/epoch_1.pth')]
    """
    if type(keep) is not int or keep == 0 or keep < -1:
        raise ValueError(
            f"`keep` (max_keep_ckpts) must be a positive int, or -1 to keep every "
            f"checkpoint; got {keep!r}. Use keep=1 to keep only the latest."
        )
    if pattern not in ("epoch", "iter"):
        raise ValueError(
            f"`pattern` must be 'epoch' (epoch_<N>.pth) or 'iter' (iter_<N>.pth), got {pattern!r}"
        )
    if keep == -1:
        return []
    directory = Path(work_dir)
    named = read_last_checkpoint(directory)
    protected = named.resolve() if named is not None else None
    candidates = [path for kind, _, path in _periodic(directory) if kind == pattern]
    deleted = []
    for path in candidates[: max(len(candidates) - keep, 0)]:
        if protected is not None and path.resolve() == protected:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckpointSaveError(
                f"cannot delete the old checkpoint {str(path)!r} (max_keep_ckpts={keep}): "
                f"{exc.strerror or exc}"
            ) from exc
        deleted.append(path)
    return deleted


def _periodic(directory: Path) -> list[tuple[str, int, Path]]:
    """``(kind, N, path)`` of each ``epoch_<N>.pth``/``iter_<N>.pth``, oldest first."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = _PERIODIC.fullmatch(entry.name)
        if match and entry.is_file():
            mtime = entry.stat().st_mtime_ns
            found.append((int(match[2]), mtime, match[1], Path(entry.path)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(kind, number, path) for number, _, kind, path in found]


def _periodic_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    return [(number, path) for _, number, path in _periodic(directory)]
