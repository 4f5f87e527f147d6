"""Batch conversion of the tensors that HistoryBuffers hold back.

A :class:`~camshaft.runner.logging.HistoryBuffer` queues tensors instead of calling
``.item()`` on each. :func:`materialize` empties the queues of several buffers at
once — in practice the buffer being read and every buffer of its MessageHub that
holds tensors — so a log line costs one host copy per device, not one sync per key:
per device, the queued tensors (stacked chunks and single 0-d tensors) are
concatenated and copied with one ``tolist()``, then each buffer writes its values, in
their original order, into its ring. Queues of floats alone are moved only when their
own buffer is read beyond them (or fills a chunk).

A few CPU tensors (at most :data:`CPU_ITEM_LIMIT` in one conversion, as a log line
every 10 iterations of a one-loss model queues) are read with ``.item()`` one by one
instead: on the CPU there is no sync to save, and ten reads cost half of a
``torch.stack`` and a ``tolist()``. The values are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

import torch

if TYPE_CHECKING:
    from camshaft.runner.logging._history_buffer import HistoryBuffer

__all__ = ["CPU_ITEM_LIMIT", "materialize"]

#: Most CPU tensors that one conversion reads one by one (see the module docstring).
CPU_ITEM_LIMIT = 16

# Where a piece's values are: (device, start, length) in that device's copy.
Piece = tuple[torch.device, int, int]
# One buffer's queue, in order: floats and pieces.
Layout = list[float | Piece]


def materialize(buffers: Iterable[HistoryBuffer], others: Iterable[HistoryBuffer] = ()) -> None:
    """Move queues into rings: one ``tolist()`` (sync) per device.

    Args:
        buffers: Buffers whose whole queue is moved.
        others: Buffers converted in the same batch only if they hold tensors (the
            siblings of a buffer being read); a queue of floats alone stays queued,
            as moving it needs no sync.
    """
    todo: list[HistoryBuffer] = []
    for group, floats_too in ((buffers, True), (others, False)):
        for buffer in group:
            if not (buffer._pending_n if floats_too else buffer._pending_tensors or buffer._chunks):
                continue
            # By identity, once each: a buffer may be listed alone and among its siblings.
            for seen in todo:
                if seen is buffer:
                    break
            else:
                todo.append(buffer)
    if not todo or _read_few_cpu_tensors(todo):
        return
    pieces: dict[torch.device, list[torch.Tensor]] = {}  # 1-d tensors to copy, by device
    sizes: dict[torch.device, int] = {}  # values in them so far

    def add(piece: torch.Tensor) -> Piece:
        device, length = piece.device, piece.shape[0]
        try:
            start = sizes[device]
            pieces[device].append(piece)
        except KeyError:
            start = 0
            pieces[device] = [piece]
        sizes[device] = start + length
        return device, start, length

    layouts: list[Piece | Layout | None] = []
    for buffer in todo:
        pending, chunks = buffer._pending, buffer._chunks
        if not buffer._pending_tensors and not chunks:
            layouts.append(None)  # floats only: nothing to convert
            continue
        if not chunks and buffer._pending_tensors == buffer._pending_n:
            # Only tensors, in practice on one device: one stack, no per-item work.
            try:
                stacked = torch.stack(pending)  # type: ignore[arg-type]
            except RuntimeError:  # tensors on several devices
                pass
            else:
                layouts.append(add(stacked))
                continue
        layouts.append(_layout(chunks, pending, buffer._pending_tensors, add))
    host: dict[torch.device, list[float]] = {}
    for device, parts in pieces.items():
        host[device] = (torch.cat(parts) if parts[1:] else parts[0]).tolist()
    for buffer, plan in zip(todo, layouts, strict=True):
        values: list[float]
        if plan is None:
            values = buffer._pending  # type: ignore[assignment]  # floats only
        elif type(plan) is tuple:  # one piece: a slice of its device's copy
            device, start, length = plan
            values = host[device][start : start + length]
        else:  # the rare mixed queue: floats and pieces
            values = []
            for entry in cast(Layout, plan):
                if isinstance(entry, float):
                    values.append(entry)
                else:
                    where, first, size = entry
                    values.extend(host[where][first : first + size])
        _write_queue(buffer, values)


def _write_queue(buffer: HistoryBuffer, values: list[float]) -> None:
    """Empty ``buffer``'s queue and write its converted ``values`` into the ring."""
    counts = buffer._pending_counts
    buffer._chunks, buffer._pending, buffer._pending_counts = [], [], None
    buffer._pending_n = buffer._pending_tensors = 0
    buffer._extend(values, counts)


def _read_few_cpu_tensors(todo: list[HistoryBuffer]) -> bool:
    """Move the queues with ``.item()`` if they hold few tensors, all on the CPU.

    Returns:
        Whether it did; if not, nothing was changed.
    """
    tensors = 0
    for buffer in todo:
        if buffer._chunks:
            return False
        tensors += buffer._pending_tensors
    if tensors > CPU_ITEM_LIMIT:
        return False
    for buffer in todo:
        if buffer._pending_tensors:
            for item in buffer._pending:
                if item.__class__ is not float and not item.is_cpu:  # type: ignore[union-attr]
                    return False
    for buffer in todo:
        pending = buffer._pending
        values = [item if item.__class__ is float else item.item() for item in pending]  # type: ignore[union-attr]
        _write_queue(buffer, values)
    return True


def _layout(
    chunks: list[torch.Tensor],
    pending: list[torch.Tensor | float],
    tensors: int,
    add: Callable[[torch.Tensor], Piece],
) -> Layout:
    """One buffer's queue as pieces to copy (``add`` registers each) and floats, in order.

    ``tensors`` is how many items of ``pending`` are tensors.
    """
    layout: Layout = [add(chunk) for chunk in chunks]
    if pending and tensors == len(pending):
        try:  # in practice on one device: one stack
            layout.append(add(torch.stack(pending)))  # type: ignore[arg-type]
            return layout
        except RuntimeError:  # tensors on several devices
            pass
    run: list[torch.Tensor] = []  # consecutive tensors on one device
    for item in pending:
        if isinstance(item, torch.Tensor) and (not run or item.device == run[0].device):
            run.append(item)
            continue
        if run:
            layout.append(add(torch.stack(run)))
            run = []
        if isinstance(item, torch.Tensor):
            run.append(item)
        else:
            layout.append(item)
    if run:
        layout.append(add(torch.stack(run)))
    return layout
