"""Benchmark: what the Runner costs per training iteration over a hand-written loop.

The setup is the seeds' Runner: ``Runner(model=<BaseModel subclass>, work_dir=<tmp>,
train_dataloader=<DataLoader>, optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
train_cfg=dict(by_epoch=True, max_epochs=3))`` with the default hooks (logging every 10
iterations, a checkpoint every epoch) on synthetic in-memory data: one ``TensorDataset``
per model, a ``DataLoader(batch_size=64, shuffle=True)`` built by hand for each run and
passed built. Two models: a 784-256-10 MLP and a 32-32-2 MLP, where overhead dominates.

Contenders, interleaved round by round, each round starting one contender later
(raw camshaft mmengine, camshaft mmengine raw, ...: no contender always runs right
after the same one):

* ``raw``       ``for epoch: for x, y in loader: out = model(x); loss =
  F.cross_entropy(out, y); opt.zero_grad(); loss.backward(); opt.step(); loss.item()``
  (the baseline; a typical loop reads the loss every iteration to log it)
* ``camshaft``  ``camshaft.runner.Runner(...).train()``
* ``mmengine``  ``mmengine.runner.Runner(...).train()``, only when ``import mmengine``
  works (``nox -s bench`` installs it; elsewhere its figures are skipped with a note)
* ablations, timed in the same rounds but not judged by the targets: each Runner with
  ``default_hooks=dict(checkpoint=None)`` (``<runner>-no-ckpt``) and with
  ``dict(checkpoint=None, logger=None)`` (``<runner>-core``)
* floors, the least the default hooks must do, written by hand around ``raw``:
  ``raw+ckpt`` also saves model, optimizer and RNG state each epoch atomically (temp
  file, fsync, rename, directory fsync) and then a ``last_checkpoint`` pointer the same
  way; ``raw+ckpt+log`` also logs a line through ``logging`` to a file every 10
  iterations

Measured (one torch thread by default: on a shared 2-core machine a second intra-op
thread mostly measures the neighbours; ``--threads 0`` keeps torch's default):

* ``per_iter_ms``: the whole ``train()`` (raw: optimizer built, then the loops) over
  the iterations, Runner construction excluded (timed apart). From the same runs, with
  ``perf_counter()`` stamped after each iteration (appended to a list; the Runners call
  it from a hook registered after construction, one Python call more than raw), the
  intervals between consecutive iterations of an epoch, epoch boundaries (checkpoint
  writes) left out: their mean, ``steady_per_iter_ms``, and median,
  ``typical_iter_ms`` (robust to a neighbour taking the CPU). ``*overhead*``:
  contender minus raw, the median of the per-round differences.
* ``construction_s``: ``Runner(...)`` alone. ``import_s``: ``import camshaft.runner``
  (``mmengine.runner``) after ``import torch``, in a fresh process each time.
* ``calls`` (the 32-32-2 MLP): Python and C function calls (``sys.setprofile`` events
  ``call`` and ``c_call``; a generator resumption counts as a call) of one ``train()``,
  after a warm-up run in the same process. ``per_iter``: from the end of iteration
  ``s`` of the second epoch to the end of iteration ``s + m`` (``m`` a multiple of the
  log interval, so log lines count in proportion), over ``m``; ``amortised``: the whole
  ``train()`` over its iterations. The probe that switches the profiler is not counted.
  ``amortised`` also counts every thread started during ``train()`` (a background
  checkpoint writer's calls are work the run costs); ``per_iter`` counts the training
  thread.
  Where the calls come from: ``by_origin_per_iter`` (package of the called Python
  function, or of the caller of a C function), ``camshaft_top`` (the window's most
  called functions; a C function is shown with its caller), ``camshaft_extra_top``
  (the same, minus raw's counts), and ``<kind>_extra_by_caller_*`` (the calls beyond
  raw by the innermost camshaft/MMEngine function that made them). ``aten_ops_per_iter``
  and ``<kind>_extra_aten_ops_per_iter``: the tensor operators dispatched in the same
  window (a ``TorchDispatchMode``, in a run of its own), which cost more than a call.

Targets (issue), each in ``targets`` beside camshaft's and MMEngine's figures: <= 60
extra calls per iteration over raw (<= 120 amortised), time <= 1.03x raw on
784-256-10, tiny-MLP overhead <= 1/5 of MMEngine's, construction <= 0.2 s, import
<= 0.3 s beyond torch. ``met`` is judged on the whole-``train()`` figures.

``cost_split`` (from the ablations): each Runner's whole-``train()`` overhead over raw
in ms/iter, split into its core, what the LoggerHook adds and what the per-epoch
CheckpointHook adds, with each variant's time over raw and, per part, camshaft's
overhead over MMEngine's; and the same split of the floors (``raw+ckpt+log``). It says
which default a missed time target is spent on, and how much of it any Runner must
spend. The floors also stand beside the two time targets in ``targets``.

Run: ``python bench/runner_overhead.py [--repeats 25] [--quick]``; prints one JSON line
on stdout (the Runners' console logs go to /dev/null meanwhile) and a summary table
on stderr. About 4 minutes with MMEngine on a 2-core machine; ``--quick``: seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import statistics
import sys
from collections import Counter
from collections.abc import Iterator
from time import perf_counter
from typing import Any

import torch
from _callcount import (
    CallCounter,
    Window,
    by_origin,
    extra_by_caller,
    extra_functions,
    noop,
    op_counter,
    top_functions,
)
from _common import emit, interleave, machine_info, package_versions, run_worker, summarize
from _runner_contenders import (
    ABLATIONS,
    BATCH,
    EPOCHS,
    FLOORS,
    LOG_INTERVAL,
    Case,
    Stamps,
    contender,
    make_dataset,
    mmengine_available,
    runner_of,
    train_contender,
)
from _runner_targets import (
    MODELS,
    OVERHEADS,
    TIME_METRICS,
    check_targets,
    compute_ratios,
    cost_split,
    print_summary,
)


def timed_run(kind: str, case: Case) -> dict[str, float]:
    """Build, then time ``train()``: per iteration, and the intervals inside epochs."""
    with contender(kind, case) as (built, construction_s):
        stamps = Stamps()
        train, _ = train_contender(kind, built, stamps.stamp)
        gc.collect()
        start = perf_counter()
        train()
        train_s = perf_counter() - start
        del train
    if len(stamps.times) != case.iters:
        raise RuntimeError(f"{kind}: {len(stamps.times)} iterations stamped, expected {case.iters}")
    intervals = stamps.intervals(case.iters_per_epoch)
    return {
        "per_iter_ms": 1e3 * train_s / case.iters,
        "steady_per_iter_ms": 1e3 * statistics.fmean(intervals),
        "typical_iter_ms": 1e3 * statistics.median(intervals),
        "construction_s": construction_s,
    }


def count_calls(kind: str, case: Case, window: tuple[int, int]) -> dict[str, Any]:
    """Call counts of profiled ``train()`` runs: the steady window and the whole call.

    Also the aten operators dispatched in the window (in a run of its own), since an
    extra tensor operation costs more than an extra Python call.
    """
    start, stop = window
    # Per-iteration window: the probe switches the profiler on and off.
    with contender(kind, case) as (built, _):
        win = Window(start, stop)
        train, probe_codes = train_contender(kind, built, win.tick)
        counter = CallCounter(skip=probe_codes | {Window.tick.__code__})
        win.enter = functools.partial(sys.setprofile, counter.profile)
        win.leave = functools.partial(sys.setprofile, None)
        try:
            train()
        finally:
            sys.setprofile(None)
        del train
    # Amortised: the whole train(), no window.
    with contender(kind, case) as (built, _):
        whole = CallCounter()
        train, _ = train_contender(kind, built, noop)
        with whole.active():
            train()
        del train
    ops = op_counter()
    if ops is not None:
        with contender(kind, case) as (built, _):
            win = Window(start, stop)
            win.enter = ops.__enter__
            win.leave = functools.partial(ops.__exit__, None, None, None)
            train, _ = train_contender(kind, built, win.tick)
            train()
            del train
    return {
        "window": counter,
        "window_iters": stop - start,
        "whole": whole,
        "ops": None if ops is None else ops.counts,
    }


def import_times(module: str, repeats: int) -> dict[str, dict[str, float]]:
    code = (
        "import json, time\n"
        "t0 = time.perf_counter()\n"
        "import torch\n"
        "t1 = time.perf_counter()\n"
        f"import {module}\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'torch': t1 - t0, 'module': t2 - t1}))\n"
    )
    runs = [run_worker(["-c", code]) for _ in range(repeats)]
    return {
        "beyond_torch": summarize([run["module"] for run in runs]),
        "torch": summarize([run["torch"] for run in runs]),
    }


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Point fd 1 at /dev/null (the Runners' console logs) until the block ends."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _window(iters_per_epoch: int) -> tuple[int, int]:
    """(start, stop) global iteration numbers of the counted window, in the second epoch."""
    offset = min(4, max(iters_per_epoch - 2, 0))
    span = (iters_per_epoch - offset - 1) // LOG_INTERVAL * LOG_INTERVAL
    if span == 0:
        span = iters_per_epoch - offset - 1
    if span < 1:
        raise ValueError(f"--iters-per-epoch must be >= 3, got {iters_per_epoch}")
    start = iters_per_epoch + offset + 1
    return start, start + span


def _paired(samples: dict[str, list[dict[str, float]]], kind: str, metric: str) -> dict[str, float]:
    """Summary of the per-round differences ``kind - raw`` of ``metric``."""
    pairs = zip(samples[kind], samples["raw"], strict=True)
    return summarize([ours[metric] - raw[metric] for ours, raw in pairs])


def time_case(
    case: Case, kinds: list[str], repeats: int, warmup: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Interleaved timings of one model; also each Runner's construction times.

    ``kinds`` starts with ``raw``; the ablations and floors among them are timed like
    the rest, but only the Runners' own construction times are reported.
    """
    runners = {kind: functools.partial(timed_run, kind, case) for kind in kinds}
    samples = interleave(runners, repeats=repeats, warmup=warmup, rotate=True)
    entry: dict[str, Any] = {}
    for metric in TIME_METRICS:
        entry[metric] = {
            kind: summarize([s[metric] for s in runs]) for kind, runs in samples.items()
        }
    for metric, overhead in OVERHEADS.items():
        entry[overhead] = {kind: _paired(samples, kind, metric) for kind in kinds[1:]}
    construction = {
        kind: [s["construction_s"] for s in samples[kind]]
        for kind in kinds[1:]
        if runner_of(kind) == kind
    }
    return entry, construction


def count_all(case: Case, kinds: list[str], top: int) -> dict[str, Any]:
    """The call counts of every contender on ``case``, and where the extra calls come from."""
    window = _window(case.iters_per_epoch)
    profiles = {}
    for kind in kinds:
        timed_run(kind, case)  # warm-up: first-use imports and caches
        profiles[kind] = count_calls(kind, case, window)
    per_iter = {kind: p["window"].total() / p["window_iters"] for kind, p in profiles.items()}
    amortised = {kind: p["whole"].total() / case.iters for kind, p in profiles.items()}
    calls: dict[str, Any] = {
        "model": case.name,
        "window": {"start": window[0], "stop": window[1]},
        "per_iter": {kind: round(v, 2) for kind, v in per_iter.items()},
        "amortised": {kind: round(v, 2) for kind, v in amortised.items()},
        "extra_per_iter": {kind: round(per_iter[kind] - per_iter["raw"], 2) for kind in kinds[1:]},
        "extra_amortised": {
            kind: round(amortised[kind] - amortised["raw"], 2) for kind in kinds[1:]
        },
        "by_origin_per_iter": {
            kind: by_origin(p["window"].by_key(), p["window_iters"]) for kind, p in profiles.items()
        },
    }
    raw = profiles["raw"]
    if raw["ops"] is not None:
        m = raw["window_iters"]
        calls["aten_ops_per_iter"] = {
            kind: round(sum(p["ops"].values()) / m, 2) for kind, p in profiles.items()
        }
        for kind in kinds[1:]:
            extra = Counter(profiles[kind]["ops"])
            extra.subtract(raw["ops"])
            calls[f"{kind}_extra_aten_ops_per_iter"] = {
                op: round(value / m, 2) for op, value in sorted(extra.items()) if value
            }
    for kind in kinds[1:]:
        ours, m = profiles[kind], profiles[kind]["window_iters"]
        if kind == "camshaft":
            calls["camshaft_top"] = top_functions(ours["window"].by_key(), m, top)
            calls["camshaft_extra_top"] = extra_functions(
                ours["window"].by_key(), raw["window"].by_key(), m, top
            )
        calls[f"{kind}_extra_by_caller_per_iter"] = extra_by_caller(
            ours["window"], raw["window"], m, top
        )
        calls[f"{kind}_extra_by_caller_amortised"] = extra_by_caller(
            ours["whole"], raw["whole"], case.iters, top
        )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters-per-epoch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--import-repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=25, help="functions listed per call table")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument("--no-mmengine", action="store_true", help="skip MMEngine even if found")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.iters_per_epoch, args.repeats, args.warmup, args.import_repeats = 12, 1, 1, 1
    _window(args.iters_per_epoch)  # reject a too short epoch before any work
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    began = perf_counter()

    def progress(message: str) -> None:
        print(f"[{perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    notes: list[str] = []
    kinds = ["raw", "camshaft"]
    if args.no_mmengine:
        notes.append("MMEngine skipped (--no-mmengine)")
    elif mmengine_available():
        kinds.append("mmengine")
    else:
        notes.append(
            "MMEngine figures skipped: `import mmengine` failed (nox -s bench installs "
            "mmengine==0.10.7)"
        )
    if "mmengine" in kinds:
        notes.append(
            "MMEngine's Runner gets a unique experiment_name per run: it names its logger "
            "and visualizer instances by a timestamp in seconds, which runners built in "
            "the same second would share"
        )
    # The Runners again without the checkpoint hook, then also without the logger, and the
    # raw loop doing the least those two hooks must do: what each default costs
    # (``cost_split``); not contenders of the targets.
    timed_kinds = kinds + [kind for kind, (runner, _) in ABLATIONS.items() if runner in kinds]
    timed_kinds += list(FLOORS)
    threads = torch.get_num_threads()
    cases = {
        name: Case(name, dims, make_dataset(dims, args.iters_per_epoch), args.iters_per_epoch)
        for name, dims in MODELS.items()
    }

    results: dict[str, Any] = {}
    construction: dict[str, list[float]] = {kind: [] for kind in kinds[1:]}
    with _quiet_stdout():
        for name, case in cases.items():
            results[name], built = time_case(case, timed_kinds, args.repeats, args.warmup)
            for kind, values in built.items():
                construction[kind] += values
            progress(f"timed {name}")
        results["calls"] = count_all(cases["mlp32"], kinds, args.top)
        progress("counted calls")
    if torch.get_num_threads() != threads:
        notes.append(f"torch threads changed from {threads} to {torch.get_num_threads()}")
    results["construction_s"] = {kind: summarize(v) for kind, v in construction.items()}
    imports = {"camshaft.runner": import_times("camshaft.runner", args.import_repeats)}
    if "mmengine" in kinds:
        imports["mmengine.runner"] = import_times("mmengine.runner", args.import_repeats)
    results["import_s"] = imports
    progress("timed imports")

    ratios = compute_ratios(results, kinds)
    split = cost_split(results, kinds)
    report = {
        "bench": "runner_overhead",
        "config": {
            "batch": BATCH,
            "epochs": EPOCHS,
            "iters_per_epoch": args.iters_per_epoch,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": torch.get_num_threads(),
            "quick": args.quick,
            "contenders": kinds,
            "ablations": timed_kinds[len(kinds) :],
        },
        "results": results,
        "ratios": ratios,
        "targets": check_targets(results, ratios, kinds, split),
        "cost_split": split,
        "notes": notes,
        "machine": machine_info(),
        "versions": package_versions("torch", "camshaft-runner", "mmengine"),
    }
    print_summary(report, kinds)
    emit(report)


if __name__ == "__main__":
    main()
