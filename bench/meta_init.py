"""Benchmark: a ~1B-parameter model built on ``meta`` and materialised by ``init_weights``.

The model is a ``BaseModule`` holding 24 x [Linear(d, 1.25d), Linear(1.25d, d),
LayerNorm(d)] (d = 4096 gives ~1.007e9 parameters, ~4 GB of float32) with
``init_cfg=[dict(type='Kaiming', layer='Linear'), dict(type='Constant',
layer='LayerNorm', val=1, bias=0)]``. Variants, each in a fresh process per
measurement (peak RSS is per process), interleaved A B C A B C:

* ``eager``     build normally (PyTorch's default init runs in every layer), then
  ``init_weights()`` (the baseline: what users do today)
* ``meta``      build under ``torch.device('meta')``, then ``init_weights(device='cpu')``
* ``raw_meta``  the hand-written PyTorch version of the meta path: build on meta,
  ``to_empty(device='cpu')``, then a ``torch.nn.init`` loop doing what the config asks

The timed region is build + initialisation. Every variant seeds the RNG right before
initialising, so all three must produce the same weights (checked by checksum).

Targets: meta peak RSS <= 1.1x the parameter bytes; meta time <= 0.6x eager.

Run: ``python bench/meta_init.py [--params 1e9] [--repeats 3]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from _common import (
    MIB,
    current_rss_bytes,
    emit,
    interleave,
    machine_info,
    package_versions,
    peak_rss_bytes,
    ratio,
    run_worker,
    summarize,
    timed,
    upper_bound_targets,
    worker_report,
)

BLOCKS = 24
VARIANTS = ("eager", "meta", "raw_meta")
TARGETS = {"meta_peak_rss_vs_param_bytes": 1.1, "meta_vs_eager_time": 0.6}
INIT_CFG = [
    dict(type="Kaiming", layer="Linear"),
    dict(type="Constant", layer="LayerNorm", val=1, bias=0),
]


def _width(params: float) -> int:
    """d (a multiple of 64) so that BLOCKS blocks hold about ``params`` parameters."""
    return max(64, round(math.sqrt(params / BLOCKS / 2.5) / 64) * 64)


def _build(width: int) -> Any:
    from torch import nn

    from camshaft.model import BaseModule

    hidden = width * 5 // 4

    class Stack(BaseModule):
        def __init__(self) -> None:
            super().__init__(INIT_CFG)
            layers: list[nn.Module] = []
            for _ in range(BLOCKS):
                layers += [nn.Linear(width, hidden), nn.Linear(hidden, width), nn.LayerNorm(width)]
            self.layers = nn.Sequential(*layers)

    return Stack()


def _init_by_hand(model: Any) -> None:
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _worker(kind: str, width: int) -> None:
    import torch

    import camshaft.model  # noqa: F401  (imports are not part of the timed region)

    rss_before = current_rss_bytes()

    def build() -> Any:
        if kind == "eager":
            return _build(width)
        with torch.device("meta"):
            return _build(width)

    def initialise(model: Any) -> None:
        torch.manual_seed(0)
        if kind == "eager":
            model.init_weights()
        elif kind == "meta":
            model.init_weights(device="cpu")
        elif kind == "raw_meta":
            model.to_empty(device="cpu")
            _init_by_hand(model)
        else:
            raise SystemExit(f"unknown worker kind {kind!r}; expected one of {VARIANTS}")

    model, build_s = timed(build)
    _, init_s = timed(lambda: initialise(model))
    peak = peak_rss_bytes()
    params = sum(p.numel() for p in model.parameters())
    first, last = model.layers[0].weight, model.layers[-3].weight
    worker_report(
        time_s=build_s + init_s,
        build_s=build_s,
        init_s=init_s,
        peak_rss_bytes=peak,
        rss_before_bytes=rss_before,
        param_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        params=params,
        checksum=[float(first.double().sum()), float(last.double().sum())],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--params", type=float, default=1e9, help="model size (parameters)")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds per variant")
    parser.add_argument("--warmup", type=int, default=1, help="rounds dropped first")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.width)
        return

    width = _width(args.params)
    script = str(Path(__file__).resolve())

    def runner(kind: str) -> Any:
        return lambda: run_worker([script, "--worker", kind, "--width", str(width)], timeout=1800)

    samples = interleave(
        {kind: runner(kind) for kind in VARIANTS}, repeats=args.repeats, warmup=args.warmup
    )
    reference = samples["eager"][0]
    for kind, runs in samples.items():
        for run in runs:
            if run["checksum"] != reference["checksum"]:
                raise SystemExit(f"{kind} initialised different weights: {run} vs {reference}")

    results = {
        kind: {
            field: summarize([r[field] for r in runs]) for field in ("time_s", "build_s", "init_s")
        }
        | {
            "peak_rss_mib": summarize([r["peak_rss_bytes"] / MIB for r in runs]),
            "rss_before_mib": summarize([r["rss_before_bytes"] / MIB for r in runs]),
        }
        for kind, runs in samples.items()
    }
    param_mib = reference["param_bytes"] / MIB
    ratios = {
        "meta_peak_rss_vs_param_bytes": results["meta"]["peak_rss_mib"]["median"] / param_mib,
        "meta_vs_eager_time": ratio(results["meta"]["time_s"], results["eager"]["time_s"]),
        "meta_vs_raw_meta_time": ratio(results["meta"]["time_s"], results["raw_meta"]["time_s"]),
        "meta_vs_eager_peak_rss": ratio(
            results["meta"]["peak_rss_mib"], results["eager"]["peak_rss_mib"]
        ),
        "eager_peak_rss_vs_param_bytes": results["eager"]["peak_rss_mib"]["median"] / param_mib,
    }
    import torch  # noqa: F401  (so machine_info records torch's thread count)

    emit(
        {
            "bench": "meta_init",
            "config": {
                "params": reference["params"],
                "param_mib": round(param_mib, 1),
                "blocks": BLOCKS,
                "width": width,
                "repeats": args.repeats,
                "warmup": args.warmup,
            },
            "results": results,
            "ratios": ratios,
            "targets": upper_bound_targets(ratios, TARGETS),
            "versions": package_versions("torch", "camshaft-init", "camshaft-model"),
            "machine": machine_info(),
        }
    )


if __name__ == "__main__":
    main()
