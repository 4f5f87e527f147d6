"""Fault in freshly allocated CPU memory on a second thread while ``init_weights`` fills it.

Materialising a large meta model allocates gigabytes at once. The kernel maps each page
only when it is first written, so the initializers (single-threaded random number
generation) pay for every page fault on the way, which is a fifth to a third of their
time. :class:`PageWarmer` asks the kernel to map those pages ahead of them, on another
core, with ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14+).

Why that call and not writing zeros from a thread: populating maps pages without
changing their contents, so it cannot race with an initializer that writes the same
tensor at the same moment; a page that is already mapped is left as it is. The order of
writes inside ``init_weights`` (user code included) therefore does not matter.

Anywhere the call is unavailable (not Linux, an older kernel, one CPU, small models,
CUDA) the warmer does nothing and initialisation runs exactly as without it.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Sequence

import torch

__all__ = ["MIN_WARM_BYTES", "PageWarmer"]

MIN_WARM_BYTES = 64 * 1024 * 1024
"""Below this much fresh storage a thread costs more than the faults it saves."""

_MADV_POPULATE_WRITE = 23  # linux/mman.h; an older kernel answers EINVAL


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _madvise_populate() -> Callable[[int, int], bool] | None:
    """``populate(address, length) -> ok`` through libc, or None where unavailable."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only needed on this path; keeps `import camshaft.model` lean

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int

    def populate(address: int, length: int) -> bool:
        return madvise(address, length, _MADV_POPULATE_WRITE) == 0

    return populate


class PageWarmer:
    """Maps the pages of ``tensors`` on a background thread, in the order given.

    Use as a context manager around the code that writes the tensors; leaving it stops
    the thread (it quits between tensors) and joins it.

    Args:
        tensors: Freshly allocated tensors, in the order they will probably be written.
        device: Where they live; only ``cpu`` is warmed.
        min_bytes: Do nothing when the tensors hold fewer bytes than this (default
            :data:`MIN_WARM_BYTES`).

    Example:
        >>> with PageWarmer([torch.empty(10)], torch.device("cpu")) as warmer:
        ...     pass
        >>> warmer.started  # 40 bytes are not worth a thread
        False
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        device: torch.device,
        min_bytes: int | None = None,
    ) -> None:
        self._tensors = [t for t in tensors if t.device.type == "cpu" and t.numel() > 0]
        self._device = device
        self._min_bytes = MIN_WARM_BYTES if min_bytes is None else min_bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warmed_bytes = 0
        """Bytes the kernel mapped on request (for tests and diagnostics)."""
        self.failed = False
        """True when the kernel refused the request (the thread then stops)."""

    @property
    def started(self) -> bool:
        """Whether a warming thread was started."""
        return self._thread is not None

    def __enter__(self) -> PageWarmer:
        total = sum(t.numel() * t.element_size() for t in self._tensors)
        worth_it = total > 0 and total >= self._min_bytes
        if self._device.type != "cpu" or not worth_it or _cpu_count() < 2:
            return self
        populate = _madvise_populate()
        if populate is None:
            return self
        self._thread = threading.Thread(
            target=self._warm, args=(populate,), name="camshaft-page-warmer", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._tensors = []

    def _warm(self, populate: Callable[[int, int], bool]) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        for tensor in self._tensors:
            if self._stop.is_set():
                return
            address = tensor.data_ptr()
            start = -(-address // page) * page  # madvise wants page-aligned ranges
            end = (address + tensor.numel() * tensor.element_size()) // page * page
            if end <= start:
                continue
            if not populate(start, end - start):
                self.failed = True
                return
            self.warmed_bytes += end - start
