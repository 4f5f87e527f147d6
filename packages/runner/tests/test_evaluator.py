"""Evaluator: metrics as instances or configs, merging, offline evaluation, bad input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from camshaft.registry import RegistryError
from camshaft.runner._registry import EVALUATOR, METRICS
from camshaft.runner.evaluator import BaseMetric, DumpResults, EmptyResultsError, Evaluator


class Accuracy(BaseMetric):
    """The "15 minutes" seed's metric."""

    def process(self, data_batch, data_samples):  # type: ignore[no-untyped-def]
        score, gt = data_samples
        self.results.append(
            {"batch_size": len(gt), "correct": (score.argmax(dim=1) == gt).sum().cpu()}
        )

    def compute_metrics(self, results):  # type: ignore[no-untyped-def]
        total_correct = sum(item["correct"] for item in results)
        total_size = sum(item["batch_size"] for item in results)
        return dict(accuracy=100 * total_correct / total_size)


class Count(BaseMetric):
    """Counts samples; remembers what it was given."""

    def __init__(self, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        self.batches: list[Any] = []

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        self.batches.append(data_batch)
        self.results.extend(data_samples)

    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        return {"count": len(results)}


def test_seed_accuracy_through_the_evaluator_with_a_tuple_prediction() -> None:
    evaluator = Evaluator(dict(type=Accuracy))
    score = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    gt = torch.tensor([0, 1, 1])
    evaluator.process(data_samples=(score, gt), data_batch=None)  # what 'predict' returns
    result = evaluator.evaluate(size=3)
    assert float(result["accuracy"]) == pytest.approx(200 / 3)


def test_metrics_as_instance_config_list_and_registered_name(tmp_path: Path) -> None:
    out = tmp_path / "preds.json"
    evaluator = Evaluator(
        [
            Count(prefix="a"),
            dict(type=Count, prefix="b"),
            dict(type="DumpResults", out_file_path=out),
        ]
    )
    assert [type(m) for m in evaluator.metrics] == [Count, Count, DumpResults]
    evaluator.process([1, 2, 3])
    assert evaluator.evaluate(3) == {"a/count": 3, "b/count": 3}
    assert json.loads(out.read_text()) == [1, 2, 3]
    assert "Count, Count, DumpResults" in repr(evaluator)


def test_evaluator_builds_from_its_registry() -> None:
    evaluator = EVALUATOR.build(dict(type="Evaluator", metrics=Count()))
    assert isinstance(evaluator, Evaluator)
    assert METRICS.get("DumpResults") is DumpResults


def test_process_passes_a_list_and_the_batch() -> None:
    metric = Count()
    evaluator = Evaluator(metric)
    evaluator.process(iter(["x", "y"]), data_batch={"inputs": 1})
    assert metric.results == ["x", "y"]
    assert metric.batches == [{"inputs": 1}]


def test_dataset_meta_reaches_every_metric() -> None:
    first, second = Count(prefix="a"), Count(prefix="b")
    evaluator = Evaluator([first, second])
    evaluator.dataset_meta = {"classes": ("cat",)}
    assert first.dataset_meta == second.dataset_meta == {"classes": ("cat",)}
    assert evaluator.dataset_meta == {"classes": ("cat",)}


def test_duplicate_metric_names_are_an_error_naming_them() -> None:
    first, second = Count(), Count()
    evaluator = Evaluator([first, second])
    evaluator.process([1])
    with pytest.raises(ValueError, match=r"Count and Count both return 'count'.*prefix"):
        evaluator.evaluate(1)
    assert first.results == second.results == []  # every metric was still reset


def test_offline_evaluate_in_chunks_with_data() -> None:
    metric = Count()
    evaluator = Evaluator(metric)
    data = [{"inputs": torch.tensor(i)} for i in range(5)]
    result = evaluator.offline_evaluate(list(range(5)), data=data, chunk_size=2)
    assert result == {"count": 5}
    assert len(metric.batches) == 3
    assert [len(batch["inputs"]) for batch in metric.batches] == [2, 2, 1]  # pseudo-collated


def test_offline_evaluate_without_data() -> None:
    metric = Count()
    assert Evaluator(metric).offline_evaluate(list(range(4)), chunk_size=3) == {"count": 4}
    assert metric.batches == [None, None]


def test_evaluate_before_process_reports_the_metric() -> None:
    with pytest.raises(EmptyResultsError, match=r"Count\.evaluate"):
        Evaluator(Count()).evaluate(3)


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        ([], ValueError, "at least one metric"),
        ("Accuracy", TypeError, "metrics"),
        (3, TypeError, "metrics"),
        ([Count(), 3], TypeError, r"metrics\[1\].*int"),
        ([dict(type=dict)], TypeError, r"metrics\[0\]` built a dict"),
    ],
)
def test_constructor_bad_input(metrics: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Evaluator(metrics)


def test_unregistered_metric_name_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match="Acuracy"):
        Evaluator(dict(type="Acuracy"))


def test_bad_calls() -> None:
    evaluator = Evaluator(Count())
    with pytest.raises(TypeError, match="data_samples"):
        evaluator.process(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        evaluator.offline_evaluate([1, 2], data=[1])
    with pytest.raises(ValueError, match="chunk_size"):
        evaluator.offline_evaluate([1, 2], chunk_size=0)
