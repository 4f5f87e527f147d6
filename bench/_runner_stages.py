"""Where the Runner's extra instructions per iteration go: one stage at a time, under callgrind.

``runner_instructions.py`` says how many instructions a camshaft training iteration
costs beyond a hand-written loop; this script says where they go. It trains the
32-32-2 MLP of ``runner_overhead.py`` with a camshaft Runner (default hooks, a log line
every 10 iterations), so that every cache is warm. Then, for one stage, it calls that
stage 200 times with callgrind collecting only around those calls (the same switch as
``runner_instructions.py``):

* ``empty``: a call of a function that does nothing (subtracted from the others)
* ``raw_step``: the hand-written step: forward, ``cross_entropy``, ``zero_grad``,
  ``backward``, ``step``, ``item``
* ``train_step``: ``model.train_step(batch, optim_wrapper)``
* ``preprocessor``: ``model.data_preprocessor(batch, True)``
* ``parse_losses``: ``model.parse_losses({'loss': <a 0-d tensor in a graph>})``
* ``hooks``: the before- and after-iteration hooks of an iteration without a log line
* ``hooks_with_log_line``: the same for an iteration that writes one

Each stage runs in a process of its own. The JSON line gives instructions per call
(``empty`` subtracted) and, derived from them, ``train_step_over_raw`` and
``log_line`` (``hooks_with_log_line - hooks``).

Not a benchmark with a target (the leading underscore keeps it out of ``nox -s bench``):
run ``python bench/_runner_stages.py [STAGE ...]`` when looking for what to cut. It
needs valgrind and a C compiler, as ``runner_instructions.py`` does.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import emit, machine_info, package_versions
from runner_instructions import build_shim, count_in_window, find_tools

STAGES = (
    "empty",
    "raw_step",
    "train_step",
    "preprocessor",
    "parse_losses",
    "hooks",
    "hooks_with_log_line",
)
CALLS = 200
WARM_CALLS = 50
ITERS_PER_EPOCH = 40


def check_stages(stages: Sequence[str]) -> None:
    """Raise unless every name is one of :data:`STAGES`.

    Raises:
        ValueError: A name is unknown; the message lists the known ones.
    """
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")


def per_call(totals: dict[str, int], calls: int = CALLS) -> dict[str, float]:
    """Instructions per call of each stage, the ``empty`` stage's cost subtracted.

    Raises:
        ValueError: ``totals`` lacks ``'empty'``.
    """
    if "empty" not in totals:
        raise ValueError("the 'empty' stage is needed to subtract the cost of the calls")
    base = totals["empty"] / calls
    return {stage: total / calls - base for stage, total in totals.items() if stage != "empty"}


def derived(costs: dict[str, float]) -> dict[str, float]:
    """Differences between stages: the train step over raw's, and the log line's cost."""
    out = {}
    if "train_step" in costs and "raw_step" in costs:
        out["train_step_over_raw"] = costs["train_step"] - costs["raw_step"]
    if "hooks" in costs and "hooks_with_log_line" in costs:
        out["log_line"] = costs["hooks_with_log_line"] - costs["hooks"]
    return out


def run_stage(stage: str, toggle: Callable[[], object] | None, calls: int = CALLS) -> int:
    """Train, then call ``stage`` ``calls`` times between two calls of ``toggle``.

    Returns:
        How many times the stage ran, the warm-up calls included.
    """
    import gc

    import torch
    import torch.nn.functional as F
    from _runner_contenders import Case, contender, make_dataset, mlp, train_contender
    from _runner_targets import MODELS

    check_stages([stage])
    torch.set_num_threads(1)
    dims = MODELS["mlp32"]
    case = Case("mlp32", dims, make_dataset(dims, ITERS_PER_EPOCH), ITERS_PER_EPOCH)
    with contender("camshaft", case) as (runner, _):
        train, _ = train_contender("camshaft", runner, lambda: None)
        train()  # every cache warm: log lines, checkpoints, the hooks' bindings
        loop, model, optim_wrapper = runner.train_loop, runner.model, runner.optim_wrapper
        batch = next(iter(runner.train_dataloader))
        loop._bind_run()
        before, after = loop._iteration_callers
        outputs = model.train_step(batch, optim_wrapper=optim_wrapper)
        inputs, targets = batch
        raw_model = mlp(dims)
        optimizer = torch.optim.SGD(raw_model.parameters(), lr=0.01)
        in_graph = F.cross_entropy(raw_model(inputs), targets)
        preprocessor = model.data_preprocessor

        def raw_step() -> None:
            loss = F.cross_entropy(raw_model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()

        stages: dict[str, Callable[[], Any]] = {
            "empty": lambda: None,
            "raw_step": raw_step,
            "train_step": lambda: model.train_step(batch, optim_wrapper=optim_wrapper),
            "preprocessor": lambda: preprocessor(batch, True),
            "parse_losses": lambda: model.parse_losses({"loss": in_graph}),
            "hooks": lambda: (before(0, batch), after(0, batch, outputs)),
            # batch_idx 9: the 10th iteration of the epoch, which writes a log line
            "hooks_with_log_line": lambda: (before(9, batch), after(9, batch, outputs)),
        }
        call = stages[stage]
        for _ in range(WARM_CALLS):
            call()
        gc.collect()
        if toggle is not None:
            toggle()
        for _ in range(calls):
            call()
        if toggle is not None:
            toggle()
    return WARM_CALLS + calls


def _count(valgrind: str, shim: str, out_dir: str, stage: str) -> int:
    return count_in_window(
        valgrind,
        os.path.join(out_dir, f"callgrind.{stage}"),
        str(Path(__file__).resolve()),
        [stage, shim],
        f"of stage {stage}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help=f"default: all of {', '.join(STAGES)}")
    parser.add_argument("--worker", nargs=2, metavar=("STAGE", "SHIM"), help="internal")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.worker:
        import ctypes

        stage, shim = args.worker
        run_stage(stage, ctypes.CDLL(shim).camshaft_bench_toggle_collect)
        return 0
    stages = list(dict.fromkeys(["empty", *(args.stages or STAGES)]))
    check_stages(stages)
    result: dict[str, Any] = {
        "bench": "runner_stages",
        "config": {"stages": stages, "calls": CALLS},
        "machine": machine_info(),
        "versions": package_versions("torch", "camshaft-runner"),
    }
    tools = find_tools(result)
    if tools is None:
        return 0
    valgrind, compiler = tools
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))
    with tempfile.TemporaryDirectory(prefix="runner_stages_") as out_dir, pool:
        shim = build_shim(compiler, out_dir)
        futures = {stage: pool.submit(_count, valgrind, shim, out_dir, stage) for stage in stages}
        totals = {stage: future.result() for stage, future in futures.items()}
    costs = per_call(totals)
    result["results"] = {
        "instructions_per_call": {stage: round(value) for stage, value in costs.items()},
        "derived": {name: round(value) for name, value in derived(costs).items()},
    }
    emit(result)
    for name, value in {**costs, **derived(costs)}.items():
        print(f"{name:>22}: {value:12,.0f} instructions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
