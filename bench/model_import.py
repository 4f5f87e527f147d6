"""Benchmark: what ``import camshaft.model`` costs on top of ``import torch``.

Each measurement is a fresh interpreter, so nothing is cached in ``sys.modules``.
Variants, interleaved (A B A B ...), warm-up rounds dropped:

* ``torch``     ``python -c "import torch"`` (baseline)
* ``camshaft``  ``python -c "import torch; import camshaft.model"``

Reported: wall time of each process (median/min/max); the difference of the medians
and the median of the per-round differences (target: <= 0.15 s); and, measured inside
the same processes with ``perf_counter``, the time of the ``import camshaft.model``
statement alone (the same quantity without interpreter start-up noise, which on a
shared machine is far larger than the figure) and the modules it added beyond torch's.

Run: ``python bench/model_import.py [--repeats 15] [--warmup 2]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _common import emit, interleave, machine_info, package_versions, ratio, summarize, timed

TARGET_S = 0.15

_PROBE = """
import json, sys, time
start = time.perf_counter()
import torch
after_torch = time.perf_counter()
before = set(sys.modules)
{extra}
end = time.perf_counter()
print(json.dumps({{"torch_s": after_torch - start, "extra_s": end - after_torch,
                  "added": sorted(set(sys.modules) - before)}}))
"""


def run_probe(extra: str) -> dict[str, Any]:
    """Run the probe in a fresh interpreter; add its wall time to the probe's JSON."""
    code = _PROBE.format(extra=extra)

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )

    proc, wall = timed(call)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    samples = interleave(
        {
            "torch": lambda: run_probe("pass"),
            "camshaft": lambda: run_probe("import camshaft.model"),
        },
        repeats=args.repeats,
        warmup=args.warmup,
    )
    wall = {name: summarize([s["wall_s"] for s in runs]) for name, runs in samples.items()}
    statement = summarize([s["extra_s"] for s in samples["camshaft"]])
    added = samples["camshaft"][-1]["added"]
    difference = wall["camshaft"]["median"] - wall["torch"]["median"]
    # Round by round (A then B, back to back), so load that drifts across rounds cancels.
    paired = summarize(
        [
            b["wall_s"] - a["wall_s"]
            for a, b in zip(samples["torch"], samples["camshaft"], strict=True)
        ]
    )
    emit(
        {
            "bench": "model_import",
            "results_s": {"wall": wall, "import_camshaft_model_statement": statement},
            "difference_s": difference,
            "paired_difference_s": paired,
            "ratios": {"camshaft_vs_torch_wall": ratio(wall["camshaft"], wall["torch"])},
            "modules_added": len(added),
            "camshaft_modules_added": [name for name in added if name.startswith("camshaft")],
            "targets": {
                "difference_s": TARGET_S,
                "paired_difference_s": TARGET_S,
                "import_camshaft_model_statement": TARGET_S,
            },
            "met": {
                "difference_s": difference <= TARGET_S,
                "paired_difference_s": paired["median"] <= TARGET_S,
                "import_camshaft_model_statement": statement["median"] <= TARGET_S,
            },
            "machine": machine_info(),
            "versions": package_versions(
                "torch", "camshaft-registry", "camshaft-init", "camshaft-model"
            ),
        }
    )


if __name__ == "__main__":
    main()
