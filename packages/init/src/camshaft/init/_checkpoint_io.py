"""Read a checkpoint file into Python objects, safely by default.

``.safetensors`` files are read with ``safetensors.torch.load_file`` (an optional
extra, imported only here). Everything else goes through ``torch.load`` with
``weights_only=True``: a pickle that needs a class or function outside torch's
allowlist is refused with :class:`UnsafeCheckpointError`, which names what blocked
it. No unsafe fallback is ever tried on the caller's behalf; ``allow_unsafe=True``
is the explicit opt-in.

Zip-format files (what ``torch.save`` writes since PyTorch 1.6) are memory-mapped
(``mmap=True``): tensors point into the page cache instead of into a private copy,
so loading them into a model costs one copy, and assigning them to a model built on
the ``meta`` device costs none. Legacy (pre-1.6) files cannot be mapped and are
read normally.

Every failure is one of the :class:`CheckpointError` family, naming the file and
what was wrong, with the original exception chained.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from camshaft.init._errors import CheckpointError, UnsafeCheckpointError
from camshaft.init._fetch import fetch_checkpoint

__all__ = ["MapLocation", "read_checkpoint"]

MapLocation = str | torch.device | dict[str, str] | Callable[..., Any] | None
"""What ``torch.load`` accepts as ``map_location``."""

_UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)")
_NEEDS_CODE = (
    "was not an allowed global",
    "is blocked",
    "Trying to call reduce",
    "Can only build",
    "Can only create new object",
)
_QUALNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ZIP_MAGIC = b"PK\x03\x04"
_INSTALL_SAFETENSORS = "pip install 'camshaft-init[safetensors]'"


def read_checkpoint(
    filename: str | os.PathLike[str],
    map_location: MapLocation = "cpu",
    *,
    allow_unsafe: bool = False,
) -> Any:
    """Fetch and read a checkpoint, refusing pickles that would run code.

    Args:
        filename: A local path, ``file://`` URL or ``http(s)://`` URL (downloaded
            once into the cache, see :func:`fetch_checkpoint`).
        map_location: Where tensors go, as for ``torch.load``. For ``.safetensors``
            files only a device (str or ``torch.device``) is accepted.
        allow_unsafe: Unpickle with ``weights_only=False``, which can run arbitrary
            code. Only for files you trust.

    Returns:
        Whatever the file holds, usually a dict.

    Raises:
        CheckpointNotFoundError: The file does not exist.
        UnsafeCheckpointError: The pickle needs globals outside torch's allowlist and
            ``allow_unsafe`` is False.
        CheckpointError: The file is corrupt, truncated, or not a checkpoint.
        CheckpointDownloadError: Downloading a URL failed.
        ImportError: A ``.safetensors`` file and the ``safetensors`` package is missing.

    Example:
        >>> state = read_checkpoint("resnet50.pth", map_location="cpu")  # doctest: +SKIP
    """
    if not isinstance(allow_unsafe, bool):
        raise TypeError(f"`allow_unsafe` must be a bool, got {allow_unsafe!r}")
    _check_map_location(map_location)
    path = fetch_checkpoint(filename)
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path, map_location)
    return _read_torch(path, map_location, allow_unsafe)


def _check_map_location(map_location: object) -> None:
    if map_location is None or isinstance(map_location, str | torch.device | dict):
        return
    if callable(map_location):
        return
    raise TypeError(
        "`map_location` must be a device (str or torch.device), a dict of device names, a "
        f"callable or None, as for torch.load; got {type(map_location).__name__}: "
        f"{map_location!r}"
    )


def _read_safetensors(path: Path, map_location: MapLocation) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise ImportError(
            f"reading {str(path)!r} needs the `safetensors` package, which is not installed; "
            f"run: {_INSTALL_SAFETENSORS}"
        ) from exc
    if map_location is None:
        device = "cpu"
    elif isinstance(map_location, str | torch.device):
        device = str(map_location)
    else:
        raise TypeError(
            f"`map_location` for the .safetensors file {str(path)!r} must be a device "
            f"(str or torch.device), got {type(map_location).__name__}: {map_location!r}"
        )
    try:
        state: dict[str, torch.Tensor] = load_file(path, device=device)
    except MemoryError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"cannot read the safetensors checkpoint {str(path)!r}: {_reason(exc)}. The "
            "file is corrupt, truncated or not a safetensors file; download it again."
        ) from exc
    return state


def _read_torch(path: Path, map_location: MapLocation, allow_unsafe: bool) -> Any:
    head = _head(path)
    is_zip = head.startswith(_ZIP_MAGIC)
    try:
        return torch.load(
            path, map_location=map_location, weights_only=not allow_unsafe, mmap=is_zip
        )
    except MemoryError:
        raise
    except pickle.UnpicklingError as exc:
        message = _ANSI.sub("", str(exc))
        if not allow_unsafe and _needs_code(message):
            raise _unsafe_error(path, message, is_zip) from exc
        raise _corrupt_error(path, head, exc) from exc
    except Exception as exc:
        raise _corrupt_error(path, head, exc) from exc


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(16)
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint {str(path)!r}: {exc}") from exc


def _needs_code(message: str) -> bool:
    """Whether the unpickler refused code (not garbage: a corrupt pickle names no real global)."""
    if not any(marker in message for marker in _NEEDS_CODE):
        return False
    return all(_QUALNAME.fullmatch(name) for name in _UNSAFE_GLOBAL.findall(message))


def _unsafe_error(path: Path, message: str, is_zip: bool) -> UnsafeCheckpointError:
    """The refusal: what blocked the safe loader, that nothing unsafe ran, how to opt in."""
    names = list(dict.fromkeys(_UNSAFE_GLOBAL.findall(message)))
    if is_zip:
        names += [n for n in _scan_unsafe_globals(path) if n not in names]
    if names:
        blocked = f"it needs these globals, which are not allowed: {', '.join(names)}"
    else:
        blocked = f"the unpickler refused it: {_reason_text(message)}"
    allowlist = f"[{', '.join(names)}]" if names else "[...]"
    return UnsafeCheckpointError(
        f"checkpoint {str(path)!r} was not loaded: torch.load(weights_only=True) refused it "
        f"because {blocked}. Unpickling them could run arbitrary code, so no unsafe "
        "fallback was tried. If you trust this file, pass allow_unsafe=True (e.g. "
        "load_checkpoint(model, filename, allow_unsafe=True)), or allowlist the classes "
        f"with torch.serialization.add_safe_globals({allowlist}).",
        names,
    )


def _scan_unsafe_globals(path: Path) -> list[str]:
    """Every non-allowlisted global in a zip checkpoint, when torch can tell (>= 2.5)."""
    scan = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if scan is None:
        return []
    try:
        return sorted(scan(path))
    except Exception:  # a best-effort addition to the message, never the error itself
        return []


def _corrupt_error(path: Path, head: bytes, exc: BaseException) -> CheckpointError:
    size = path.stat().st_size
    if size == 0:
        what = "the file is empty (0 bytes)"
    elif not head.startswith(_ZIP_MAGIC) and not head.startswith(b"\x80"):
        what = (
            f"the file is not a torch.save checkpoint (it starts with {head[:8]!r}, neither a "
            f"zip archive nor a pickle); torch said: {_reason(exc)}"
        )
    else:
        what = f"the file is corrupt or truncated ({size} bytes); torch said: {_reason(exc)}"
    return CheckpointError(
        f"cannot read checkpoint {str(path)!r}: {what}. Download or save it again; "
        "checkpoints in other formats need converting first."
    )


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_reason_text(_ANSI.sub('', str(exc)))}"


def _reason_text(message: str) -> str:
    """The informative part of a torch error message, on one short line."""
    message = message.split("Check the documentation of torch.load", 1)[0]
    if "WeightsUnpickler error:" in message:
        message = message.split("WeightsUnpickler error:", 1)[1]
    line = " ".join(message.split())
    line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)
    return line if len(line) <= 300 else line[:297] + "..."
