"""Benchmark: the cost of ``MessageHub.update_scalar`` as training goes on, and its memory.

Each measurement runs in a fresh process (peak RSS is per process) that calls one
update function ``n`` times, n in 1k, 100k and 1M, on one key. Variants, interleaved
round by round (A B C A B C ...):

* ``camshaft_float``  ``hub.update_scalar('train/lr', value)`` with Python floats
* ``raw_float``       ``history.append(value)`` into a list (the hand-written baseline)
* ``camshaft_tensor`` ``hub.update_scalar('train/loss', loss)`` with CPU scalar tensors
* ``raw_tensor``      ``history.append(loss.item())`` (the hand-written baseline)
* ``np_append``       ``values = np.append(values, v); counts = np.append(counts, 1)``,
  the algorithm of MMEngine's ``HistoryBuffer.update`` (MMEngine itself is not
  installed here); only up to ``--np-append-max`` updates, since it is quadratic

Reported per variant and size: ``per_update_us``, the mean cost over all ``n``
updates; ``amortized_us``, the same plus one read afterwards (``mean(10)`` and
``current()``), divided by ``n`` — for camshaft's tensors the read is when queued
values are converted, so this is the full cost of an update; ``marginal_us``, the
cost of the last ``min(n, 8192)`` updates, which grows if appending gets slower with
the history (MMEngine's ``np.append``); ``read_ms``; peak RSS and its growth during
the loop. Values are cycled from a pool of 4096 prepared floats or tensors, so the
loop creates nothing else. The garbage collector stays on, as in training.

Targets: camshaft's amortized cost at 1M within 1.5x of its cost at 1k (flat), and
its RSS growth at 1M under 32 MiB per key.

Run: ``python bench/message_hub.py [--repeats 5] [--sizes 1000 100000 1000000]``;
prints one JSON line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    MIB,
    current_rss_bytes,
    emit,
    interleave,
    machine_info,
    package_versions,
    run_worker,
    summarize,
    worker_report,
)

VARIANTS = ("camshaft_float", "raw_float", "camshaft_tensor", "raw_tensor", "np_append")
POOL = 4096
TAIL = 8192
TARGETS = {"flat_amortized_1M_vs_1k": 1.5, "rss_growth_mib_1M": 32.0}


def _updater(kind: str) -> tuple[Callable[[Any], None], Callable[[], tuple[float, float]]]:
    """The update function of ``kind`` and a reader returning (mean of last 10, current)."""
    if kind.startswith("camshaft"):
        from camshaft.runner.logging import MessageHub

        hub = MessageHub("bench")
        key = "train/lr" if kind == "camshaft_float" else "train/loss"

        def update(value: Any) -> None:
            hub.update_scalar(key, value)

        def read() -> tuple[float, float]:
            buffer = hub.get_scalar(key)
            return buffer.mean(10), buffer.current()

        return update, read
    if kind in ("raw_float", "raw_tensor"):
        history: list[float] = []
        append = history.append
        if kind == "raw_float":
            update = append  # type: ignore[assignment]
        else:

            def update(value: Any) -> None:
                append(value.item())

        return update, lambda: (sum(history[-10:]) / 10, history[-1])
    if kind == "np_append":
        import numpy as np

        state = {"values": np.array([]), "counts": np.array([])}

        def update(value: Any) -> None:
            state["values"] = np.append(state["values"], value)
            state["counts"] = np.append(state["counts"], 1)

        def read() -> tuple[float, float]:
            values, counts = state["values"], state["counts"]
            return float(values[-10:].sum() / counts[-10:].sum()), float(values[-1])

        return update, read
    raise SystemExit(f"unknown variant {kind!r}; expected one of {VARIANTS}")


def _worker(kind: str, n: int) -> None:
    import torch

    torch.set_num_threads(1)
    floats = [i / POOL for i in range(POOL)]
    values: list[Any] = [torch.tensor(v) for v in floats] if "tensor" in kind else floats
    update, read = _updater(kind)
    tail = min(TAIL, n)
    rss_before = current_rss_bytes()
    start = time.perf_counter()
    for i in range(n - tail):
        update(values[i % POOL])
    middle = time.perf_counter()
    for i in range(n - tail, n):
        update(values[i % POOL])
    end = time.perf_counter()
    (mean10, current), read_s = _timed(read)
    worker_report(
        per_update_us=(end - start) / n * 1e6,
        amortized_us=(end - start + read_s) / n * 1e6,
        marginal_us=(end - middle) / tail * 1e6,
        read_ms=read_s * 1e3,
        rss_before_bytes=rss_before,
        mean10=mean10,
        current=current,
    )


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds per variant")
    parser.add_argument("--warmup", type=int, default=1, help="rounds dropped first")
    parser.add_argument("--np-append-max", type=int, default=100_000)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.n)
        return

    script = str(Path(__file__).resolve())

    def runner(kind: str, n: int) -> Callable[[], dict[str, Any]]:
        return lambda: run_worker([script, "--worker", kind, "--n", str(n)])

    runners = {
        f"{kind}@{n}": runner(kind, n)
        for n in args.sizes
        for kind in VARIANTS
        if kind != "np_append" or n <= args.np_append_max
    }
    samples = interleave(runners, repeats=args.repeats, warmup=args.warmup)

    results: dict[str, dict[str, Any]] = {}
    for name, runs in samples.items():
        kind, n = name.split("@")
        checks = {(round(r["mean10"], 9), round(r["current"], 9)) for r in runs}
        if len(checks) != 1:
            raise SystemExit(f"{name} read different values across runs: {checks}")
        growth = [(r["peak_rss_bytes"] - r["rss_before_bytes"]) / MIB for r in runs]
        results.setdefault(kind, {})[n] = {
            "per_update_us": summarize([r["per_update_us"] for r in runs]),
            "amortized_us": summarize([r["amortized_us"] for r in runs]),
            "marginal_us": summarize([r["marginal_us"] for r in runs]),
            "read_ms": summarize([r["read_ms"] for r in runs]),
            "peak_rss_mib": summarize([r["peak_rss_bytes"] / MIB for r in runs]),
            "rss_growth_mib": summarize(growth),
            "read": checks.pop(),
        }
    for n in map(str, args.sizes):  # the same values must come back from every variant
        reads = {kind: by_n[n]["read"] for kind, by_n in results.items() if n in by_n}
        if len(set(reads.values())) != 1:
            raise SystemExit(f"variants disagree at n={n}: {reads}")

    def median(kind: str, n: int, field: str) -> float:
        return float(results[kind][str(n)][field]["median"])

    small, large = str(min(args.sizes)), str(max(args.sizes))
    ratios: dict[str, float] = {}
    for n in map(str, args.sizes):
        for kind in ("float", "tensor"):
            ratios[f"camshaft_vs_raw_{kind}_per_update@{n}"] = median(
                f"camshaft_{kind}", int(n), "per_update_us"
            ) / median(f"raw_{kind}", int(n), "per_update_us")
    for kind in ("camshaft_float", "camshaft_tensor", "raw_float", "raw_tensor"):
        for field in ("amortized_us", "marginal_us"):
            ratios[f"{kind}_{field[:-3]}_{large}_vs_{small}"] = median(
                kind, int(large), field
            ) / median(kind, int(small), field)
    if "np_append" in results and len(results["np_append"]) > 1:
        sizes = sorted(map(int, results["np_append"]))
        ratios[f"np_append_marginal_{sizes[-1]}_vs_{sizes[0]}"] = median(
            "np_append", sizes[-1], "marginal_us"
        ) / median("np_append", sizes[0], "marginal_us")
    flat = max(
        ratios[f"camshaft_float_amortized_{large}_vs_{small}"],
        ratios[f"camshaft_tensor_amortized_{large}_vs_{small}"],
    )
    growth = max(
        median("camshaft_float", int(large), "rss_growth_mib"),
        median("camshaft_tensor", int(large), "rss_growth_mib"),
    )
    import torch  # noqa: F401  (so machine_info records torch's thread count)

    emit(
        {
            "bench": "message_hub",
            "config": {
                "sizes": args.sizes,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "np_append_max": args.np_append_max,
                "pool": POOL,
                "tail": TAIL,
            },
            "results": {
                kind: {n: {k: v for k, v in row.items() if k != "read"} for n, row in by_n.items()}
                for kind, by_n in results.items()
            },
            "ratios": ratios,
            "targets": {
                "flat_amortized_1M_vs_1k": {
                    "max": TARGETS["flat_amortized_1M_vs_1k"],
                    "value": flat,
                    "met": flat <= TARGETS["flat_amortized_1M_vs_1k"],
                },
                "rss_growth_mib_1M": {
                    "max": TARGETS["rss_growth_mib_1M"],
                    "value": growth,
                    "met": growth <= TARGETS["rss_growth_mib_1M"],
                },
            },
            "versions": package_versions("torch", "numpy", "camshaft-runner"),
            "machine": machine_info(),
        }
    )


if __name__ == "__main__":
    main()
