"""Benchmark: loading a ~1 GB pretrained checkpoint, camshaft vs plain PyTorch.

Variants, each measured in its own fresh process (peak RSS is per process):

* ``raw``       eager model, ``model.load_state_dict(torch.load(path))`` (the baseline)
* ``camshaft``  eager model, ``PretrainedInit(checkpoint=path)(model)``
* ``meta``      model built under ``torch.device("meta")``, ``load_checkpoint(model, path)``
* ``raw_meta``  meta model, ``model.load_state_dict(torch.load(path, mmap=True), assign=True)``
  (the hand-written PyTorch version of the meta path, for reference)

The timed region is the load only (the model is built before the clock starts). Peak
RSS is read right after the load; ``touch_s`` then times one full read of every
weight, which for the meta variants is where the memory-mapped pages are faulted in.

Targets: camshaft time <= 1.0x raw and peak RSS <= raw (eager model); meta time
<= 0.2x raw and meta peak RSS <= 1.2x the checkpoint size.

Run: ``python bench/pretrained_load.py [--size-mb 1024] [--repeats 5]``; prints one
JSON line.
"""

from __future__ import annotations

import argparse
import math
import tempfile
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

LAYERS = 16
VARIANTS = ("raw", "camshaft", "meta", "raw_meta")
TARGETS = {
    "camshaft_vs_raw_time": 1.0,
    "camshaft_vs_raw_peak_rss": 1.0,
    "meta_vs_raw_time": 0.2,
    "meta_peak_rss_vs_checkpoint": 1.2,
}


def _dim(size_mb: float) -> int:
    """Width of LAYERS square Linear layers holding about ``size_mb`` MiB of float32."""
    return max(8, int(math.sqrt(size_mb * MIB / 4 / LAYERS)))


def _build(dim: int) -> Any:
    from torch import nn

    return nn.Sequential(*[nn.Linear(dim, dim) for _ in range(LAYERS)])


def _worker(kind: str, path: str, dim: int) -> None:
    import torch

    if kind == "make":
        torch.manual_seed(0)
        model = _build(dim)
        torch.save(model.state_dict(), path)
        worker_report(checksum=float(model[-1].bias.sum()))
        return
    if kind in ("meta", "raw_meta"):
        with torch.device("meta"):
            model = _build(dim)
    else:
        model = _build(dim)
    rss_before = current_rss_bytes()

    if kind == "raw":
        _, seconds = timed(lambda: model.load_state_dict(torch.load(path, map_location="cpu")))
    elif kind == "camshaft":
        from camshaft.init import PretrainedInit

        _, seconds = timed(lambda: PretrainedInit(checkpoint=path)(model))
    elif kind == "meta":
        from camshaft.init import load_checkpoint

        _, seconds = timed(lambda: load_checkpoint(model, path, strict=True))
    elif kind == "raw_meta":
        _, seconds = timed(
            lambda: model.load_state_dict(
                torch.load(path, map_location="cpu", mmap=True, weights_only=True), assign=True
            )
        )
    else:
        raise SystemExit(f"unknown worker kind {kind!r}; expected make or one of {VARIANTS}")
    peak = peak_rss_bytes()  # before the touch pass, which faults in mmapped pages
    with torch.no_grad():
        total, touch_s = timed(lambda: sum(float(p.sum()) for p in model.parameters()))
    worker_report(
        time_s=seconds,
        touch_s=touch_s,
        peak_rss_bytes=peak,
        rss_before_load_bytes=rss_before,
        checksum=float(model[-1].bias.sum()),
        total=total,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=float, default=1024.0, help="checkpoint size (MiB)")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds per variant")
    parser.add_argument("--warmup", type=int, default=1, help="rounds dropped first")
    parser.add_argument("--dir", default=None, help="folder for the temporary checkpoint")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.path, args.dim)
        return

    dim = _dim(args.size_mb)
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = str(Path(folder) / "pretrained.pth")
        made = run_worker([script, "--worker", "make", "--path", path, "--dim", str(dim)])
        size = Path(path).stat().st_size

        def runner(kind: str) -> Any:
            return lambda: run_worker([script, "--worker", kind, "--path", path, "--dim", str(dim)])

        samples = interleave(
            {kind: runner(kind) for kind in VARIANTS}, repeats=args.repeats, warmup=args.warmup
        )
    for kind, runs in samples.items():
        for run in runs:
            if run["checksum"] != made["checksum"]:
                raise SystemExit(f"{kind} loaded wrong weights: {run['checksum']} != {made}")

    results = {
        kind: {
            "time_s": summarize([r["time_s"] for r in runs]),
            "touch_s": summarize([r["touch_s"] for r in runs]),
            "peak_rss_mib": summarize([r["peak_rss_bytes"] / MIB for r in runs]),
            "rss_before_load_mib": summarize([r["rss_before_load_bytes"] / MIB for r in runs]),
        }
        for kind, runs in samples.items()
    }
    ratios = {
        "camshaft_vs_raw_time": ratio(results["camshaft"]["time_s"], results["raw"]["time_s"]),
        "camshaft_vs_raw_peak_rss": ratio(
            results["camshaft"]["peak_rss_mib"], results["raw"]["peak_rss_mib"]
        ),
        "meta_vs_raw_time": ratio(results["meta"]["time_s"], results["raw"]["time_s"]),
        "meta_peak_rss_vs_checkpoint": results["meta"]["peak_rss_mib"]["median"] / (size / MIB),
        "meta_vs_raw_meta_time": ratio(results["meta"]["time_s"], results["raw_meta"]["time_s"]),
        "camshaft_vs_raw_load_plus_touch": (
            results["camshaft"]["time_s"]["median"] + results["camshaft"]["touch_s"]["median"]
        )
        / (results["raw"]["time_s"]["median"] + results["raw"]["touch_s"]["median"]),
    }
    import torch  # noqa: F401  (so machine_info records torch's thread count)

    emit(
        {
            "bench": "pretrained_load",
            "config": {
                "checkpoint_mib": round(size / MIB, 1),
                "layers": LAYERS,
                "dim": dim,
                "repeats": args.repeats,
                "warmup": args.warmup,
            },
            "results": results,
            "ratios": ratios,
            "targets": upper_bound_targets(ratios, TARGETS),
            "versions": package_versions("torch", "camshaft-init", "safetensors"),
            "machine": machine_info(),
        }
    )


if __name__ == "__main__":
    main()
