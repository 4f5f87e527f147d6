"""BaseMetric and DumpResults: the seeds' Accuracy, gathering, prefixes, bad input.

The two-process test runs this file as a script (``python test_metric.py --dist OUT``),
which forks two gloo workers; each writes what ``evaluate`` returned as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from camshaft.runner._registry import METRICS
from camshaft.runner.evaluator import BaseMetric, DumpResults, EmptyResultsError

# --- the metric from the "15 minutes" seed, imports changed only -----------------------


class Accuracy(BaseMetric):
    def process(self, data_batch, data_samples):  # type: ignore[no-untyped-def]
        score, gt = data_samples
        self.results.append(
            {
                "batch_size": len(gt),
                "correct": (score.argmax(dim=1) == gt).sum().cpu(),
            }
        )

    def compute_metrics(self, results):  # type: ignore[no-untyped-def]
        total_correct = sum(item["correct"] for item in results)
        total_size = sum(item["batch_size"] for item in results)
        return dict(accuracy=100 * total_correct / total_size)


class Collect(BaseMetric):
    """One result per sample; reports them in the order compute_metrics sees them."""

    default_prefix = "collect"

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        return {"order": [int(item["index"]) for item in results]}


class ReturnsList(BaseMetric):
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        return [0.5]  # type: ignore[return-value]


def _batches(
    seed: int = 0, batches: int = 3, size: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, 3, generator=generator),
            torch.randint(0, 3, (size,), generator=generator),
        )
        for _ in range(batches)
    ]


def test_seed_accuracy_runs_unchanged() -> None:
    metric = Accuracy()
    batches = _batches()
    for score, gt in batches:
        metric.process(None, [score, gt])
    correct = sum(int((s.argmax(1) == g).sum()) for s, g in batches)
    result = metric.evaluate(size=12)
    assert list(result) == ["accuracy"]
    assert float(result["accuracy"]) == pytest.approx(100 * correct / 12)
    assert metric.results == []  # cleared for the next evaluation


def test_seed_accuracy_builds_from_a_config_with_the_class_as_type() -> None:
    metric = METRICS.build(dict(type=Accuracy))
    assert isinstance(metric, Accuracy)
    assert metric.collect_device == "cpu"
    assert metric.prefix is None


def test_prefix_and_default_prefix() -> None:
    samples = [{"index": 0}, {"index": 1}]
    plain = Collect(prefix="val")
    plain.process(None, samples)
    assert plain.evaluate(2) == {"val/order": [0, 1]}
    default = Collect()
    default.process(None, samples)
    assert default.evaluate(2) == {"collect/order": [0, 1]}


def test_padding_beyond_size_is_dropped() -> None:
    metric = Collect()
    metric.process(None, [{"index": i % 5} for i in range(6)])  # the last one pads
    assert metric.evaluate(5) == {"collect/order": [0, 1, 2, 3, 4]}


def test_results_are_moved_to_cpu_and_detached() -> None:
    seen: list[Any] = []

    class Spy(Collect):
        def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
            seen.extend(results)
            return {}

    weight = torch.ones(2, requires_grad=True)
    metric = Spy()
    metric.process(None, [{"index": 0, "pred": weight * 2}])
    metric.evaluate(1)
    assert seen[0]["pred"].requires_grad is False


def test_dataset_meta() -> None:
    metric = Collect()
    assert metric.dataset_meta is None
    metric.dataset_meta = {"classes": ["a", "b"]}
    assert metric.dataset_meta == {"classes": ["a", "b"]}


# --- bad input -------------------------------------------------------------------------


def test_evaluate_before_process_is_an_error_naming_the_metric() -> None:
    with pytest.raises(
        EmptyResultsError, match=r"Accuracy\.evaluate\(\).*process\(\) was never called"
    ):
        Accuracy().evaluate(10)
    assert issubclass(EmptyResultsError, ValueError)


def test_compute_metrics_returning_a_non_dict_is_a_type_error() -> None:
    metric = ReturnsList()
    metric.process(None, [])
    with pytest.raises(
        TypeError, match=r"ReturnsList\.compute_metrics\(\) must return a dict.*got list"
    ):
        metric.evaluate(1)
    assert metric.results == []  # a failed evaluation does not leave stale results


def test_compute_metrics_with_non_str_keys_is_a_type_error() -> None:
    class IntKeys(ReturnsList):
        def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
            return {1: 0.5}  # type: ignore[dict-item]

    metric = IntKeys()
    metric.process(None, [])
    with pytest.raises(TypeError, match=r"IntKeys.*non-str keys \[1\]"):
        metric.evaluate(1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(collect_device="cuda"), ValueError, "collect_device"),
        (dict(collect_device="gpu", collect_dir="/tmp/x"), ValueError, "collect_dir"),
        (dict(prefix=3), TypeError, "prefix"),
    ],
)
def test_constructor_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Collect(**kwargs)


def test_evaluate_size_bad_input() -> None:
    metric = Collect()
    metric.process(None, [{"index": 0}])
    with pytest.raises(TypeError, match="size"):
        metric.evaluate("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        metric.evaluate(-1)


def test_base_metric_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BaseMetric()  # type: ignore[abstract]


# --- DumpResults -----------------------------------------------------------------------


class Record:
    def __init__(self, label: int) -> None:
        self.label = label

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label}


def test_dump_results_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "out" / "preds.json"
    dump = METRICS.build(dict(type="DumpResults", out_file_path=str(path)))
    dump.process(None, [{"scores": torch.tensor([0.5, 0.25]), "label": np.int64(2)}])
    dump.process(None, [{"scores": np.array([1.0]), "meta": ("a", None)}, Record(4)])
    assert dump.evaluate(size=3) == {}
    assert json.loads(path.read_text()) == [
        {"scores": [0.5, 0.25], "label": 2},
        {"scores": [1.0], "meta": ["a", None]},
        {"label": 4},
    ]
    assert [p.name for p in path.parent.iterdir()] == ["preds.json"]  # no temp file left


def test_dump_results_refuses_pickle_paths() -> None:
    with pytest.raises(ValueError, match=r"'\.json'.*not pickle.*preds\.pkl"):
        DumpResults(out_file_path="preds.pkl")


def test_dump_results_unserialisable_value_names_where_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    path.write_text("[]")
    dump = DumpResults(out_file_path=path)
    dump.process(None, [{"ok": 1}, {"bad": {"inner": object()}}])
    with pytest.raises(TypeError, match=r"results\[1\]\['bad'\]\['inner'\] is a object"):
        dump.evaluate(size=2)
    assert path.read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["preds.json"]


# --- two processes ----------------------------------------------------------------------


def test_evaluate_across_two_processes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, __file__, "--dist", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # its own process group: a kill reaches the workers
    )
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"distributed evaluation hung and was killed:\n{output}")
    assert process.returncode == 0, output
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    expected_accuracy = _single_process_accuracy()
    for rank, report in enumerate(reports):
        # 5 samples on 2 ranks: rank 1 got sample 0 again as padding; it is dropped.
        assert report["per_sample"] == {"collect/order": [0, 1, 2, 3, 4]}, rank
        assert report["accuracy"] == pytest.approx(expected_accuracy), rank
        assert report["one_rank_empty"] == {"collect/order": [0, 1]}, rank
        assert report["all_empty"].startswith("EmptyResultsError"), rank
    assert reports[0]["rank0_failure"].startswith("TypeError: ReturnsList.compute_metrics()")
    assert reports[1]["rank0_failure"].startswith("RuntimeError: ReturnsList.evaluate() failed")


def _single_process_accuracy() -> float:
    metric = Accuracy()
    for score, gt in _batches(seed=1, batches=4, size=2):
        metric.process(None, [score, gt])
    return float(metric.evaluate(8)["accuracy"])


def _dist_worker(rank: int, world_size: int, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
    report: dict[str, Any] = {}
    try:
        dataset: Any = range(5)
        sampler = DistributedSampler[int](
            dataset, num_replicas=world_size, rank=rank, shuffle=False
        )
        metric = Collect()
        for index in sampler:
            metric.process(None, [{"index": torch.tensor(index)}])
        report["per_sample"] = metric.evaluate(5)

        accuracy = Accuracy()
        for score, gt in _batches(seed=1, batches=4, size=2)[rank::world_size]:
            accuracy.process(None, [score, gt])
        report["accuracy"] = float(accuracy.evaluate(8)["accuracy"])

        lonely = Collect()
        if rank == 0:
            lonely.process(None, [{"index": 0}, {"index": 1}])
        report["one_rank_empty"] = lonely.evaluate(2)

        for key, failing in (("all_empty", Collect()), ("rank0_failure", ReturnsList())):
            if key == "rank0_failure":
                failing.process(None, [])
            try:
                failing.evaluate(2)
            except Exception as exc:
                report[key] = f"{type(exc).__name__}: {exc}"
        dist.barrier()
    finally:
        dist.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(report))


def _dist_main(out_dir: str, world_size: int = 2) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    mp.start_processes(
        _dist_worker, args=(world_size, out_dir), nprocs=world_size, start_method="fork"
    )


if __name__ == "__main__" and sys.argv[1:2] == ["--dist"]:
    _dist_main(sys.argv[2])
