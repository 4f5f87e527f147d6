"""Deterministic call counting for bench/runner_overhead.py (``sys.setprofile``).

:class:`CallCounter` counts ``call`` and ``c_call`` events, keyed by what was called and
by the camshaft/MMEngine function that made the call; the reporting helpers turn the
counts into per-iteration tables (top functions, calls beyond the raw loop, by caller
and by package).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import Any


class CallCounter:
    """``sys.setprofile`` counting of ``call`` and ``c_call`` events.

    Each event is keyed by what was called, ``('py', code)`` for a Python function and
    ``('c', name, caller_code)`` for a C function, and by the innermost camshaft or
    MMEngine function on the stack that made the call (``None`` outside them), so extra
    calls can be traced to the Runner code responsible. Events in the frames of
    ``skip`` (the probe itself) are not counted.
    """

    def __init__(self, skip: frozenset[CodeType] = frozenset()) -> None:
        self.counts: Counter[tuple[tuple[Any, ...], CodeType | None]] = Counter()
        self._skip = skip
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
        """Count on this thread and on every ``threading`` thread started meanwhile.

        A Runner writing checkpoints in the background does that work on a thread of
        its own; it is still work the run costs. Other threads count into a counter of
        their own (no two threads update one ``Counter``), added in when the block ends.
        """
        others = CallCounter(self._skip)
        threading.setprofile(others.profile)
        sys.setprofile(self.profile)
        try:
            yield
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
            self.counts.update(dict(others.counts))


def _framework_caller(frame: FrameType | None) -> CodeType | None:
    """The code of the innermost camshaft or MMEngine frame from ``frame`` outwards."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if "/camshaft/" in filename or "/mmengine/" in filename:
            return frame.f_code
        frame = frame.f_back
    return None


class Window:
    """Calls ``enter()`` after iteration ``start`` and ``leave()`` after iteration ``stop``."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop, self.n = start, stop, 0
        self.enter: Callable[[], object] = noop
        self.leave: Callable[[], object] = noop

    def tick(self) -> None:
        self.n += 1
        if self.n == self.start:
            self.enter()
        elif self.n == self.stop:
            self.leave()


def op_counter() -> Any:
    """A ``TorchDispatchMode`` counting the aten operators run under it (None if absent)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:
        return None

    class OpCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.counts: Counter[str] = Counter()

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            self.counts[str(func)] += 1
            return func(*args, **(kwargs or {}))

    return OpCounter()


def noop() -> None:
    return None


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


def extra_by_caller(ours: CallCounter, raw: CallCounter, iters: int, n: int) -> list[list[Any]]:
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
