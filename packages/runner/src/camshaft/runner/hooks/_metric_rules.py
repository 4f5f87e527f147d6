"""Whether a greater or a smaller metric is better, from its name (MMEngine's rule).

Shared by :class:`CheckpointHook` (``save_best``) and :class:`EarlyStoppingHook`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GREATER_KEYS", "LESS_KEYS", "RULES", "infer_rule"]

GREATER_KEYS: tuple[str, ...] = (
    "acc", "top", "AR@", "auc", "precision", "mAP", "mDice", "mIoU", "mAcc", "aAcc",
)  # fmt: skip
"""Substrings of metric names for which greater is better."""

LESS_KEYS: tuple[str, ...] = ("loss",)
"""Substrings of metric names for which smaller is better."""

RULES = ("greater", "less")


def infer_rule(
    key: str,
    greater: Sequence[str] = GREATER_KEYS,
    less: Sequence[str] = LESS_KEYS,
    *,
    owner: str,
    argument: str = "save_best",
) -> str:
    """Return ``'greater'`` or ``'less'`` for metric ``key``.

    An exact (case-insensitive) match wins over a substring match; ``greater`` is
    tried before ``less``.

    Args:
        key: The metric name.
        greater: Names (or substrings) for which greater is better.
        less: Names (or substrings) for which smaller is better.
        owner: The hook named in the error message.
        argument: The argument that gave ``key``, for the error message.

    Raises:
        ValueError: the name matches neither list; the message asks for ``rule``.

    Example:
        >>> infer_rule('val/accuracy', owner='CheckpointHook'), infer_rule('loss', owner='X')
        ('greater', 'less')
    """
    lower = key.lower()
    greater_lower = [k.lower() for k in greater]
    less_lower = [k.lower() for k in less]
    if lower in greater_lower:
        return "greater"
    if lower in less_lower:
        return "less"
    if any(k in lower for k in greater_lower):
        return "greater"
    if any(k in lower for k in less_lower):
        return "less"
    raise ValueError(
        f"{owner}: cannot tell whether a greater or a smaller `{argument}`={key!r} is better "
        "(its name "
        f"contains none of {list(greater)} nor {list(less)}); pass rule='greater' or rule='less'"
    )
