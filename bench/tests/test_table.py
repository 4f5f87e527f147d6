"""The bench table: one row per ratio and per target record, and results.json written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_table", Path(__file__).parents[1] / "_table.py"
)
assert _spec is not None
assert _spec.loader is not None
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)


def test_rows_cover_ratios_and_target_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = [
        {
            "bench": "init_speed",
            "ratios": {"camshaft_vs_raw": 0.996},
            "targets": {"camshaft_vs_raw": 1.05},
        },
        {
            "bench": "runner_overhead",
            "ratios": {"camshaft_vs_raw_mlp784": 1.08},
            "targets": {
                "construction_s": {"camshaft": 0.002, "mmengine": 0.02, "target": 0.2, "met": True}
            },
        },
    ]
    lines = tmp_path / "lines.jsonl"
    lines.write_text("noise\n" + "\n".join(json.dumps(r) for r in results) + "\n")
    monkeypatch.setattr(table, "ROOT", tmp_path)
    assert table.main([str(lines)]) == 0
    assert json.loads((tmp_path / "results.json").read_text()) == results
    text = table.render(results)
    assert "init_speed       camshaft_vs_raw" in text
    assert "0.996" in text
    assert "1.05" in text
    assert "0.2 met" in text


def test_usage_error() -> None:
    assert table.main([]) == 2
