"""Shared helpers for the benchmarks in bench/: timing, interleaving, workers, JSON.

The method (STYLE.md): run camshaft and its baseline interleaved in one process tree
(A B A B ...), drop warm-up rounds, report medians with min/max and the ratio per
pair, record versions and the machine, and print ONE JSON line. Memory is the peak
RSS of a fresh process per measurement, so each memory measurement runs as a worker
subprocess (``python bench/<script>.py --worker <kind> ...``) that prints one JSON
line of its own, which :func:`run_worker` parses.

Usage in a script::

    samples = interleave({"raw": run_raw, "camshaft": run_ours}, repeats=5, warmup=1)
    stats = {name: summarize([s["time_s"] for s in runs]) for name, runs in samples.items()}
    emit({"bench": "x", "results": stats, "ratios": {"time": ratio(stats["camshaft"],
          stats["raw"])}, "machine": machine_info(), "versions": package_versions("torch")})

Inside a worker, call :func:`worker_report` last.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, TypeVar

T = TypeVar("T")

MIB = 1 << 20


# --- timing -----------------------------------------------------------------------


def timed(fn: Callable[[], T], *, sync_cuda: bool = False) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the seconds it took.

    With ``sync_cuda`` the device is synchronised before starting and before stopping
    the clock, so queued kernels are counted inside the timed region.
    """
    sync = _cuda_sync if sync_cuda else None
    if sync is not None:
        sync()
    start = time.perf_counter()
    result = fn()
    if sync is not None:
        sync()
    return result, time.perf_counter() - start


def _cuda_sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleave(
    runners: Mapping[str, Callable[[], T]], *, repeats: int, warmup: int = 1, rotate: bool = False
) -> dict[str, list[T]]:
    """Call every runner once per round, in order (A B A B ...); drop the warm-up rounds.

    With ``rotate``, round ``r`` starts at the ``r``-th runner (A B C, B C A, C A B, ...),
    so that no runner always follows the same one: what a run leaves behind (a
    background thread finishing, a cold cache, garbage to collect) then falls on each
    runner in turn instead of always on the one after it.

    Returns:
        For each runner name, the results of the ``repeats`` measured rounds.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats=} {warmup=}")
    samples: dict[str, list[T]] = {name: [] for name in runners}
    order = list(runners)
    for round_index in range(warmup + repeats):
        shift = round_index % len(order) if rotate and order else 0
        for name in order[shift:] + order[:shift]:
            result = runners[name]()
            if round_index >= warmup:
                samples[name].append(result)
    return samples


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and count of ``values``."""
    if not values:
        raise ValueError("summarize() needs at least one value")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio(numerator: Mapping[str, float], denominator: Mapping[str, float]) -> float:
    """``numerator`` median over ``denominator`` median (below 1: numerator is smaller)."""
    return numerator["median"] / denominator["median"]


# --- memory and workers ---------------------------------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # KiB on Linux


def current_rss_bytes() -> int:
    """This process's resident set size now (Linux; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def worker_report(**fields: Any) -> None:
    """Print a worker's one JSON line, with its ``peak_rss_bytes`` added."""
    fields.setdefault("peak_rss_bytes", peak_rss_bytes())
    print(json.dumps(fields, sort_keys=True), flush=True)


def run_worker(argv: Sequence[str], *, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``python <argv>`` in a fresh process and return the JSON of its last stdout line.

    Raises:
        RuntimeError: The worker failed or printed no JSON line (its stderr is included).
    """
    proc = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker {' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- context and output -----------------------------------------------------------------


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of ``names`` (None when not installed), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict[str, Any]:
    """The machine a result was measured on: OS, CPU, cores, memory, GPU if any."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages / (1 << 30), 1)


def emit(result: Mapping[str, Any]) -> None:
    """Print ``result`` as the benchmark's one JSON line."""
    print(json.dumps(result, sort_keys=True, default=str), flush=True)


def upper_bound_targets(
    ratios: Mapping[str, float], bounds: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """``{name: {'max': bound, 'met': ratio <= bound}}`` for each bounded ratio."""
    return {name: {"max": bound, "met": ratios[name] <= bound} for name, bound in bounds.items()}
