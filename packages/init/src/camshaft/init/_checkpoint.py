"""``load_checkpoint``: fetch, read, find the state dict, rename its keys, load it.

A checkpoint is accepted in the shapes people save it in: a raw state dict, or a
dict holding one under ``'state_dict'`` (MMEngine, Lightning) or ``'model'``
(torchvision references, DeiT). Keys are then renamed by ``revise_keys``, regex
substitutions applied in order (by default the ``module.`` prefix that
``DistributedDataParallel`` adds is stripped). torch's ``_metadata`` (per-module
versions that ``_load_from_state_dict`` reads) is carried along and renamed the same
way. Two keys renamed onto one is an error rather than a silent overwrite.

While copying into an eagerly built model, the memory-mapped pages of each module's
tensors are handed back to the kernel as soon as they are copied
(:mod:`._page_release`), so the load peaks at the model plus about one module's
weights rather than the model plus the whole checkpoint.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from camshaft.init._checkpoint_io import MapLocation, read_checkpoint
from camshaft.init._errors import CheckpointError
from camshaft.init._fetch import fetch_checkpoint
from camshaft.init._page_release import page_releaser
from camshaft.init._state_dict import IncompatibleKeys, _load_state_dict

__all__ = ["load_checkpoint"]

RevisePairs = Sequence[tuple[str | re.Pattern[str], str]]

_DEFAULT_REVISE_KEYS: tuple[tuple[str, str], ...] = ((r"^module\.", ""),)


def load_checkpoint(
    model: nn.Module,
    filename: str | os.PathLike[str],
    map_location: MapLocation = "cpu",
    strict: bool = False,
    revise_keys: RevisePairs = _DEFAULT_REVISE_KEYS,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None = None,
    *,
    allow_unsafe: bool = False,
) -> dict[str, Any]:
    """Load the weights of a checkpoint file or URL into ``model``.

    Args:
        model: The module to load into.
        filename: A local path, ``file://`` URL or ``http(s)://`` URL (cached).
        map_location: Where tensors are loaded, as for ``torch.load``.
        strict: Raise (loading nothing) instead of warning when keys or shapes
            differ.
        revise_keys: ``(pattern, replacement)`` pairs applied with ``re.sub`` to every
            key, in order. The default strips DDP's ``module.`` prefix.
        logger: Where the mismatch report goes; see :func:`load_state_dict`.
        allow_unsafe: Unpickle with ``weights_only=False`` (runs code from the file).
            Only for files you trust.

    Returns:
        The whole checkpoint as read (the ``meta``/``optimizer`` entries included).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A ``revise_keys`` pattern is not a valid regex.
        CheckpointNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file needs unsafe unpickling (see ``allow_unsafe``).
        CheckpointDownloadError: Downloading the URL failed.
        CheckpointError: The file is not a readable checkpoint, or ``strict`` and it
            does not match the model.

    Example:
        >>> model = nn.Linear(4, 2)
        >>> ckpt = load_checkpoint(model, "work_dirs/epoch_10.pth")  # doctest: +SKIP
        >>> ckpt["meta"]["epoch"]  # doctest: +SKIP
        10
    """
    checkpoint, _ = _load_checkpoint(
        model,
        filename,
        map_location,
        strict,
        revise_keys,
        logger,
        allow_unsafe=allow_unsafe,
        stacklevel=3,
    )
    return checkpoint


def _load_checkpoint(
    model: nn.Module,
    filename: str | os.PathLike[str],
    map_location: MapLocation,
    strict: bool,
    revise_keys: RevisePairs | None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None,
    *,
    allow_unsafe: bool,
    prefix: str | None = None,
    stacklevel: int = 3,
) -> tuple[dict[str, Any], IncompatibleKeys]:
    """:func:`load_checkpoint`, also returning what was loaded; ``prefix`` selects a part.

    ``stacklevel`` is the user's depth for a mismatch warning, counted from here.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}: {model!r}")
    if not isinstance(filename, str | os.PathLike):
        raise TypeError(
            "`filename` must be a str or os.PathLike (a path or URL), got "
            f"{type(filename).__name__}: {filename!r}"
        )
    if not isinstance(strict, bool):
        raise TypeError(f"`strict` must be a bool, got {strict!r}")
    rules = _compile_revise_keys(revise_keys)
    source = os.fspath(filename)
    local = fetch_checkpoint(filename)
    checkpoint = read_checkpoint(local, map_location, allow_unsafe=allow_unsafe)
    state_dict = _state_dict_of(checkpoint, source)
    if prefix is not None:
        state_dict = _select_prefix(state_dict, prefix, source)
    for pattern, replacement in rules:
        state_dict = _revise(state_dict, pattern, replacement, source)
    result = _load_state_dict(
        model,
        state_dict,
        strict,
        logger,
        source=source,
        stacklevel=stacklevel + 1,
        on_copied=page_releaser(local),
    )
    return checkpoint, result


def _compile_revise_keys(revise_keys: object) -> list[tuple[re.Pattern[str], str]]:
    """Validate ``revise_keys`` and compile its patterns."""
    if revise_keys is None:
        return []
    if isinstance(revise_keys, str | bytes) or not isinstance(revise_keys, Sequence):
        raise TypeError(
            "`revise_keys` must be a list of (pattern, replacement) pairs, got "
            f"{type(revise_keys).__name__}: {revise_keys!r}"
        )
    if len(revise_keys) == 2 and all(isinstance(item, str) for item in revise_keys):
        raise TypeError(
            f"`revise_keys` must be a list of (pattern, replacement) pairs, got one pair "
            f"{tuple(revise_keys)!r}; wrap it in a list: revise_keys=[{tuple(revise_keys)!r}]"
        )
    rules: list[tuple[re.Pattern[str], str]] = []
    for index, item in enumerate(revise_keys):
        if (
            isinstance(item, str)
            or not isinstance(item, Sequence)
            or len(item) != 2
            or not isinstance(item[0], str | re.Pattern)
            or not isinstance(item[1], str)
        ):
            raise TypeError(
                f"`revise_keys[{index}]` must be a (pattern, replacement) pair of strings, "
                f"got {item!r}; e.g. revise_keys=[(r'^module\\.', '')]"
            )
        try:
            rules.append((re.compile(item[0]), item[1]))
        except re.error as exc:
            raise ValueError(
                f"`revise_keys[{index}]` has the pattern {item[0]!r}, which is not a valid "
                f"regular expression: {exc}"
            ) from exc
    return rules


def _state_dict_of(checkpoint: object, source: str) -> Mapping[str, Any]:
    """The state dict inside ``checkpoint``: itself, or its 'state_dict'/'model' entry."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"checkpoint {source!r} holds a {type(checkpoint).__name__}, expected a dict: a "
            "state dict, or a dict with a 'state_dict' or 'model' entry. If it is a whole "
            "pickled model, load it with torch.load and save its state_dict() instead."
        )
    for key in ("state_dict", "model"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    for key in checkpoint:
        if not isinstance(key, str):
            raise CheckpointError(
                f"checkpoint {source!r} has the key {key!r} ({type(key).__name__}); a state "
                "dict's keys are parameter names (str). This file is not a state dict."
            )
    return checkpoint


def _revise(
    state_dict: Mapping[str, Any], pattern: re.Pattern[str], replacement: str, source: str
) -> OrderedDict[str, Any]:
    """Rename every key (and ``_metadata`` entry) with one ``re.sub`` rule."""
    revised: OrderedDict[str, Any] = OrderedDict()
    origin: dict[str, str] = {}
    for key, value in state_dict.items():
        new_key = pattern.sub(replacement, key)
        if new_key in revised:
            raise CheckpointError(
                f"revise_keys rule ({pattern.pattern!r}, {replacement!r}) renames both "
                f"{origin[new_key]!r} and {key!r} in checkpoint {source!r} to {new_key!r}; "
                "make the rule more specific so no two keys collide."
            )
        revised[new_key] = value
        origin[new_key] = key
    metadata = getattr(state_dict, "_metadata", None)
    if isinstance(metadata, Mapping):
        revised._metadata = OrderedDict(  # type: ignore[attr-defined]
            (_revise_module_path(pattern, replacement, path), info)
            for path, info in metadata.items()
        )
    return revised


def _revise_module_path(pattern: re.Pattern[str], replacement: str, path: str) -> str:
    """Rename a ``_metadata`` module path (``'module.conv'``) as its keys are renamed."""
    renamed = pattern.sub(replacement, f"{path}." if path else path)
    return renamed[:-1] if renamed.endswith(".") else renamed


def _select_prefix(
    state_dict: Mapping[str, Any], prefix: str, source: str
) -> OrderedDict[str, Any]:
    """The entries under ``prefix.``, with the prefix stripped."""
    head = f"{prefix}."
    selected: OrderedDict[str, Any] = OrderedDict(
        (key[len(head) :], value) for key, value in state_dict.items() if key.startswith(head)
    )
    if not selected:
        sample = list(state_dict)[:5]
        raise CheckpointError(
            f"checkpoint {source!r} has no key under prefix={prefix!r} (no key starts with "
            f"{head!r}); its keys begin {sample} ({len(state_dict)} in all). Pick a prefix "
            "from those, or prefix=None to load the whole checkpoint."
        )
    metadata = getattr(state_dict, "_metadata", None)
    if isinstance(metadata, Mapping):
        selected._metadata = OrderedDict(  # type: ignore[attr-defined]
            ("" if path == prefix else path[len(head) :], info)
            for path, info in metadata.items()
            if path == prefix or path.startswith(head)
        )
    return selected
