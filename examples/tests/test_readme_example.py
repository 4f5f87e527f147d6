"""The README's 20-line example runs as written and trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    match = re.search(r"## A training run in 20 lines\n\n```python\n(.*?)```", text, re.S)
    assert match is not None, "the README lost its example section"
    code = match.group(1)
    assert len(code.strip().splitlines()) <= 22
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    runner = namespace["runner"]
    assert runner.iter == 48  # type: ignore[attr-defined]
    assert (tmp_path / "work_dirs" / "toy" / "epoch_3.pth").is_file()
    runner.close()  # type: ignore[attr-defined]
