"""Hook priorities: MMEngine's named levels and the one function that reads them all.

A priority is a number from 0 (runs first) to 100 (runs last). Configs and hook classes
may give it as that number, as a level name in any case (``'very_high'``), or as a
:class:`Priority` member; :func:`get_priority` turns each form into the number the
dispatcher sorts by, and rejects anything else with an error naming the value.
"""

from __future__ import annotations

import enum

__all__ = ["Priority", "get_priority"]

_MIN_PRIORITY = 0
_MAX_PRIORITY = 100


class Priority(enum.IntEnum):
    """Named hook priority levels; a lower value runs earlier.

    The names and values are MMEngine's, so configs that say ``priority='VERY_LOW'``
    or ``priority=90`` keep their meaning.

    Example:
        >>> Priority.HIGH < Priority.NORMAL
        True
        >>> Priority(50).name
        'NORMAL'
    """

    HIGHEST = 0
    VERY_HIGH = 10
    HIGH = 30
    ABOVE_NORMAL = 40
    NORMAL = 50
    BELOW_NORMAL = 60
    LOW = 70
    VERY_LOW = 90
    LOWEST = 100


_ACCEPTED = (
    f"an int from {_MIN_PRIORITY} to {_MAX_PRIORITY}, a Priority member, or one of the "
    f"names {', '.join(repr(p.name) for p in Priority)} (any case)"
)


def get_priority(priority: int | str | Priority) -> int:
    """Return the numeric value of a hook priority.

    Args:
        priority: An int from 0 to 100, a :class:`Priority` member, or the name of a
            member in any case (``'NORMAL'``, ``'below_normal'``).

    Returns:
        The priority as a plain int; lower runs earlier.

    Raises:
        TypeError: ``priority`` is neither an int, a str nor a :class:`Priority`
            (a bool is refused too, as it is almost always a mistake).
        ValueError: ``priority`` is an int outside 0-100 or an unknown name.

    Example:
        >>> get_priority('very_high'), get_priority(Priority.LOW), get_priority(45)
        (10, 70, 45)
    """
    if isinstance(priority, Priority):
        return int(priority)
    if isinstance(priority, bool):
        raise TypeError(f"priority must be {_ACCEPTED}; got the bool {priority!r}")
    if isinstance(priority, int):
        if not _MIN_PRIORITY <= priority <= _MAX_PRIORITY:
            raise ValueError(f"priority must be {_ACCEPTED}; got {priority!r}, out of range")
        return priority
    if isinstance(priority, str):
        member = Priority.__members__.get(priority.upper())
        if member is None:
            raise ValueError(f"priority must be {_ACCEPTED}; got the unknown name {priority!r}")
        return int(member)
    raise TypeError(f"priority must be {_ACCEPTED}; got {type(priority).__name__} {priority!r}")


def priority_label(value: int) -> str:
    """Return the level name of ``value`` when it has one, else the number as text."""
    name = _LABELS.get(value)
    return str(value) if name is None else name


_LABELS = {int(member): member.name for member in Priority}
