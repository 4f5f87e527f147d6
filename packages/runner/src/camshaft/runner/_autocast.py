"""``autocast`` that also works where oneDNN cannot run bfloat16 on this CPU.

Some CPUs advertise bfloat16 instructions that the oneDNN build inside torch then
fails to use once a matmul is large enough: a RuntimeError ("could not create a
primitive") or a SIGILL. torch's own bfloat16 kernels work there, so when a one-time
probe fails, CPU autocast runs with oneDNN disabled instead of crashing mid-run.
Elsewhere it is plain ``torch.autocast``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

import torch

__all__ = ["autocast", "onednn_bfloat16_works", "onednn_off_if_broken"]


_PROBE = """
import torch
for n, k, m in ((64, 512, 256), (64, 784, 256), (128, 1024, 1024)):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.nn.functional.linear(torch.randn(n, k), torch.randn(m, k))
"""


@functools.cache
def onednn_bfloat16_works() -> bool:
    """Whether bfloat16 matmuls through oneDNN run on this CPU (probed once per process).

    The probe runs in a subprocess because a failing oneDNN kernel may kill the
    process (SIGILL) instead of raising. ``CAMSHAFT_CPU_BF16_ONEDNN=1`` or ``=0``
    skips the probe.
    """
    forced = os.environ.get("CAMSHAFT_CPU_BF16_ONEDNN")
    if forced in ("0", "1"):
        return forced == "1"
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, timeout=120, check=False
    )
    return probe.returncode == 0


@contextlib.contextmanager
def onednn_off_if_broken(device_type: str, dtype: torch.dtype) -> Iterator[None]:
    """Disable oneDNN inside the block when CPU bfloat16 needs the fallback.

    The backward pass of an autocast forward runs outside ``autocast`` but still on
    bfloat16 tensors, so it needs the same guard.
    """
    if device_type != "cpu" or dtype is not torch.bfloat16 or onednn_bfloat16_works():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about TF32 when the flags change
        flags = torch.backends.mkldnn.flags(enabled=False)
        flags.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flags.__exit__(None, None, None)


@contextlib.contextmanager
def autocast(device_type: str, dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast(device_type, dtype)``, falling back off oneDNN for CPU bfloat16.

    Args:
        device_type: ``'cpu'``, ``'cuda'``, ...
        dtype: The autocast dtype.

    Example:
        >>> with autocast('cpu', torch.bfloat16):
        ...     y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
        >>> y.dtype
        torch.bfloat16
    """
    with onednn_off_if_broken(device_type, dtype), torch.autocast(device_type, dtype=dtype):
        yield
