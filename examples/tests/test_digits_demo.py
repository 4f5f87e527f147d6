"""The digits demo in quick mode: train, resume, test and plot through the `camshaft` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the digits demo needs scikit-learn (requirements-test.txt)")

DIGITS = Path(__file__).resolve().parents[1] / "digits"


def _camshaft(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(DIGITS))
    done = subprocess.run(
        [sys.executable, "-m", "camshaft", *args],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _records(work_dir: Path) -> list[dict[str, float]]:
    (scalars,) = sorted(work_dir.glob("*/vis_data/scalars.json"))[-1:]
    return [json.loads(line) for line in scalars.read_text().splitlines()]


def test_digits_demo_trains_resumes_tests_and_plots(tmp_path: Path) -> None:
    config = str(DIGITS / "config.py")
    quick = ["--cfg-options", "train_cfg.max_epochs=3", "default_hooks.logger.interval=5"]
    out = _camshaft("train", config, "--work-dir", str(tmp_path), *quick)
    assert "best checkpoint" in out.stdout
    records = _records(tmp_path)
    losses = [r["loss"] for r in records if "loss" in r]
    accuracies = [r["accuracy"] for r in records if "accuracy" in r]
    assert len(accuracies) == 3
    assert accuracies[-1] > 80.0, accuracies  # three epochs already learn most digits
    assert sum(losses[-3:]) < sum(losses[:3]), losses
    assert (tmp_path / "epoch_3.pth").is_file()
    best = sorted(tmp_path.glob("best_accuracy_epoch_*.pth"))
    assert len(best) == 1

    resumed = _camshaft(
        "train", config, "--work-dir", str(tmp_path), "--resume",
        "--cfg-options", "train_cfg.max_epochs=4",
    )  # fmt: skip
    assert "resumed from" in resumed.stdout + resumed.stderr
    assert (tmp_path / "epoch_4.pth").is_file()
    assert len([r for r in _records(tmp_path) if "accuracy" in r]) == 1  # only epoch 4 validated

    (best_now,) = sorted(tmp_path.glob("best_accuracy_epoch_*.pth"))  # epoch 4 may be better
    tested = _camshaft("test", config, "--checkpoint", str(best_now), "--work-dir", str(tmp_path))
    assert "accuracy" in tested.stdout
    plotted = _camshaft(
        "plot", str(tmp_path), "--keys", "loss", "accuracy", "--out", str(tmp_path / "c.png")
    )
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "c.png" in plotted.stdout
