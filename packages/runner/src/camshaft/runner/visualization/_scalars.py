"""Turning what a backend is given into what it writes: numbers, steps, config text.

Shared by the backends in :mod:`camshaft.runner.visualization._backends`. Tensors and
numpy values are recognised without importing torch or numpy.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

__all__ = ["check_step", "config_text", "scalars_to_numbers", "to_number", "write_atomic"]

_SCALAR_HELP = "an int, a float, or a one-element tensor/array"


def to_number(key: str, value: object) -> float | int:
    """Convert one scalar to a Python ``float`` or ``int`` (``bool`` becomes ``int``).

    Tensors and numpy values are recognised without importing torch or numpy: if
    their module was never imported, ``value`` cannot be one of their types.

    Args:
        key: The scalar's name, used in the error message.
        value: A number, a 0-d or one-element tensor or array, or a numpy scalar.

    Returns:
        The Python number.

    Raises:
        TypeError: ``value`` is not a real number or has more than one element; the
            message names ``key``, the type and, for tensors and arrays, the shape.
    """
    kind = type(value)
    if isinstance(value, float):  # numpy.float64 is a float subclass
        return value if kind is float else float(value)
    if isinstance(value, int):
        return value if kind is int else int(value)  # bool becomes int
    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    shaped = (torch is not None and isinstance(value, torch.Tensor)) or (
        numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic))
    )
    if shaped:
        shape = tuple(getattr(value, "shape", ()))
        count = 1
        for size in shape:
            count *= int(size)
        item = getattr(value, "item")() if count == 1 else None  # noqa: B009
        if isinstance(item, bool):
            return int(item)
        if isinstance(item, (int, float)):
            return item
        raise TypeError(
            f"scalar_dict[{key!r}] must be {_SCALAR_HELP}, got {kind.__name__} of shape "
            f"{shape} and dtype {getattr(value, 'dtype', '?')}"
        )
    raise TypeError(f"scalar_dict[{key!r}] must be {_SCALAR_HELP}, got {kind.__name__}: {value!r}")


def scalars_to_numbers(scalar_dict: Mapping[str, Any]) -> dict[str, float | int]:
    """Validate ``scalar_dict`` and return a new dict of Python numbers (same order).

    Raises:
        TypeError: ``scalar_dict`` is not a mapping, a key is not a str, or a value is
            not a scalar (see :func:`to_number`).
    """
    # Exact-type checks first: a log line passes a dict of str -> float, and each
    # isinstance (three calls against the Mapping ABC) would run for every item.
    if type(scalar_dict) is not dict and not isinstance(scalar_dict, Mapping):
        raise TypeError(
            f"`scalar_dict` must be a mapping of name -> number, "
            f"got {type(scalar_dict).__name__}: {scalar_dict!r}"
        )
    numbers: dict[str, float | int] = {}
    for key, value in scalar_dict.items():
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"scalar_dict keys must be str, got {type(key).__name__}: {key!r}")
        kind = type(value)
        numbers[key] = value if kind is float or kind is int else to_number(key, value)
    return numbers


def check_step(step: object) -> int:
    """Return ``step`` if it is an int (not a bool); raise TypeError naming it otherwise."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"`step` must be an int, got {type(step).__name__}: {step!r}")
    return step


def config_text(config: object) -> str:
    """``config.pretty_text`` when it is a str (a camshaft ``Config``), else ``str(config)``."""
    text = getattr(config, "pretty_text", None)
    return text if isinstance(text, str) else str(config)


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
