"""Argument checks shared by the schedulers: each error names the argument, value and rule."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = [
    "INF",
    "check_last_step",
    "check_param_groups",
    "check_positive_int",
    "check_real",
    "check_window",
    "epochs_to_iters",
]

INF = int(1e9)
"""The default ``end``: a step no training reaches (MMEngine's value)."""


def check_param_groups(optimizer: object) -> list[dict[str, Any]]:
    """Return ``optimizer.param_groups`` after checking it is a non-empty list of dicts.

    Raises:
        TypeError: ``optimizer`` has no such list (an ``OptimWrapperDict`` included).
    """
    groups = getattr(optimizer, "param_groups", None)
    if (
        not isinstance(groups, list)
        or not groups
        or not all(isinstance(group, dict) for group in groups)
    ):
        hint = ""
        if callable(getattr(optimizer, "items", None)):
            hint = (
                " It looks like an OptimWrapperDict: schedule each wrapper on its own, "
                "or call build_param_schedulers(optim_wrapper_dict, cfgs), which does."
            )
        raise TypeError(
            "`optimizer` must be a torch.optim.Optimizer, an OptimWrapper or an object whose "
            f"`param_groups` is a non-empty list of dicts, got {type(optimizer).__name__}." + hint
        )
    return groups


def check_window(begin: object, end: object) -> tuple[int, int]:
    """Check a scheduler window and return it as ints (``end=math.inf`` becomes INF).

    Raises:
        TypeError: ``begin`` or ``end`` is not an integer.
        ValueError: ``begin`` is negative or ``begin >= end``.
    """
    first = _as_step("begin", begin)
    last = INF if end == math.inf else _as_step("end", end)
    if first < 0:
        raise ValueError(f"`begin` must be >= 0, got begin={first}")
    if first >= last:
        raise ValueError(
            f"a scheduler's window must not be empty: `begin` must be smaller than `end`, "
            f"got begin={first}, end={last}"
        )
    return first, last


def _as_step(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int (a step index), got {type(value).__name__}: {value!r}"
        )
    return int(value)


def epochs_to_iters(value: object, epoch_length: int, name: str) -> int:
    """Convert a count of epochs (``float`` allowed) into iterations.

    The product is rounded when it is within 1e-6 of an integer (so ``0.29 * 100``
    gives 29, not 28) and floored otherwise, as MMEngine's ``int()`` does.

    Raises:
        TypeError: ``value`` is not a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number of epochs, got {type(value).__name__}: {value!r}"
        )
    iters = float(value) * epoch_length
    nearest = round(iters)
    return int(nearest) if abs(iters - nearest) < 1e-6 else math.floor(iters)


def check_real(
    value: object,
    name: str,
    owner: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> float:
    """Check that ``value`` is a real number within the given bounds and return it.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is out of bounds; the message names ``owner``, ``name`` and
            the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: `{name}` must be a number, got {type(value).__name__}: {value!r}"
        )
    number = float(value)
    bounds = []
    if above is not None:
        bounds.append(f"> {above:g}")
    if at_least is not None:
        bounds.append(f">= {at_least:g}")
    if at_most is not None:
        bounds.append(f"<= {at_most:g}")
    if (
        (above is not None and not number > above)
        or (at_least is not None and not number >= at_least)
        or (at_most is not None and not number <= at_most)
        or math.isnan(number)
    ):
        expected = " and ".join(bounds) or "a number, not NaN"
        raise ValueError(f"{owner}: `{name}` must be {expected}, got {value!r}")
    return number


def check_positive_int(value: object, name: str, owner: str) -> int:
    """Check that ``value`` is an int >= 1 and return it.

    Raises:
        TypeError: ``value`` is not an int.
        ValueError: it is below 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: `{name}` must be an int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: `{name}` must be >= 1, got {value!r}")
    return int(value)


def check_last_step(last_step: object) -> int:
    """Check ``last_step`` (an int >= -1) and return it.

    Raises:
        ValueError: it is not an int or is below -1.
    """
    if isinstance(last_step, bool) or not isinstance(last_step, numbers.Integral) or last_step < -1:
        raise ValueError(f"`last_step` must be an int >= -1, got {last_step!r}")
    return int(last_step)
