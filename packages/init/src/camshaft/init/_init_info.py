"""Which initializer set each parameter last, for the init log.

``BaseModule.init_weights`` (in camshaft.model) prints, for every parameter, the
initializer that wrote it last. Initialisation code reports what it writes into the
*active* :class:`InitRecord`: initializers mark exactly the ``weight``/``bias`` tensors
they filled, and :func:`update_init_info` marks every parameter of a module (used
after a user-defined ``init_weights``).

Reporting is opt-in and cheap. A record is active only inside :func:`record_init`;
outside it, reporting is one ``ContextVar.get`` and nothing else. Inside it, a report
stores a reference and a string: no tensor is read, compared or copied (MMEngine
compares parameter means before and after each step, which costs a pass over every
weight; we know what we wrote instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

__all__ = ["InitRecord", "record_init", "update_init_info"]


class InitRecord:
    """A mapping from tensors (by identity) to the description of what last set them.

    Later marks of the same tensor replace earlier ones, so after initialisation each
    tensor maps to the initializer that won. The record holds references to the
    tensors it describes; keep it only as long as the initialisation it reports on.

    Example:
        >>> conv = nn.Conv2d(1, 1, 1)
        >>> with record_init() as record:
        ...     update_init_info(conv, "Initialized by hand")
        >>> record.describe(conv.weight)
        'Initialized by hand'
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[torch.Tensor, str]] = {}

    def mark(self, tensor: torch.Tensor, description: str) -> None:
        """Record that ``description`` is the last thing that set ``tensor``.

        Args:
            tensor: The tensor (usually an ``nn.Parameter``) that was written.
            description: One line saying what wrote it, e.g. an initializer's
                ``describe()``.
        """
        self._entries[id(tensor)] = (tensor, description)

    def describe(self, param: torch.Tensor) -> str | None:
        """What last set ``param``, or None when nothing recorded it.

        Args:
            param: The tensor to look up (by identity, not by value).

        Returns:
            The description it was last marked with, or None.
        """
        entry = self._entries.get(id(param))
        if entry is None or entry[0] is not param:
            return None
        return entry[1]

    def items(self) -> Iterator[tuple[torch.Tensor, str]]:
        """Iterate over ``(tensor, description)`` pairs in first-marked order."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, param: object) -> bool:
        entry = self._entries.get(id(param))
        return entry is not None and entry[0] is param

    def __repr__(self) -> str:
        return f"InitRecord({len(self._entries)} tensors)"


_ACTIVE: ContextVar[InitRecord | None] = ContextVar("camshaft_init_record", default=None)


@contextmanager
def record_init() -> Iterator[InitRecord]:
    """Collect, while the block runs, which initializer set each parameter.

    Nested blocks share the outermost record, so a parent's ``init_weights`` sees what
    its children's ``init_weights`` recorded. The record is per context
    (``contextvars``), so threads and asyncio tasks do not see each other's.

    Yields:
        The active record.

    Example:
        >>> from camshaft.init import initialize
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 1))
        >>> with record_init() as record:
        ...     initialize(net, dict(type="Kaiming", layer="Conv2d"))
        >>> record.describe(net[0].weight)
        'KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0'
    """
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    record = InitRecord()
    token = _ACTIVE.set(record)
    try:
        yield record
    finally:
        _ACTIVE.reset(token)


def _active_record() -> InitRecord | None:
    """The record of the innermost :func:`record_init` block, or None outside any."""
    return _ACTIVE.get()


def _record(tensor: torch.Tensor, description: str) -> None:
    """Mark ``tensor`` as set by ``description`` in the active record, if there is one."""
    record = _ACTIVE.get()
    if record is not None:
        record.mark(tensor, description)


def update_init_info(module: nn.Module, init_info: str) -> None:
    """Mark every parameter of ``module`` as last set by ``init_info``.

    Call it after initialising a module by hand (as ``BaseModule.init_weights`` does
    after a child's own ``init_weights``) so the init log attributes its parameters.
    Outside :func:`record_init` it does nothing.

    Args:
        module: The module whose parameters (its children's included) were set.
        init_info: One line saying what set them.

    Raises:
        TypeError: ``module`` is not an ``nn.Module`` or ``init_info`` not a string.

    Example:
        >>> with record_init() as record:
        ...     conv = nn.Conv2d(1, 1, 1)
        ...     update_init_info(conv, "Initialized by user-defined `init_weights` in ToyConv")
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    if not isinstance(init_info, str):
        raise TypeError(
            f"`init_info` must be a str, got {init_info!r} ({type(init_info).__name__})"
        )
    record = _ACTIVE.get()
    if record is None:
        return
    for param in module.parameters():
        record.mark(param, init_info)
