"""Give back the memory-mapped pages of checkpoint tensors once they have been copied.

A memory-mapped checkpoint costs no private copy, but every page that is read while
copying into an eagerly built model stays mapped, and counts in the process's
resident memory, until the checkpoint is dropped. Loading a 1 GB checkpoint into a
1 GB model would then peak at 2 GB, as a plain ``torch.load`` does. After copying, we
tell the kernel (``madvise(MADV_DONTNEED)``) that those pages are no longer needed, so
the peak is the model plus one tensor.

Why this is safe: the pages belong to a *private file mapping* that nothing has
written to, so after ``MADV_DONTNEED`` a later read of the same tensor (the caller
may still use the returned checkpoint) faults the identical bytes back in from the
file. We only ever advise whole pages that lie inside a mapping of the checkpoint
file itself, as listed in ``/proc/self/maps``; anonymous memory (where the advice
would zero the data) is never touched. Pages are released right after their tensor
is copied, before anything could write to them; a tensor that is later *assigned* to
a ``meta`` parameter (it may share storage with a copied one) faults back in clean.

Linux only; elsewhere, or if anything is unexpected, this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

__all__ = ["page_releaser"]

_MADV_DONTNEED = 4  # the same value on every Linux architecture


def page_releaser(path: Path) -> Callable[[Iterable[torch.Tensor]], int] | None:
    """A function that drops the resident pages of tensors memory-mapped from ``path``.

    The file's address ranges are looked up once, on the first call (the mapping must
    exist by then), so each later call costs only the ``madvise``; a load that never
    copies (a ``meta`` model) never pays for the lookup.

    Args:
        path: The checkpoint file the tensors were memory-mapped from.

    Returns:
        None off Linux or without ``madvise``; else a function taking the tensors
        whose data has just been copied elsewhere and returning how many bytes it
        advised away (0 when ``path`` is not mapped, e.g. a legacy-format file).
    """
    if not sys.platform.startswith("linux"):
        return None
    madvise = _madvise()
    if madvise is None:
        return None
    page = mmap.PAGESIZE
    done: set[int] = set()
    found: list[list[tuple[int, int]]] = []  # the ranges, once looked up

    def release(sources: Iterable[torch.Tensor]) -> int:
        if not found:
            found.append(_file_mappings(path))
        ranges = found[0]
        if not ranges:
            return 0
        released = 0
        for tensor in sources:
            if tensor.device.type != "cpu" or tensor.is_meta:
                continue
            storage = tensor.untyped_storage()
            start = storage.data_ptr()
            if start in done:
                continue
            done.add(start)
            end = start + storage.nbytes()
            if not any(low <= start and end <= high for low, high in ranges):
                continue
            first = -(-start // page) * page
            last = end // page * page
            if last > first and madvise(first, last - first, _MADV_DONTNEED) == 0:
                released += last - first
        return released

    return release


@functools.lru_cache(maxsize=1)
def _madvise() -> Callable[[int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    madvise: Callable[[int, int, int], int] = function
    return madvise


def _file_mappings(path: Path) -> list[tuple[int, int]]:
    """Address ranges where ``path`` is mapped into this process."""
    ranges: list[tuple[int, int]] = []
    try:
        target = str(path.resolve())
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].rstrip("\n") == target:
                    start, stop = fields[0].split("-")
                    ranges.append((int(start, 16), int(stop, 16)))
    except (OSError, ValueError):
        return []
    merged: list[tuple[int, int]] = []  # the kernel may list one mapping in pieces
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged
