"""Gather the benchmarks' JSON lines into one table and ``bench/results.json``.

``nox -s bench`` runs every script in ``bench/``, keeps each one's JSON line, and
calls ``python bench/_table.py LINES_FILE``. For every benchmark the table lists
each ratio (camshaft against the baseline measured in the same run) with the target
the issue set for it, and, where a benchmark reports full target records (the
runner overhead), camshaft's figure, MMEngine's, the target and whether it is met.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def _flat(ratios: dict[str, Any]) -> dict[str, Any]:
    """Ratios with one level of nesting flattened (``case.camshaft_vs_hand``)."""
    flat: dict[str, Any] = {}
    for key, value in ratios.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": item for sub, item in value.items()})
        else:
            flat[key] = value
    return flat


def _target_of(key: str, targets: dict[str, Any]) -> Any:
    """A plain-number target for ``key``, also matched by its last dotted part."""
    for name in (key, key.rsplit(".", 1)[-1]):
        if isinstance(targets.get(name), int | float):
            return targets[name]
    return None


def rows_of(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """``(bench, measurement, camshaft, baseline, ratio, target (met))`` rows of one result."""
    name = str(result.get("bench", "?"))
    ratios = _flat(result.get("ratios") or {})
    targets = result.get("targets") or {}
    rows = []
    for key, value in sorted(ratios.items()):
        if isinstance(targets.get(key), dict):
            continue  # shown with its record below
        target = _target_of(key, targets)
        rows.append((name, key, "", "", _num(value), "" if target is None else _num(target)))
    for key, record in sorted(targets.items()):
        if not isinstance(record, dict):
            continue
        met = record.get("met")
        flag = "" if met is None else (" met" if met else " NOT met")
        limit = record.get("target", record.get("max", record.get("min", "")))
        bound = "≥ " if "min" in record and "target" not in record else "≤ "
        value = record.get("camshaft", record.get("value", ""))
        ratio = "" if value != "" else ratios.get(key, "")
        baseline = record.get("mmengine", record.get("raw", ""))
        rows.append(
            (name, key, _num(value), _num(baseline), _num(ratio), f"{bound}{_num(limit)}{flag}")
        )
    return rows


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(results: list[dict[str, Any]]) -> str:
    """The table as aligned text."""
    header = ("bench", "measurement", "camshaft", "baseline", "ratio", "target")
    rows = [header] + [row for result in results for row in rows_of(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Read JSON lines from the file given, print the table, write ``bench/results.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python bench/_table.py LINES_FILE", file=sys.stderr)
        return 2
    results = []
    for line in Path(args[0]).read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            results.append(json.loads(line))
    (ROOT / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(render(results))
    print(f"\n{len(results)} benchmarks; all figures in {ROOT / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
