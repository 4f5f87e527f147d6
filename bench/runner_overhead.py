"""Benchmark: what the Runner costs per training iteration over a hand-written loop.

The setup is the seeds' Runner: ``Runner(model=<BaseModel subclass>, work_dir=<tmp>,
train_dataloader=<DataLoader>, optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
train_cfg=dict(by_epoch=True, max_epochs=3))`` with the default hooks (logging every 10
iterations, a checkpoint every epoch) on synthetic in-memory data: one ``TensorDataset``
per model, a ``DataLoader(batch_size=64, shuffle=True)`` built by hand for each run and
passed built. Two models: a 784-256-10 MLP and a 32-32-2 MLP, where overhead dominates.

Contenders, interleaved round by round (raw camshaft mmengine raw camshaft ...):

* ``raw``       ``for epoch: for x, y in loader: out = model(x); loss =
  F.cross_entropy(out, y); opt.zero_grad(); loss.backward(); opt.step(); loss.item()``
  (the baseline; a typical loop reads the loss every iteration to log it)
* ``camshaft``  ``camshaft.runner.Runner(...).train()``
* ``mmengine``  ``mmengine.runner.Runner(...).train()``, only when ``import mmengine``
  works (``nox -s bench`` installs it; elsewhere its figures are skipped with a note)

Measured:

* ``per_iter_ms``: the whole ``train()`` (the raw loop: optimizer built, then the
  loops) over the iterations; Runner construction is timed apart. ``steady_per_iter_ms``:
  the same runs, only the intervals between consecutive iterations of an epoch (epoch
  boundaries, where checkpoints are written, left out). To stamp them every contender
  appends ``perf_counter()`` to a list after each iteration (the Runners from a hook
  registered after construction, one Python call more per iteration than raw).
  ``overhead_ms_per_iter``: contender minus raw, the median of the per-round
  differences.
* ``construction_s``: ``Runner(...)`` alone. ``import_s``: ``import camshaft.runner``
  (``mmengine.runner``) after ``import torch``, in a fresh process each time.
* ``calls``: Python calls and C calls (``sys.setprofile`` events ``call`` and
  ``c_call``; generator resumptions count as calls) of one ``train()``, after a
  warm-up run in the same process. ``per_iter``: from the end of iteration ``s`` of
  the second epoch to the end of iteration ``s + m`` (``m`` a multiple of the log
  interval, so log lines are counted in proportion), over ``m``; ``amortised``: the
  whole ``train()`` over its iterations. The probe that switches the profiler on and
  off is left out of the counts. ``camshaft_top`` lists the camshaft window's top
  functions (a C function is named with the Python function that called it).

Targets (issue): camshaft <= 60 extra calls per iteration over raw (<= 120 amortised),
time <= 1.03x raw on 784-256-10, its tiny-MLP overhead <= 1/5 of MMEngine's,
construction <= 0.2 s, import <= 0.3 s beyond torch.

Run: ``python bench/runner_overhead.py [--repeats 9] [--quick]``; prints one JSON line
(the Runners' console logs go to /dev/null while it runs).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from time import perf_counter
from types import CodeType, FrameType
from typing import Any

import torch
import torch.nn.functional as F
from _common import emit, interleave, machine_info, package_versions, ratio, run_worker, summarize
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from camshaft.model import BaseModel
from camshaft.runner import Runner
from camshaft.runner.hooks import Hook

MODELS = {"mlp784": (784, 256, 10), "mlp32": (32, 32, 2)}
BATCH = 64
EPOCHS = 3
LR = 0.01
LOG_INTERVAL = 10  # LoggerHook's default in both Runners
TARGETS = {
    "extra_calls_per_iter": 60,
    "extra_calls_amortised": 120,
    "time_ratio_mlp784": 1.03,
    "overhead_vs_mmengine_mlp32": 0.2,
    "construction_s": 0.2,
    "import_s_beyond_torch": 0.3,
}


def _mmengine_available() -> bool:
    try:
        import mmengine  # noqa: F401
    except ImportError:
        return False
    return True


# --- models, data, the raw loop ------------------------------------------------------------


def mlp(dims: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dims[0], dims[1]), nn.ReLU(), nn.Linear(dims[1], dims[2]))


class CamshaftMLP(BaseModel):
    def __init__(self, dims: tuple[int, int, int]) -> None:
        super().__init__()
        self.net = mlp(dims)

    def forward(self, inputs: Any, targets: Any = None, mode: str = "tensor") -> Any:
        out = self.net(inputs)
        if mode == "loss":
            return {"loss": F.cross_entropy(out, targets)}
        return out


def mmengine_mlp_class() -> type[nn.Module]:
    from mmengine.model import BaseModel as MMBaseModel

    class MMEngineMLP(MMBaseModel):
        def __init__(self, dims: tuple[int, int, int]) -> None:
            super().__init__()
            self.net = mlp(dims)

        def forward(self, inputs: Any, targets: Any = None, mode: str = "tensor") -> Any:
            out = self.net(inputs)
            if mode == "loss":
                return {"loss": F.cross_entropy(out, targets)}
            return out

    return MMEngineMLP


def make_dataset(dims: tuple[int, int, int], iters_per_epoch: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    n = BATCH * iters_per_epoch
    inputs = torch.randn(n, dims[0], generator=generator)
    targets = torch.randint(0, dims[2], (n,), generator=generator)
    return TensorDataset(inputs, targets)


def make_loader(dataset: TensorDataset) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH, shuffle=True)


def raw_train(
    model: nn.Module, loader: DataLoader, epochs: int, after_iter: Callable[[], None]
) -> nn.Module:
    """The hand-written baseline: a plain loop, reading the loss every iteration."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    for _ in range(epochs):
        for inputs, targets in loader:
            out = model(inputs)
            loss = F.cross_entropy(out, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            after_iter()
    return model


# --- the per-iteration probe (timestamps, or the profiler's window) --------------------------


class _Stamps:
    """``perf_counter()`` after every iteration; the steady time per iteration."""

    def __init__(self) -> None:
        self.times: list[float] = []
        append = self.times.append

        def stamp() -> None:
            append(perf_counter())

        self.stamp = stamp

    def steady_s(self, iters_per_epoch: int) -> float:
        """Mean interval between consecutive iterations of an epoch (boundaries left out)."""
        total, count = 0.0, 0
        for start in range(0, len(self.times), iters_per_epoch):
            epoch = self.times[start : start + iters_per_epoch]
            total += epoch[-1] - epoch[0]
            count += len(epoch) - 1
        return total / count


class _Counter:
    """``sys.setprofile`` counting of ``call`` and ``c_call`` events.

    Each event is keyed by what was called, ``('py', code)`` for a Python function and
    ``('c', name, caller_code)`` for a C function, and by the innermost camshaft or
    MMEngine function on the stack that made the call (``None`` outside them), so extra
    calls can be traced to the Runner code responsible. Events in the frames of
    ``skip`` (the probe itself) are not counted.
    """

    def __init__(self, skip: frozenset[CodeType] = frozenset()) -> None:
        self.counts: Counter[tuple[tuple[Any, ...], CodeType | None]] = Counter()
        counts, skipped = self.counts, skip

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                if code not in skipped:
                    counts[("py", code), _framework_caller(frame.f_back)] += 1
            elif event == "c_call":
                code = frame.f_code
                if code not in skipped:
                    name = getattr(arg, "__qualname__", None) or type(arg).__name__
                    counts[("c", name, code), _framework_caller(frame)] += 1

        self.profile = profile

    def total(self) -> int:
        return sum(self.counts.values())

    def by_key(self) -> Counter[tuple[Any, ...]]:
        """Counts by what was called, whoever called it."""
        merged: Counter[tuple[Any, ...]] = Counter()
        for (key, _), value in self.counts.items():
            merged[key] += value
        return merged

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        sys.setprofile(self.profile)
        try:
            yield
        finally:
            sys.setprofile(None)


def _framework_caller(frame: FrameType | None) -> CodeType | None:
    """The code of the innermost camshaft or MMEngine frame from ``frame`` outwards."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if "/camshaft/" in filename or "/mmengine/" in filename:
            return frame.f_code
        frame = frame.f_back
    return None


class _Window:
    """Switches a :class:`_Counter` on after iteration ``start`` and off after ``stop``."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop, self.n = start, stop, 0
        self.counter = _Counter()

    def tick(self) -> None:
        self.n += 1
        if self.n == self.start:
            sys.setprofile(self.counter.profile)
        elif self.n == self.stop:
            sys.setprofile(None)


class CamshaftProbe(Hook):
    """Calls ``after_iter()`` at the end of every training iteration."""

    def __init__(self, after_iter: Callable[[], None]) -> None:
        self.after_iter = after_iter

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self.after_iter()


def mmengine_probe(after_iter: Callable[[], None]) -> Any:
    from mmengine.hooks import Hook as MMHook

    class MMEngineProbe(MMHook):
        def after_train_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            after_iter()

    return MMEngineProbe()


# --- contenders ---------------------------------------------------------------------------


@dataclass
class Case:
    """One model's data and run length."""

    name: str
    dims: tuple[int, int, int]
    dataset: TensorDataset
    iters_per_epoch: int

    @property
    def iters(self) -> int:
        return EPOCHS * self.iters_per_epoch


@contextlib.contextmanager
def _work_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="runner_overhead_")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _runner_kwargs(model: nn.Module, work_dir: str, loader: DataLoader) -> dict[str, Any]:
    return {
        "model": model,
        "work_dir": work_dir,
        "train_dataloader": loader,
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": LR}},
        "train_cfg": {"by_epoch": True, "max_epochs": EPOCHS},
    }


def build_contender(kind: str, case: Case, work_dir: str) -> tuple[Any, float]:
    """A fresh model and loader; for the Runners also the Runner and its construction time."""
    torch.manual_seed(0)
    loader = make_loader(case.dataset)
    if kind == "raw":
        return (mlp(case.dims), loader), 0.0
    if kind == "camshaft":
        kwargs = _runner_kwargs(CamshaftMLP(case.dims), work_dir, loader)
        start = perf_counter()
        runner = Runner(**kwargs)
        return runner, perf_counter() - start
    from mmengine.runner import Runner as MMRunner

    kwargs = _runner_kwargs(mmengine_mlp_class()(case.dims), work_dir, loader)
    # MMEngine names its logger/visualizer instances by a timestamp in seconds; runners
    # built within one second would share them, so each gets its own name.
    kwargs["experiment_name"] = f"bench_{uuid.uuid4().hex[:12]}"
    start = perf_counter()
    runner = MMRunner(**kwargs)
    return runner, perf_counter() - start


def train_contender(
    kind: str, built: Any, after_iter: Callable[[], None]
) -> tuple[Callable[[], Any], frozenset[CodeType]]:
    """Register the probe (Runners); return ``train`` and the probe's code objects."""
    if kind == "raw":
        model, loader = built
        return (lambda: raw_train(model, loader, EPOCHS, after_iter)), frozenset()
    probe = CamshaftProbe(after_iter) if kind == "camshaft" else mmengine_probe(after_iter)
    built.register_hook(probe)
    return built.train, frozenset({type(probe).after_train_iter.__code__})


def timed_run(kind: str, case: Case) -> dict[str, float]:
    with _work_dir() as work_dir:
        built, construction_s = build_contender(kind, case, work_dir)
        stamps = _Stamps()
        train, _ = train_contender(kind, built, stamps.stamp)
        gc.collect()
        start = perf_counter()
        train()
        train_s = perf_counter() - start
        del built, train
    if len(stamps.times) != case.iters:
        raise RuntimeError(f"{kind}: {len(stamps.times)} iterations stamped, expected {case.iters}")
    return {
        "per_iter_ms": 1e3 * train_s / case.iters,
        "steady_per_iter_ms": 1e3 * stamps.steady_s(case.iters_per_epoch),
        "construction_s": construction_s,
    }


def count_calls(kind: str, case: Case, window: tuple[int, int]) -> dict[str, Any]:
    """Call counts of one profiled ``train()``: the steady window and the whole call."""
    start, stop = window
    # Per-iteration window: the probe switches the profiler on and off.
    with _work_dir() as work_dir:
        built, _ = build_contender(kind, case, work_dir)
        win = _Window(start, stop)
        train, probe_codes = train_contender(kind, built, win.tick)
        win.counter = _Counter(skip=probe_codes | {_Window.tick.__code__})
        try:
            train()
        finally:
            sys.setprofile(None)
        del built, train
    # Amortised: the whole train(), no window.
    with _work_dir() as work_dir:
        built, _ = build_contender(kind, case, work_dir)
        whole = _Counter()
        train, _ = train_contender(kind, built, _noop)
        with whole.active():
            train()
        del built, train
    return {"window": win.counter, "window_iters": stop - start, "whole": whole}


def _noop() -> None:
    return None


# --- reporting -----------------------------------------------------------------------------


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" else tail
    return os.path.basename(filename)


def _origin(code: CodeType) -> str:
    path = code.co_filename
    for package in ("camshaft/runner", "camshaft/model", "camshaft/registry", "mmengine"):
        if f"/{package}/" in path:
            return package.replace("/", ".")
    if "/torch/utils/data/" in path:
        return "torch DataLoader"
    if "/torch/" in path:
        return "torch"
    if path.endswith("runner_overhead.py"):
        return "bench (model forward, raw loop)"
    if "/logging/" in path:
        return "stdlib logging"
    return "stdlib/other"


def _name(code: CodeType) -> str:
    return f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_qualname})"


def _label(key: tuple[Any, ...]) -> str:
    if key[0] == "py":
        return _name(key[1])
    _, name, caller = key
    return f"<C> {name} <- {caller.co_qualname} ({_short(caller.co_filename)})"


def top_functions(counts: Counter[tuple[Any, ...]], iters: int, n: int) -> list[list[Any]]:
    """The ``n`` most called functions (C functions with their caller), calls per iteration."""
    return [[_label(key), round(value / iters, 2)] for key, value in counts.most_common(n)]


def extra_functions(
    ours: Counter[tuple[Any, ...]], raw: Counter[tuple[Any, ...]], iters: int, n: int
) -> list[list[Any]]:
    """The ``n`` functions called most often beyond raw (same number of iterations)."""
    extra = Counter(ours)
    extra.subtract(raw)
    ranked = sorted(extra.items(), key=lambda item: -abs(item[1]))[:n]
    return [[_label(key), round(value / iters, 2)] for key, value in ranked if value]


def extra_by_caller(ours: _Counter, raw: _Counter, iters: int, n: int) -> list[list[Any]]:
    """The calls beyond raw, by the camshaft/MMEngine function that made them.

    Per called function the raw loop's count is taken first from the calls made
    outside the Runner, then from the Runner function that made most of them (the
    DataLoader's calls from the epoch loop, the model's from ``_run_forward``); what is
    left is the Runner's own. Approximate only where both call the same function.
    """
    raw_counts = raw.by_key()
    callers: dict[tuple[Any, ...], Counter[CodeType | None]] = {}
    for (key, caller), value in ours.counts.items():
        callers.setdefault(key, Counter())[caller] += value
    responsible: Counter[str] = Counter()
    for key, by_caller in callers.items():
        left = raw_counts.get(key, 0)
        for caller in [None, *(c for c, _ in by_caller.most_common() if c is not None)]:
            take = min(left, by_caller[caller])
            by_caller[caller] -= take
            left -= take
        for caller, value in by_caller.items():
            if value:
                responsible["(outside the Runner)" if caller is None else _name(caller)] += value
    return [[name, round(value / iters, 2)] for name, value in responsible.most_common(n)]


def by_origin(counts: Counter[tuple[Any, ...]], iters: int) -> dict[str, float]:
    """Per-iteration calls by the package of the called (Python) or calling (C) function."""
    grouped: Counter[str] = Counter()
    for key, value in counts.items():
        code = key[1] if key[0] == "py" else key[2]
        grouped[f"{_origin(code)} ({'py' if key[0] == 'py' else 'C'})"] += value
    return {name: round(value / iters, 2) for name, value in grouped.most_common()}


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
def _quiet_stdout() -> Iterator[int]:
    """Point fd 1 at /dev/null (the Runners' console logs); yield the real stdout's fd."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield saved
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters-per-epoch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--import-repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: leave torch's default)"
    )
    parser.add_argument("--no-mmengine", action="store_true", help="skip MMEngine even if found")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.iters_per_epoch, args.repeats, args.warmup, args.import_repeats = 12, 1, 1, 1

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    began = perf_counter()

    def progress(message: str) -> None:
        print(f"[{perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    notes: list[str] = []
    kinds = ["raw", "camshaft"]
    if args.no_mmengine:
        notes.append("MMEngine skipped (--no-mmengine)")
    elif _mmengine_available():
        kinds.append("mmengine")
    else:
        notes.append(
            "MMEngine figures skipped: `import mmengine` failed (nox -s bench installs "
            "mmengine==0.10.7)"
        )
    threads = torch.get_num_threads()
    cases = [
        Case(name, dims, make_dataset(dims, args.iters_per_epoch), args.iters_per_epoch)
        for name, dims in MODELS.items()
    ]
    window = _window(args.iters_per_epoch)

    results: dict[str, Any] = {}
    construction: dict[str, list[float]] = {kind: [] for kind in kinds if kind != "raw"}
    with _quiet_stdout() as real_stdout:
        for case in cases:
            runners = {kind: (lambda k=kind, c=case: timed_run(k, c)) for kind in kinds}
            samples = interleave(runners, repeats=args.repeats, warmup=args.warmup)
            entry: dict[str, Any] = {}
            for metric in ("per_iter_ms", "steady_per_iter_ms"):
                entry[metric] = {
                    kind: summarize([s[metric] for s in runs]) for kind, runs in samples.items()
                }
            entry["overhead_ms_per_iter"] = {
                kind: summarize(
                    [
                        s["per_iter_ms"] - r["per_iter_ms"]
                        for s, r in zip(samples[kind], samples["raw"], strict=True)
                    ]
                )
                for kind in kinds
                if kind != "raw"
            }
            entry["steady_overhead_ms_per_iter"] = {
                kind: summarize(
                    [
                        s["steady_per_iter_ms"] - r["steady_per_iter_ms"]
                        for s, r in zip(samples[kind], samples["raw"], strict=True)
                    ]
                )
                for kind in kinds
                if kind != "raw"
            }
            for kind in construction:
                construction[kind] += [s["construction_s"] for s in samples[kind]]
            results[case.name] = entry
            progress(f"timed {case.name}")

        tiny = next(case for case in cases if case.name == "mlp32")
        calls: dict[str, Any] = {"window": {"start": window[0], "stop": window[1]}}
        profiles = {}
        for kind in kinds:
            timed_run(kind, tiny)  # warm-up: first-use imports and caches
            profiles[kind] = count_calls(kind, tiny, window)
            progress(f"counted calls: {kind}")
        if torch.get_num_threads() != threads:
            notes.append(f"torch threads changed from {threads} to {torch.get_num_threads()}")
    del real_stdout

    iters = tiny.iters
    per_iter = {kind: p["window"].total() / p["window_iters"] for kind, p in profiles.items()}
    amortised = {kind: p["whole"].total() / iters for kind, p in profiles.items()}
    calls["per_iter"] = {kind: round(v, 2) for kind, v in per_iter.items()}
    calls["amortised"] = {kind: round(v, 2) for kind, v in amortised.items()}
    calls["extra_per_iter"] = {
        kind: round(v - per_iter["raw"], 2) for kind, v in per_iter.items() if kind != "raw"
    }
    calls["extra_amortised"] = {
        kind: round(v - amortised["raw"], 2) for kind, v in amortised.items() if kind != "raw"
    }
    calls["by_origin_per_iter"] = {
        kind: by_origin(p["window"].by_key(), p["window_iters"]) for kind, p in profiles.items()
    }
    raw_profile = profiles["raw"]
    for kind in kinds[1:]:
        ours = profiles[kind]
        m = ours["window_iters"]
        if kind == "camshaft":
            calls["camshaft_top"] = top_functions(ours["window"].by_key(), m, args.top)
            calls["camshaft_extra_top"] = extra_functions(
                ours["window"].by_key(), raw_profile["window"].by_key(), m, args.top
            )
        calls[f"{kind}_extra_by_caller_per_iter"] = extra_by_caller(
            ours["window"], raw_profile["window"], m, args.top
        )
        calls[f"{kind}_extra_by_caller_amortised"] = extra_by_caller(
            ours["whole"], raw_profile["whole"], iters, args.top
        )
    results["calls"] = calls
    results["construction_s"] = {kind: summarize(v) for kind, v in construction.items()}

    imports = {"camshaft.runner": import_times("camshaft.runner", args.import_repeats)}
    if "mmengine" in kinds:
        imports["mmengine.runner"] = import_times("mmengine.runner", args.import_repeats)
    results["import_s"] = imports
    progress("timed imports")

    ratios: dict[str, Any] = {}
    met: dict[str, Any] = {}
    for case in cases:
        entry = results[case.name]
        for kind in kinds[1:]:
            ratios[f"{kind}_vs_raw_{case.name}"] = ratio(
                entry["per_iter_ms"][kind], entry["per_iter_ms"]["raw"]
            )
            ratios[f"{kind}_vs_raw_steady_{case.name}"] = ratio(
                entry["steady_per_iter_ms"][kind], entry["steady_per_iter_ms"]["raw"]
            )
    if "mmengine" in kinds:
        tiny_entry = results["mlp32"]["overhead_ms_per_iter"]
        ratios["camshaft_vs_mmengine_overhead_mlp32"] = ratio(
            tiny_entry["camshaft"], tiny_entry["mmengine"]
        )
        steady = results["mlp32"]["steady_overhead_ms_per_iter"]
        ratios["camshaft_vs_mmengine_steady_overhead_mlp32"] = ratio(
            steady["camshaft"], steady["mmengine"]
        )
    met["extra_calls_per_iter"] = (
        calls["extra_per_iter"]["camshaft"] <= TARGETS["extra_calls_per_iter"]
    )
    met["extra_calls_amortised"] = (
        calls["extra_amortised"]["camshaft"] <= TARGETS["extra_calls_amortised"]
    )
    met["time_ratio_mlp784"] = ratios["camshaft_vs_raw_mlp784"] <= TARGETS["time_ratio_mlp784"]
    overhead_ratio = ratios.get("camshaft_vs_mmengine_overhead_mlp32")
    met["overhead_vs_mmengine_mlp32"] = (
        None if overhead_ratio is None else overhead_ratio <= TARGETS["overhead_vs_mmengine_mlp32"]
    )
    met["construction_s"] = (
        results["construction_s"]["camshaft"]["median"] <= TARGETS["construction_s"]
    )
    met["import_s_beyond_torch"] = (
        imports["camshaft.runner"]["beyond_torch"]["median"] <= TARGETS["import_s_beyond_torch"]
    )
    emit(
        {
            "bench": "runner_overhead",
            "config": {
                "batch": BATCH,
                "epochs": EPOCHS,
                "iters_per_epoch": args.iters_per_epoch,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "quick": args.quick,
                "contenders": kinds,
            },
            "results": results,
            "ratios": ratios,
            "targets": TARGETS,
            "met": met,
            "notes": notes,
            "machine": machine_info(),
            "versions": package_versions("torch", "camshaft-runner", "mmengine"),
        }
    )


if __name__ == "__main__":
    main()
