"""``save_checkpoint``: check that a checkpoint is plain data, then write it atomically.

A checkpoint written here can always be read back with ``torch.load(weights_only=True)``
(and so with :func:`camshaft.init.read_checkpoint`), because before a byte is written
every value is checked to be one of:

* a ``torch.Tensor`` or ``torch.nn.Parameter`` (not another tensor subclass),
  ``torch.Size``, ``torch.dtype``, ``torch.device``;
* ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None`` (exact types: an ``IntEnum``
  or a ``str`` subclass would pickle its class);
* ``dict`` / ``collections.OrderedDict`` (keys: str, int, float, bool or None),
  ``list``, ``tuple`` of the above.

Anything else (a numpy array, a dataclass, a config object, a lambda) is a
``TypeError`` naming where it sits, e.g. ``checkpoint['meta']['dataset'][2]``, and
nothing is written. The file is then written by :func:`._atomic.atomic_write`: a
crash or SIGKILL mid-save leaves the previous file at ``path`` intact.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from camshaft.runner.checkpoint._atomic import (
    StagedWrite,
    atomic_write,
    ensure_writable_dir,
    split_path,
    stage_write,
)

__all__ = ["check_plain_checkpoint", "save_checkpoint"]

_SCALARS: tuple[type, ...] = (str, bytes, int, float, bool, type(None))
_KEY_TYPES: tuple[type, ...] = (str, int, float, bool, type(None))
_TORCH_VALUES: tuple[type, ...] = (torch.Size, torch.dtype, torch.device)
_TENSORS: tuple[type, ...] = (torch.Tensor, torch.nn.Parameter)
_LEAVES = _SCALARS + _TENSORS  # what a check without copying need not visit
_MAX_DEPTH = 200


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically, after checking it is plain data.

    The parent directory is created if needed. The write goes to a hidden temp file
    beside ``path`` (``.<name>.<random>.tmp``), is fsynced, renamed onto ``path`` and the
    directory fsynced, so ``path`` always holds either the previous file or the whole
    new one.

    Args:
        checkpoint: The checkpoint dict (``meta``, ``state_dict``, ``optimizer``, ...)
            holding only tensors and plain Python types (see the module docstring).
        path: Where to write it, e.g. ``work_dir / 'epoch_3.pth'``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``checkpoint`` is not a mapping, or holds a value
            ``torch.load(weights_only=True)`` could not read; the message names its
            key path and type. Nothing is written.
        ValueError: ``checkpoint`` contains itself (a reference cycle).
        CheckpointSaveError: The directory cannot be created or written, or the write
            failed (disk full); the previous file at ``path`` is untouched.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> save_checkpoint(
        ...     {"meta": {"epoch": 1}, "state_dict": model.state_dict()},
        ...     "work_dirs/exp/epoch_1.pth",
        ... )  # doctest: +SKIP
        PosixPath('work_dirs/exp/epoch_1.pth')
    """
    target, checkpoint = prepare_checkpoint_write(checkpoint, path)
    return write_prepared_checkpoint(checkpoint, target)


def prepare_checkpoint_write(
    checkpoint: Mapping[str, Any], path: str | os.PathLike[str], *, snapshot: bool = False
) -> tuple[Path, Mapping[str, Any]]:
    """Every check :func:`save_checkpoint` makes before writing.

    Split out so that a background writer reports bad input on the caller's thread:
    only the write itself (:func:`write_prepared_checkpoint`) is left to it.

    Args:
        checkpoint: The checkpoint about to be written.
        path: Where it goes.
        snapshot: Return a copy (:func:`snapshot_checkpoint`) instead of
            ``checkpoint`` itself, made in the same pass as the check.

    Returns:
        The target path and what to write.

    Raises:
        TypeError, ValueError, CheckpointSaveError: as :func:`save_checkpoint`.
    """
    if isinstance(path, Path):
        target = path
    elif isinstance(path, str | os.PathLike):
        target = Path(path)
    else:
        raise TypeError(
            f"`path` must be a str or os.PathLike file name, got {type(path).__name__}: {path!r}"
        )
    name = os.fspath(target)
    if not target.name or os.path.isdir(name):
        raise ValueError(
            f"`path` must name a file, got the directory {name!r}; pass e.g. "
            f"{str(target / 'epoch_1.pth')!r}"
        )
    if snapshot:
        checkpoint = snapshot_checkpoint(checkpoint)
    else:
        check_plain_checkpoint(checkpoint)
    ensure_writable_dir(split_path(name)[0], "checkpoint directory")
    return target, checkpoint


def write_prepared_checkpoint(checkpoint: Mapping[str, Any], target: Path) -> Path:
    """Write a checkpoint that :func:`prepare_checkpoint_write` accepted, atomically.

    Raises:
        CheckpointSaveError: The write failed; the previous file at ``target`` is intact.
    """
    return atomic_write(target, _serializer(checkpoint))


def stage_prepared_checkpoint(checkpoint: Mapping[str, Any], target: Path) -> StagedWrite:
    """Serialise an accepted checkpoint into its temp file; commit it later.

    The target keeps its previous file until :meth:`StagedWrite.commit` (which may
    run on another thread: the checkpoint's bytes are already in the file).

    Raises:
        CheckpointSaveError: The write failed; the previous file at ``target`` is intact.
    """
    return stage_write(target, _serializer(checkpoint))


def _serializer(checkpoint: Mapping[str, Any]) -> Callable[[BinaryIO], None]:
    def write(file: BinaryIO) -> None:
        torch.save(checkpoint, file)

    return write


def check_plain_checkpoint(checkpoint: Mapping[str, Any]) -> None:
    """Raise unless ``checkpoint`` holds only what ``torch.load(weights_only=True)`` reads.

    Args:
        checkpoint: The mapping about to be saved.

    Raises:
        TypeError: A value or key of another type; the message gives its key path
            (``checkpoint['meta']['dataset'][2]``), its type and how to fix it.
        ValueError: A container contains itself.

    Example:
        >>> check_plain_checkpoint({"meta": {"epoch": 1}, "w": torch.zeros(2)})
    """
    _plain(checkpoint, copy=False)


def snapshot_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``checkpoint`` as :func:`check_plain_checkpoint` does and return a copy.

    The copy can be written later while training goes on changing its tensors:
    containers are rebuilt (same types, same order), tensors are copied to the CPU
    (GPU memory is not doubled; the file then holds CPU tensors, which
    ``load_checkpoint`` maps onto the model's device), other values are immutable
    and shared.

    Raises:
        TypeError, ValueError: as :func:`check_plain_checkpoint`.

    Example:
        >>> weights = torch.zeros(2)
        >>> copy = snapshot_checkpoint({"state_dict": {"w": weights}})
        >>> _ = weights.add_(1)
        >>> copy["state_dict"]["w"].tolist()
        [0.0, 0.0]
    """
    copied: dict[str, Any] = _plain(checkpoint, copy=True)
    return copied


class _NotPlain(Exception):
    """Raised by the fast walk; the slow one then finds the place and explains it."""


def _plain(checkpoint: Mapping[str, Any], copy: bool) -> Any:
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            f"`checkpoint` must be a mapping (a dict), got {type(checkpoint).__name__}; wrap "
            "it, e.g. {'state_dict': model.state_dict()}"
        )
    try:
        return _walk(checkpoint, 0, copy)
    except _NotPlain:
        _check(checkpoint, "checkpoint", set(), 0)  # raises, naming the place
        raise AssertionError("unreachable: the detailed check found nothing") from None


def _walk(value: Any, depth: int, copy: bool) -> Any:
    """Check (and with ``copy``, copy) a plain tree in one pass, with few calls per node.

    No key paths and no cycle set: a cycle ends at ``_MAX_DEPTH`` like any too deep
    tree, and :func:`_check` then tells which it is. Scalar leaves, most of a
    checkpoint, are passed over inside the loops rather than by a call each.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        return value.detach().to("cpu", copy=True) if copy else value
    if depth < _MAX_DEPTH:
        depth += 1
        if kind is dict or kind is OrderedDict:
            if copy:
                out: dict[Any, Any] = {} if kind is dict else OrderedDict()
                for key, item in value.items():
                    if type(key) not in _KEY_TYPES:
                        raise _NotPlain
                    out[key] = item if type(item) in _SCALARS else _walk(item, depth, copy)
                return out
            for key, item in value.items():
                if type(key) not in _KEY_TYPES:
                    raise _NotPlain
                if type(item) not in _LEAVES:
                    _walk(item, depth, copy)
            return value
        if kind is list or kind is tuple:
            if copy:
                items = [
                    item if type(item) in _SCALARS else _walk(item, depth, copy) for item in value
                ]
                return items if kind is list else tuple(items)
            for item in value:
                if type(item) not in _LEAVES:
                    _walk(item, depth, copy)
            return value
        if isinstance(value, _TORCH_VALUES):
            return value
    raise _NotPlain


def _check(value: object, where: str, active: set[int], depth: int) -> None:
    kind = type(value)
    if kind in _SCALARS or kind in _TENSORS or isinstance(value, _TORCH_VALUES):
        return
    if kind not in (dict, OrderedDict, list, tuple):
        raise TypeError(_not_plain(where, value))
    if id(value) in active:
        raise ValueError(f"{where} contains itself (a reference cycle); checkpoints must be trees")
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {_MAX_DEPTH} levels deep")
    active.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) not in _KEY_TYPES:
                raise TypeError(
                    f"{where} has a key of type {_type_name(key)} ({key!r:.80}); checkpoint "
                    "dict keys must be str, int, float, bool or None. Convert the key, e.g. "
                    "with str(key)."
                )
            _check(item, f"{where}[{key!r}]", active, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", active, depth + 1)
    active.discard(id(value))


def _not_plain(where: str, value: object) -> str:
    name = _type_name(value)
    if type(value).__module__ == "numpy":
        fix = "convert it with torch.from_numpy(x) or x.tolist() (numpy scalars: x.item())"
    elif isinstance(value, torch.Tensor):
        fix = "convert it to a plain tensor with x.as_subclass(torch.Tensor)"
    elif isinstance(value, set | frozenset):
        fix = "store it as a sorted list"
    elif isinstance(value, _SCALARS):
        builtin = next(t for t in _SCALARS if isinstance(value, t))
        fix = f"convert it to the builtin, e.g. {builtin.__name__}(x)"
    else:
        fix = "store its state_dict() or convert it to dicts, lists, numbers and strings"
    return (
        f"{where} is a {name}, which torch.load(weights_only=True) cannot read back; "
        f"checkpoints hold only tensors and plain Python types, so {fix}. Nothing was written."
    )


def _type_name(value: object) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
