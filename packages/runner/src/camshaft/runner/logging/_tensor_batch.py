"""Batch conversion of the tensors that HistoryBuffers hold back.

A :class:`~camshaft.runner.logging.HistoryBuffer` queues tensors instead of calling
``.item()`` on each. :func:`materialize` empties the queues of several buffers at
once — in practice every buffer of one MessageHub — so a log line costs one host copy
per device, not one sync per key: per device, the queued tensors (stacked chunks and
single 0-d tensors) are concatenated and copied with one ``tolist()``, then each
buffer writes its values, in their original order, into its ring.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from camshaft.runner.logging._history_buffer import HistoryBuffer

__all__ = ["materialize"]

# One buffer's queue, in order: a float, or (device, start, length) in that device's copy.
Layout = list[float | tuple[torch.device, int, int]]


def materialize(buffers: Iterable[HistoryBuffer]) -> None:
    """Move the queues of ``buffers`` into their rings: one ``tolist()`` (sync) per device."""
    # By identity, once each: a buffer may be listed both alone and among its siblings.
    todo = list({id(buffer): buffer for buffer in buffers if buffer._pending_n}.values())
    if not todo:
        return
    pieces: dict[torch.device, list[torch.Tensor]] = {}
    offsets: dict[torch.device, int] = {}

    def add(piece: torch.Tensor) -> tuple[torch.device, int, int]:
        device, length = piece.device, piece.numel()
        start = offsets.get(device, 0)
        pieces.setdefault(device, []).append(piece)
        offsets[device] = start + length
        return device, start, length

    layouts: list[Layout | None] = []
    for buffer in todo:
        if not buffer._pending_tensors and not buffer._chunks:
            layouts.append(None)  # floats only: nothing to convert
            continue
        layout: Layout = [add(chunk) for chunk in buffer._chunks]
        pending = buffer._pending
        if pending and buffer._pending_tensors == len(pending):
            # Only tensors, in practice on one device: one stack, no per-item work.
            try:
                stacked = torch.stack(pending)  # type: ignore[arg-type]
            except RuntimeError:  # tensors on several devices
                pass
            else:
                layout.append(add(stacked))
                layouts.append(layout)
                continue
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
        layouts.append(layout)
    host = {
        device: (torch.cat(parts) if len(parts) > 1 else parts[0]).tolist()
        for device, parts in pieces.items()
    }
    for buffer, plan in zip(todo, layouts, strict=True):
        values: list[float]
        if plan is None:
            values = buffer._pending  # type: ignore[assignment]  # floats only
        else:
            values = []
            for entry in plan:
                if isinstance(entry, float):
                    values.append(entry)
                else:
                    device, start, length = entry
                    values.extend(host[device][start : start + length])
        counts = buffer._pending_counts
        buffer._chunks, buffer._pending, buffer._pending_counts = [], [], None
        buffer._pending_n = buffer._pending_tensors = 0
        buffer._extend(values, counts)
