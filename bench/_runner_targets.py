"""Ratios, targets and the printed summary of bench/runner_overhead.py.

The targets are issue 8's: extra calls per iteration, time against the raw loop, the
tiny model's overhead against MMEngine's, construction and import time.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import ratio

MODELS = {"mlp784": (784, 256, 10), "mlp32": (32, 32, 2)}
TIME_METRICS = ("per_iter_ms", "steady_per_iter_ms", "typical_iter_ms")
OVERHEADS = {  # time metric -> its overhead (contender - raw, paired by round)
    "per_iter_ms": "overhead_ms_per_iter",
    "steady_per_iter_ms": "steady_overhead_ms_per_iter",
    "typical_iter_ms": "typical_overhead_ms_per_iter",
}
TARGETS = {
    "extra_calls_per_iter": 60,
    "extra_calls_amortised": 120,
    "time_ratio_mlp784": 1.03,
    "overhead_vs_mmengine_mlp32": 0.2,
    "construction_s": 0.2,
    "import_s_beyond_torch": 0.3,
}


def compute_ratios(results: dict[str, Any], kinds: list[str]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    for name in MODELS:
        entry = results[name]
        for kind in kinds[1:]:
            for metric, suffix in zip(TIME_METRICS, ("", "_steady", "_typical"), strict=True):
                ratios[f"{kind}_vs_raw{suffix}_{name}"] = ratio(
                    entry[metric][kind], entry[metric]["raw"]
                )
        floor = entry["per_iter_ms"].get("raw+ckpt+log")
        if floor is not None:  # the floor, for the one table of every bench's ratios
            ratios[f"raw+ckpt+log_vs_raw_{name}"] = ratio(floor, entry["per_iter_ms"]["raw"])
    if "mmengine" in kinds:
        tiny = results["mlp32"]
        for overhead, suffix in zip(OVERHEADS.values(), ("", "_steady", "_typical"), strict=True):
            ratios[f"camshaft_vs_mmengine{suffix}_overhead_mlp32"] = ratio(
                tiny[overhead]["camshaft"], tiny[overhead]["mmengine"]
            )
    return ratios


SPLIT_PARTS = ("core", "logger", "checkpoint", "total")


def cost_split(results: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """Each Runner's overhead over raw (whole ``train()``, ms/iter) split by default hook.

    From the ablations (``<runner>-no-ckpt``: no CheckpointHook; ``<runner>-core``: no
    CheckpointHook and no LoggerHook): ``core`` is the core's overhead, ``logger`` what
    the LoggerHook adds to it, ``checkpoint`` what the CheckpointHook adds to that, and
    ``total`` the default Runner's. Each is a median of per-round differences, so the
    parts add up to ``total`` only roughly. Also each variant's time over raw
    (``*_vs_raw``) and camshaft's part over MMEngine's. The floor ``raw+ckpt+log`` (the
    raw loop saving and logging by hand) is split the same way: its ``checkpoint`` is
    ``raw+ckpt``'s overhead, its ``logger`` what logging adds to that.
    """
    split: dict[str, Any] = {}
    for name in MODELS:
        entry, per_model = results[name], {}
        overhead = {kind: value["median"] for kind, value in entry["overhead_ms_per_iter"].items()}
        raw = entry["per_iter_ms"]["raw"]
        for runner in kinds[1:]:
            core, no_ckpt = overhead.get(f"{runner}-core"), overhead.get(f"{runner}-no-ckpt")
            if core is None or no_ckpt is None:
                continue
            per_model[runner] = {
                "core": core,
                "logger": no_ckpt - core,
                "checkpoint": overhead[runner] - no_ckpt,
                "total": overhead[runner],
                "core_vs_raw": ratio(entry["per_iter_ms"][f"{runner}-core"], raw),
                "no_ckpt_vs_raw": ratio(entry["per_iter_ms"][f"{runner}-no-ckpt"], raw),
                "vs_raw": ratio(entry["per_iter_ms"][runner], raw),
            }
        floor, floor_ckpt = overhead.get("raw+ckpt+log"), overhead.get("raw+ckpt")
        if floor is not None and floor_ckpt is not None:
            per_model["raw+ckpt+log"] = {
                "core": 0.0,
                "logger": floor - floor_ckpt,
                "checkpoint": floor_ckpt,
                "total": floor,
                "vs_raw": ratio(entry["per_iter_ms"]["raw+ckpt+log"], raw),
            }
        if "camshaft" in per_model and "mmengine" in per_model:
            ours, theirs = per_model["camshaft"], per_model["mmengine"]
            per_model["camshaft_vs_mmengine"] = {
                part: ours[part] / theirs[part] if theirs[part] > 0 else None
                for part in SPLIT_PARTS
            }
        split[name] = per_model
    return split


def check_targets(
    results: dict[str, Any],
    ratios: dict[str, float],
    kinds: list[str],
    split: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each target beside the figures it is about (camshaft's decides ``met``).

    With ``split`` (:func:`cost_split`), the two time targets also show the floor's
    figure (``raw+ckpt+log``): what the default hooks' least work alone reads.
    """
    calls = results["calls"]
    has_mm = "mmengine" in kinds
    construction, imports = results["construction_s"], results["import_s"]
    figures: dict[str, dict[str, Any]] = {
        "extra_calls_per_iter": {
            "camshaft": calls["extra_per_iter"]["camshaft"],
            "mmengine": calls["extra_per_iter"].get("mmengine"),
        },
        "extra_calls_amortised": {
            "camshaft": calls["extra_amortised"]["camshaft"],
            "mmengine": calls["extra_amortised"].get("mmengine"),
        },
        "time_ratio_mlp784": {
            "camshaft": ratios["camshaft_vs_raw_mlp784"],
            "camshaft_steady": ratios["camshaft_vs_raw_steady_mlp784"],
            "camshaft_typical": ratios["camshaft_vs_raw_typical_mlp784"],
            "mmengine": ratios.get("mmengine_vs_raw_mlp784"),
        },
        "overhead_vs_mmengine_mlp32": {
            "camshaft": ratios.get("camshaft_vs_mmengine_overhead_mlp32"),
            "camshaft_steady": ratios.get("camshaft_vs_mmengine_steady_overhead_mlp32"),
            "camshaft_typical": ratios.get("camshaft_vs_mmengine_typical_overhead_mlp32"),
        },
        "construction_s": {
            "camshaft": construction["camshaft"]["median"],
            "mmengine": construction["mmengine"]["median"] if has_mm else None,
        },
        "import_s_beyond_torch": {
            "camshaft": imports["camshaft.runner"]["beyond_torch"]["median"],
            "mmengine": (imports["mmengine.runner"]["beyond_torch"]["median"] if has_mm else None),
        },
    }
    floors = {name: (split or {}).get(name, {}).get("raw+ckpt+log") for name in MODELS}
    if floors["mlp784"] is not None:
        figures["time_ratio_mlp784"]["raw+ckpt+log"] = floors["mlp784"]["vs_raw"]
    mm_tiny = (split or {}).get("mlp32", {}).get("mmengine")
    if floors["mlp32"] is not None and mm_tiny is not None and mm_tiny["total"] > 0:
        figures["overhead_vs_mmengine_mlp32"]["raw+ckpt+log"] = (
            floors["mlp32"]["total"] / mm_tiny["total"]
        )
    targets = {}
    for name, limit in TARGETS.items():
        value = figures[name]["camshaft"]
        met = None if value is None else value <= limit
        targets[name] = {"target": limit, **figures[name], "met": met}
    return targets


def print_summary(report: dict[str, Any], kinds: list[str]) -> None:
    """A readable table on stderr (stdout carries only the JSON line)."""
    results, lines = report["results"], []
    lines.append(f"{'medians, ms/iter':34}" + "".join(f"{kind:>11}" for kind in kinds))
    for name in MODELS:
        for metric in TIME_METRICS:
            row = results[name][metric]
            lines.append(
                f"{name + ' ' + metric:34}" + "".join(f"{row[k]['median']:11.4f}" for k in kinds)
            )
    calls = results["calls"]
    for key, label in (
        ("per_iter", "calls per iter"),
        ("amortised", "calls amortised"),
        ("aten_ops_per_iter", "aten ops per iter"),
    ):
        if key in calls:
            lines.append(
                f"{label + ' (' + calls['model'] + ')':34}"
                + "".join(f"{calls[key][k]:11.1f}" for k in kinds)
            )
    columns = ("camshaft", "mmengine", "raw+ckpt+log")  # the last: the floor, if timed
    lines.append(f"{'target':34}" + "".join(f"{c:>13}" for c in (*columns, "target")) + "  met")
    for name, target in report["targets"].items():
        cells = "".join(
            f"{'-' if target.get(c) is None else f'{target[c]:.4g}':>13}" for c in columns
        )
        lines.append(f"{name:34}{cells}{target['target']:>13}  {target['met']}")
    lines.extend(_split_lines(report.get("cost_split", {})))
    print("\n".join(lines), file=sys.stderr, flush=True)


def _split_lines(split: dict[str, Any]) -> list[str]:
    """The cost split as rows: model and runner, then each part in ms/iter."""
    lines = [f"{'overhead over raw, ms/iter':34}" + "".join(f"{p:>11}" for p in SPLIT_PARTS)]
    for name, per_model in split.items():
        for runner, parts in per_model.items():
            cells = "".join(
                "          -" if parts[p] is None else f"{parts[p]:11.4f}" for p in SPLIT_PARTS
            )
            lines.append(f"{name + ' ' + runner:34}{cells}")
    return lines if len(lines) > 1 else []
