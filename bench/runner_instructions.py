"""Benchmark: CPU instructions per training iteration, Runner vs raw loop (deterministic).

``runner_overhead.py`` times the Runner against a hand-written loop, but on a shared
2-core machine wall time moves by 5-20 % between runs of the same code, more than the
margins the targets leave. The instructions a run executes hardly move at all. This
script counts them with valgrind's callgrind (instruction counts only, no cache
simulation; every thread of the process counted) for the same contenders and the same
setup as ``runner_overhead.py`` (the seeds' Runner, default hooks, a checkpoint every
epoch, a log line every 10 iterations).

Each contender (``raw``, ``camshaft``, ``mmengine`` when importable) trains in a fresh
process under callgrind with collection off: a warm-up ``train()`` of 3 short epochs,
then the measured one, 3 epochs of ``N`` iterations (default 120). A tiny C shim,
compiled here from ``valgrind/callgrind.h``, switches collection on after the 15th
iteration of the measured run's second epoch and off after its ``N - 5``-th, so the
count covers ``N - 20`` whole steady iterations, ``(N - 20) / 10`` log lines among
them, and nothing else: no import, no start-up, no epoch boundary, no checkpoint.
``instructions_per_iter`` is that count over ``N - 20``.

Two things move the count of the same code, and are held still or averaged out:
Python's hash seed (fixed, ``PYTHONHASHSEED=0``) and the process's memory layout.
The layout follows from things as incidental as the size of the environment (it
shifts the stack): the raw loop's count moved by up to 0.3 % (about 7,000
instructions per iteration, 1 % of MMEngine's overhead) between runs that differed
only there. So each contender runs ``--repeats`` times (default 3), each time with
the environment padded by a different amount (``CAMSHAFT_BENCH_LAYOUT_PAD``), and
its median is used; ``spread_per_iter`` reports how far its runs lay apart. Runs of
the same code and layout give the same count to the instruction.

Why a window and not two runs of different lengths, differenced (this script's first
method): the difference carried what the data's size changes besides the iterations
(allocator paths, hash order). Raw's "per-iteration" count moved by 30,000 between
lengths 20/120 and 20/220, about 20 % of camshaft's whole overhead.

An instruction is not a fixed time (cache misses, vector width), so the figures
complement the timed ones rather than replace them. Ratios: ``camshaft_vs_raw_<model>``
(instructions per iteration over raw's) and ``overhead_vs_mmengine_<model>``
(camshaft's extra instructions over MMEngine's), with the issue's targets where it sets
one: 1/5 of MMEngine's overhead on the 32-32-2 MLP, 1.03x raw on the 784-256-10 MLP.

Run: ``python bench/runner_instructions.py`` for the 32-32-2 MLP (about 12 minutes on
2 cores: 9 runs under valgrind, two at a time); ``--model mlp784 --no-mmengine`` for
the other target (its matrix products are slow under valgrind). Needs valgrind and a
C compiler (Debian: ``apt install valgrind gcc``); without either, the JSON line says
the benchmark was skipped and why.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import emit, machine_info, package_versions

EPOCHS = 3  # _runner_contenders.EPOCHS; not imported, so that the driver does not load torch
LOG_INTERVAL = 10
# The bounds: camshaft's overhead over MMEngine's on the 32-32-2 MLP, its
# instructions (time, in the issue) over raw's on the 784-256-10 MLP.
TARGETS = {"overhead_vs_mmengine_mlp32": 0.2, "camshaft_vs_raw_mlp784": 1.03}
WARMUP_ITERS = 10
# One thread in every pool, as in runner_overhead.py (torch.set_num_threads(1)): an idle
# BLAS worker that spins while it waits would otherwise add instructions that depend on
# how valgrind happens to schedule threads.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# The window: after the 15th iteration of the second epoch to after its (N - 5)-th.
WINDOW_START = 15
WINDOW_END_BEFORE = 5
# Deterministic dict/set order: hash randomisation moves counts by a few thousand.
FIXED_HASH_SEED = {"PYTHONHASHSEED": "0"}
# Each contender runs once per padding of this variable: the environment's size moves
# the stack and so the addresses the process works with, and with them a few
# thousand instructions per iteration (pointer hashes, alignment of copies). The
# median of the runs is taken; their spread is reported.
LAYOUT_VARIABLE = "CAMSHAFT_BENCH_LAYOUT_PAD"
LAYOUT_PAD_STEP = 1000  # bytes more per repeat
SHIM_SOURCE = """#include <valgrind/callgrind.h>
void camshaft_bench_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
"""


def window(iters_per_epoch: int) -> tuple[int, int]:
    """The measured window, as counts of iterations finished in the measured ``train()``.

    Collection is switched on when the ``start``-th iteration finishes and off when the
    ``stop``-th does, so the window holds ``stop - start`` whole iterations.

    Example:
        >>> window(220)
        (235, 435)
    """
    return iters_per_epoch + WINDOW_START, 2 * iters_per_epoch - WINDOW_END_BEFORE


def window_iters(iters_per_epoch: int) -> int:
    """How many iterations the window holds (``iters_per_epoch - 20``)."""
    start, stop = window(iters_per_epoch)
    return stop - start


def layout_padding(repeat: int) -> str:
    """The value of ``LAYOUT_VARIABLE`` for run ``repeat`` (0: empty)."""
    return "." * (LAYOUT_PAD_STEP * repeat)


def median_totals(
    runs: Mapping[tuple[str, str], Sequence[int]],
) -> dict[tuple[str, str], int]:
    """Each contender's median window total over its runs (the lower middle for an even count).

    Raises:
        ValueError: A contender has no runs.
    """
    medians = {}
    for key, totals in runs.items():
        if not totals:
            raise ValueError(f"no runs for {key[1]} on {key[0]}")
        medians[key] = sorted(totals)[(len(totals) - 1) // 2]
    return medians


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


def check_iters_per_epoch(iters_per_epoch: int) -> None:
    """Raise unless the epoch length leaves a window of whole log intervals.

    Raises:
        ValueError: ``iters_per_epoch`` is below 40 (the window would hold fewer than
            20 iterations) or not a multiple of the log interval (the window would hold
            a fraction of a log line's share).
    """
    if iters_per_epoch < 2 * (WINDOW_START + WINDOW_END_BEFORE) or iters_per_epoch % LOG_INTERVAL:
        raise ValueError(
            f"--iters-per-epoch must be a multiple of {LOG_INTERVAL} and at least "
            f"{2 * (WINDOW_START + WINDOW_END_BEFORE)}, got {iters_per_epoch}"
        )


def summarize_counts(
    totals: Mapping[tuple[str, str], int], iters: int
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, dict[str, Any]]]:
    """Per-iteration instructions, the ratios, and target records from the window totals.

    Args:
        totals: ``(model, kind) -> instructions`` counted in the window.
        iters: The iterations in the window.

    Returns:
        ``(per_iter, ratios, targets)``: instructions per iteration by model and
        contender; ``camshaft_vs_raw_<model>`` and (with MMEngine)
        ``overhead_vs_mmengine_<model>``; and for each ratio with an issue target a
        record ``{camshaft, mmengine, target, met}``.
    """
    per_iter: dict[str, dict[str, float]] = {}
    for (model, kind), total in totals.items():
        per_iter.setdefault(model, {})[kind] = total / iters
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


def build_shim(compiler: str, out_dir: str) -> str:
    """Compile the collection switch into ``out_dir``; return the library's path.

    Raises:
        RuntimeError: The compiler failed (no ``valgrind/callgrind.h``, say); the
            message carries its output.
    """
    source = os.path.join(out_dir, "toggle.c")
    library = os.path.join(out_dir, "libtoggle.so")
    Path(source).write_text(SHIM_SOURCE, encoding="utf-8")
    proc = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", library, source],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"compiling the callgrind switch failed (exit {proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-2000:]}"
        )
    return library


# --- the worker: one contender's training, run under callgrind ------------------------


def worker(kind: str, model: str, iters_per_epoch: int, shim: str | None) -> int:
    """What runs under callgrind: :func:`train_windowed` switched by the compiled shim.

    Args:
        kind: ``'raw'``, ``'camshaft'`` or ``'mmengine'``.
        model: A key of ``_runner_targets.MODELS``.
        iters_per_epoch: Iterations per epoch of the measured run.
        shim: The compiled switch (see :func:`build_shim`), or None to run without one
            (a plain run, as the tests do).

    Returns:
        The training iterations run, the warm-up's included.
    """
    import ctypes

    toggle = ctypes.CDLL(shim).camshaft_bench_toggle_collect if shim else None
    return train_windowed(kind, model, iters_per_epoch, toggle)


def train_windowed(
    kind: str, model: str, iters_per_epoch: int, toggle: Callable[[], object] | None
) -> int:
    """Warm up, then train ``kind`` for 3 epochs, calling ``toggle`` around the window.

    The warm-up is a ``train()`` of 3 epochs of ``WARMUP_ITERS`` iterations. The window
    is counted in iterations of the measured ``train()`` alone (see :func:`window`):
    ``toggle`` is called when its ``start``-th and its ``stop``-th iteration finish.

    Returns:
        The training iterations run, the warm-up's included.
    """
    import gc

    import torch
    from _runner_contenders import Case, contender, make_dataset, train_contender
    from _runner_targets import MODELS

    torch.set_num_threads(1)
    dims = MODELS[model]
    start, stop = window(iters_per_epoch)
    warm_up_done = [0]
    measured_done = [0]

    def warm_up_iter() -> None:
        warm_up_done[0] += 1

    def measured_iter() -> None:  # what runner_overhead's probe costs, for every contender
        measured_done[0] += 1
        if toggle is not None and (measured_done[0] == start or measured_done[0] == stop):
            toggle()

    for length, probe in ((WARMUP_ITERS, warm_up_iter), (iters_per_epoch, measured_iter)):
        case = Case(model, dims, make_dataset(dims, length), length)
        with contender(kind, case) as (built, _):
            train, _ = train_contender(kind, built, probe)
            gc.collect()
            train()
            del train
    return warm_up_done[0] + measured_done[0]


# --- the driver -----------------------------------------------------------------------


def find_tools(result: dict[str, Any]) -> tuple[str, str] | None:
    """``(valgrind, compiler)`` paths; without either, emit ``result`` marked skipped.

    Returns:
        The two paths, or None once the skipped line is printed.
    """
    valgrind = shutil.which("valgrind")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if valgrind is None or compiler is None:
        missing = "valgrind" if valgrind is None else "a C compiler (cc or gcc)"
        result["skipped"] = f"{missing} is not on PATH (Debian: apt install valgrind gcc)"
        emit(result)
        return None
    return valgrind, compiler


def count_in_window(
    valgrind: str, out: str, script: str, worker_args: Sequence[str], label: str, padding: str = ""
) -> int:
    """Run ``script --worker *worker_args`` under callgrind, collection off at start.

    The worker switches collection on and off itself (the shim). One thread in every
    pool, a fixed hash seed, and ``padding`` as ``LAYOUT_VARIABLE``.

    Returns:
        The instructions counted, from the output file ``out``.

    Raises:
        RuntimeError: The run failed; the message names ``label`` and carries stderr.
    """
    command = [
        valgrind,
        "--tool=callgrind",
        "--collect-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        script,
        "--worker",
        *worker_args,
    ]
    proc = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env={**os.environ, **SINGLE_THREADED, **FIXED_HASH_SEED, LAYOUT_VARIABLE: padding},
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"callgrind run {label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return read_total(out)


def _count(
    valgrind: str, shim: str, out_dir: str, kind: str, model: str, length: int, repeat: int = 0
) -> int:
    return count_in_window(
        valgrind,
        os.path.join(out_dir, f"callgrind.{model}.{kind}.{length}.{repeat}"),
        str(Path(__file__).resolve()),
        [kind, model, str(length), shim],
        f"{kind}/{model}/{length} (repeat {repeat})",
        layout_padding(repeat),
    )


def _mmengine_available() -> bool:
    try:
        import mmengine  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", nargs=4, metavar=("KIND", "MODEL", "ITERS", "SHIM"), help="internal"
    )
    parser.add_argument("--model", default="mlp32", choices=["mlp32", "mlp784"])
    parser.add_argument(
        "--iters-per-epoch",
        type=int,
        default=120,
        help="iterations per epoch of the measured run; the window is 20 fewer",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per contender, each with the environment padded differently; median",
    )
    parser.add_argument("--no-mmengine", action="store_true", help="skip MMEngine even if found")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.worker:
        kind, model, length, shim = args.worker
        worker(kind, model, int(length), shim)
        return 0
    length = args.iters_per_epoch
    check_iters_per_epoch(length)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    result: dict[str, Any] = {
        "bench": "runner_instructions",
        "config": {
            "model": args.model,
            "iters_per_epoch": length,
            "window": list(window(length)),
            "window_iters": window_iters(length),
            "repeats": args.repeats,
        },
        "machine": machine_info(),
        "versions": package_versions("torch", "camshaft-runner", "mmengine"),
    }
    tools = find_tools(result)
    if tools is None:
        return 0
    valgrind, compiler = tools
    kinds = ["raw", "camshaft"]
    if not args.no_mmengine and _mmengine_available():
        kinds.append("mmengine")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))
    with tempfile.TemporaryDirectory(prefix="runner_instructions_") as out_dir, pool:
        try:
            shim = build_shim(compiler, out_dir)
        except RuntimeError as exc:
            result["skipped"] = str(exc)
            emit(result)
            return 0
        futures = {
            kind: [
                pool.submit(_count, valgrind, shim, out_dir, kind, args.model, length, repeat)
                for repeat in range(args.repeats)
            ]
            for kind in kinds
        }
        runs = {(args.model, kind): [f.result() for f in futures[kind]] for kind in kinds}
    iters = window_iters(length)
    totals = median_totals(runs)
    per_iter, ratios, targets = summarize_counts(totals, iters)
    result.update(
        results={
            "instructions_per_iter": per_iter,
            "window_totals": {f"{model}/{kind}": v for (model, kind), v in runs.items()},
            "spread_per_iter": {
                f"{model}/{kind}": round((max(v) - min(v)) / iters, 1)
                for (model, kind), v in runs.items()
            },
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
