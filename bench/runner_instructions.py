"""Benchmark: CPU instructions per training iteration, Runner vs raw loop (deterministic).

``runner_overhead.py`` times the Runner against a hand-written loop, but on a shared
2-core machine wall time moves by 5-20 % between runs of the same code, more than the
margins the targets leave. The instructions a run executes hardly move at all. This
script counts them with valgrind's callgrind (instruction counts only, no cache
simulation; every thread of the process counted) for the same contenders and the same
setup as ``runner_overhead.py`` (the seeds' Runner, default hooks, a checkpoint every
epoch, a log line every 10 iterations):

* each contender (``raw``, ``camshaft``, ``mmengine`` when importable) trains in a fresh
  process under callgrind: a warm-up ``train()`` of a few iterations, then the measured
  one of 3 epochs of ``S`` iterations; a second process does the same with ``L``
  iterations per epoch;
* ``instructions_per_iter`` = (total(L) - total(S)) / (3 (L - S)): imports, start-up,
  the warm-up, epoch boundaries and checkpoints are the same in both processes and
  cancel; log lines stay in proportion (``L - S`` is a multiple of the log interval).

So the figures are the steady cost of one iteration, as instructions rather than time:
an instruction is not a fixed time (cache misses, vector width), so they complement the
timed figures rather than replace them. The defaults (20 and 220 iterations per epoch,
600 iterations apart) spread the garbage collector's occasional older-generation passes,
which land wherever the allocation counts say, over enough iterations to keep them from
moving the ratio.

Ratios: ``camshaft_vs_raw_<model>`` (instructions per iteration over raw's) and
``overhead_vs_mmengine_<model>`` (camshaft's extra instructions over MMEngine's), with
the issue's targets where it sets one: 1/5 of MMEngine's overhead on the 32-32-2 MLP,
1.03x raw on the 784-256-10 MLP.

Run: ``python bench/runner_instructions.py`` for the 32-32-2 MLP (about 10 minutes on 2
cores); ``--model mlp784 --no-mmengine`` for the other target (its matrix products are
slow under valgrind: about 6 minutes per short process). Prints one JSON line; without
valgrind on PATH the line says the benchmark was skipped and why.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import emit, machine_info, package_versions

EPOCHS = 3  # runner_overhead.EPOCHS; not imported, so that the driver does not load torch
LOG_INTERVAL = 10
# The bounds: camshaft's overhead over MMEngine's on the 32-32-2 MLP, its
# instructions (time, in the issue) over raw's on the 784-256-10 MLP.
TARGETS = {"overhead_vs_mmengine_mlp32": 0.2, "camshaft_vs_raw_mlp784": 1.03}
WARMUP_ITERS = 10
# One thread in every pool, as in runner_overhead.py (torch.set_num_threads(1)): an idle
# BLAS worker that spins while it waits would otherwise add instructions that depend on
# how valgrind happens to schedule threads.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def per_iteration(short_total: int, long_total: int, short: int, long: int) -> float:
    """Instructions of one steady iteration from two runs of 3 epochs.

    Args:
        short_total: The instructions of the process that trained ``short`` iterations
            per epoch.
        long_total: The same with ``long`` iterations per epoch.
        short: Iterations per epoch of the first process.
        long: Iterations per epoch of the second; greater than ``short``.

    Raises:
        ValueError: ``long`` is not greater than ``short``.

    Example:
        >>> per_iteration(1_000_000, 1_600_000, short=20, long=60)
        5000.0
    """
    if long <= short:
        raise ValueError(f"`long` must be greater than `short`, got long={long}, short={short}")
    return (long_total - short_total) / (EPOCHS * (long - short))


def read_total(path: str | os.PathLike[str]) -> int:
    """The instruction total of a callgrind output file (its ``summary:`` or ``totals:``).

    Raises:
        ValueError: The file has neither line.
    """
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith(("summary:", "totals:")):
                return int(line.split(":", 1)[1].split()[0])
    raise ValueError(f"{os.fspath(path)!r} is not a callgrind output file: no summary/totals line")


def check_lengths(short: int, long: int) -> None:
    """Raise unless the two epoch lengths give a clean difference.

    Raises:
        ValueError: ``short`` is below the log interval, ``long`` is not greater, or the
            difference is not a multiple of the log interval (log lines would not cancel
            in proportion).
    """
    if short < LOG_INTERVAL:
        raise ValueError(f"--short must be at least {LOG_INTERVAL}, got {short}")
    if long <= short or (long - short) % LOG_INTERVAL:
        raise ValueError(
            f"--long must exceed --short by a multiple of {LOG_INTERVAL}, got "
            f"short={short}, long={long}"
        )


def summarize_counts(
    totals: Mapping[tuple[str, str, int], int], short: int, long: int
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, dict[str, Any]]]:
    """Per-iteration instructions, the ratios, and target records from the raw totals.

    Args:
        totals: ``(model, kind, iters_per_epoch) -> instructions``.
        short: The shorter epoch length.
        long: The longer one.

    Returns:
        ``(per_iter, ratios, targets)``: instructions per iteration by model and
        contender; ``camshaft_vs_raw_<model>`` and (with MMEngine)
        ``overhead_vs_mmengine_<model>``; and for each ratio with an issue target a
        record ``{camshaft, mmengine, target, met}``.
    """
    per_iter: dict[str, dict[str, float]] = {}
    for model, kind, _ in totals:
        per_iter.setdefault(model, {})[kind] = per_iteration(
            totals[model, kind, short], totals[model, kind, long], short, long
        )
    ratios: dict[str, float] = {}
    targets: dict[str, dict[str, Any]] = {}
    for model, counts in per_iter.items():
        raw, ours = counts["raw"], counts["camshaft"]
        ratios[f"camshaft_vs_raw_{model}"] = ours / raw
        if "mmengine" in counts:
            ratios[f"overhead_vs_mmengine_{model}"] = (ours - raw) / (counts["mmengine"] - raw)
        for name in (f"camshaft_vs_raw_{model}", f"overhead_vs_mmengine_{model}"):
            if name in TARGETS and name in ratios:
                targets[name] = {
                    "camshaft": round(ratios[name], 4),
                    "mmengine": (
                        round(counts["mmengine"] / raw, 4)
                        if "mmengine" in counts and name.startswith("camshaft_vs_raw")
                        else None
                    ),
                    "target": TARGETS[name],
                    "met": ratios[name] <= TARGETS[name],
                }
    return per_iter, ratios, targets


# --- the worker: one contender's training, run under callgrind ------------------------


def worker(kind: str, model: str, iters_per_epoch: int) -> int:
    """Warm up, then train ``kind`` for 3 epochs of ``iters_per_epoch`` iterations.

    Returns:
        The training iterations run, the warm-up's included.
    """
    import gc

    import torch
    from runner_overhead import MODELS, Case, contender, make_dataset, train_contender

    torch.set_num_threads(1)
    dims = MODELS[model]
    done = [0]

    def after_iter() -> None:  # what runner_overhead's probe costs, for every contender
        done[0] += 1

    for length in (WARMUP_ITERS, iters_per_epoch):
        case = Case(model, dims, make_dataset(dims, length), length)
        with contender(kind, case) as (built, _):
            train, _ = train_contender(kind, built, after_iter)
            gc.collect()
            train()
            del train
    return done[0]


# --- the driver -----------------------------------------------------------------------


def _count(valgrind: str, out_dir: str, kind: str, model: str, length: int) -> int:
    out = os.path.join(out_dir, f"callgrind.{model}.{kind}.{length}")
    command = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        model,
        str(length),
    ]
    proc = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env={**os.environ, **SINGLE_THREADED},
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"callgrind run {kind}/{model}/{length} failed (exit {proc.returncode}):\n"
            f"{proc.stderr[-3000:]}"
        )
    return read_total(out)


def _mmengine_available() -> bool:
    try:
        import mmengine  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "MODEL", "ITERS"), help="internal")
    parser.add_argument("--model", default="mlp32", choices=["mlp32", "mlp784"])
    parser.add_argument("--short", type=int, default=20, help="iterations per epoch, first run")
    parser.add_argument("--long", type=int, default=220, help="iterations per epoch, second run")
    parser.add_argument("--no-mmengine", action="store_true", help="skip MMEngine even if found")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.worker:
        kind, model, length = args.worker
        worker(kind, model, int(length))
        return 0
    check_lengths(args.short, args.long)
    result: dict[str, Any] = {
        "bench": "runner_instructions",
        "config": {"model": args.model, "short": args.short, "long": args.long},
        "machine": machine_info(),
        "versions": package_versions("torch", "camshaft-runner", "mmengine"),
    }
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        result["skipped"] = "valgrind is not on PATH (Debian: apt install valgrind)"
        emit(result)
        return 0
    kinds = ["raw", "camshaft"]
    if not args.no_mmengine and _mmengine_available():
        kinds.append("mmengine")
    jobs = [(kind, args.model, length) for kind in kinds for length in (args.short, args.long)]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))
    with tempfile.TemporaryDirectory(prefix="runner_instructions_") as out_dir, pool:
        futures = {job: pool.submit(_count, valgrind, out_dir, *job) for job in jobs}
        totals = {(model, kind, n): futures[kind, model, n].result() for kind, model, n in jobs}
    per_iter, ratios, targets = summarize_counts(totals, args.short, args.long)
    result.update(
        results={
            "instructions_per_iter": per_iter,
            "totals": {f"{model}/{kind}/{n}": v for (model, kind, n), v in totals.items()},
        },
        ratios=ratios,
        targets=targets,
    )
    emit(result)
    for model, counts in per_iter.items():
        line = "  ".join(f"{kind} {value:,.0f}" for kind, value in counts.items())
        print(f"{model}: instructions per iteration  {line}", file=sys.stderr)
    for name, value in ratios.items():
        print(f"{name}: {value:.4f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
