"""Evaluator: runs a list of metrics over the same predictions and merges their results.

The validation and test loops hand every batch's predictions to
:meth:`Evaluator.process` and call :meth:`Evaluator.evaluate` once at the end. The
metrics come as instances or config dicts (built from ``METRICS``), alone or in a list.
Two metrics reporting the same name is an error that names it: give one a ``prefix``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from camshaft.preprocess import pseudo_collate
from camshaft.runner._registry import EVALUATOR, METRICS
from camshaft.runner.evaluator._base_metric import BaseMetric

__all__ = ["Evaluator"]


@EVALUATOR.register_module()
class Evaluator:
    """Feeds predictions to several metrics and merges what they compute.

    Args:
        metrics: A metric, a config dict of one (``dict(type='Accuracy')`` or
            ``dict(type=Accuracy)``), or a list of either.

    Raises:
        TypeError: An item is neither a BaseMetric nor a dict, or a config built
            something that is not a BaseMetric.
        ValueError: ``metrics`` is an empty list.

    Example:
        >>> from camshaft.runner.evaluator import BaseMetric
        >>> class Count(BaseMetric):
        ...     def process(self, data_batch, data_samples):
        ...         self.results.extend(data_samples)
        ...     def compute_metrics(self, results):
        ...         return {'count': len(results)}
        >>> evaluator = Evaluator([Count(), Count(prefix='again')])
        >>> evaluator.process(data_samples=[1, 2, 3])
        >>> evaluator.evaluate(size=3)
        {'count': 3, 'again/count': 3}
    """

    def __init__(self, metrics: BaseMetric | Mapping[str, Any] | Sequence[Any]) -> None:
        if isinstance(metrics, (BaseMetric, Mapping)):
            items: Sequence[Any] = [metrics]
        elif isinstance(metrics, Sequence) and not isinstance(metrics, str):
            items = metrics
        else:
            raise TypeError(
                "`metrics` must be a BaseMetric, a config dict or a list of them, got "
                f"{type(metrics).__name__}: {metrics!r:.200}"
            )
        if not items:
            raise ValueError("`metrics` is empty; an Evaluator needs at least one metric")
        self.metrics: list[BaseMetric] = [_build(item, index) for index, item in enumerate(items)]
        self._dataset_meta: dict[str, Any] | None = None

    @property
    def dataset_meta(self) -> dict[str, Any] | None:
        """The dataset's meta information; setting it sets it on every metric."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict[str, Any] | None) -> None:
        self._dataset_meta = dataset_meta
        for metric in self.metrics:
            metric.dataset_meta = dataset_meta

    def process(self, data_samples: Iterable[Any], data_batch: Any = None) -> None:
        """Give one batch of predictions (as a list) to every metric.

        Args:
            data_samples: The model's ``predict`` outputs for the batch (a list,
                or a tuple such as ``(scores, labels)``).
            data_batch: The batch from the dataloader.

        Raises:
            TypeError: ``data_samples`` is not iterable.
        """
        try:
            samples = list(data_samples)
        except TypeError:
            raise TypeError(
                "`data_samples` must be the model's predictions for a batch (a list or "
                f"tuple), got {type(data_samples).__name__}"
            ) from None
        for metric in self.metrics:
            metric.process(data_batch, samples)

    def evaluate(self, size: int) -> dict[str, Any]:
        """Evaluate every metric and merge their results.

        Args:
            size: The dataset's length.

        Returns:
            Every metric's values in one dict.

        Raises:
            ValueError: Two metrics returned the same name (every metric is still
                evaluated and reset first).
        """
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        clash: tuple[str, str, str] | None = None
        for metric in self.metrics:
            owner = type(metric).__name__
            for name, value in metric.evaluate(size).items():
                if name in merged and clash is None:
                    clash = (name, owners[name], owner)
                merged[name] = value
                owners[name] = owner
        if clash is not None:
            name, first, second = clash
            raise ValueError(
                f"metrics {first} and {second} both return {name!r}; give one of them a "
                "distinct `prefix` (e.g. prefix='val2') so their names differ"
            )
        return merged

    def offline_evaluate(
        self, data_samples: Sequence[Any], data: Sequence[Any] | None = None, chunk_size: int = 1
    ) -> dict[str, Any]:
        """Evaluate saved predictions (and, optionally, their input data) in chunks.

        Args:
            data_samples: Every prediction, one per sample.
            data: The matching data samples (collated per chunk with
                ``pseudo_collate``), or None.
            chunk_size: How many samples each ``process`` call receives.

        Returns:
            The merged metrics, as :meth:`evaluate`.

        Raises:
            ValueError: ``data`` and ``data_samples`` differ in length, or
                ``chunk_size`` is not a positive int.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive int, got {chunk_size!r}")
        if data is not None and len(data) != len(data_samples):
            raise ValueError(
                f"`data` and `data_samples` must have the same length, got {len(data)} "
                f"and {len(data_samples)}"
            )
        data_chunks = _chunks(data, chunk_size) if data is not None else None
        size = 0
        for chunk in _chunks(data_samples, chunk_size):
            batch = pseudo_collate(next(data_chunks)) if data_chunks is not None else None
            size += len(chunk)
            self.process(chunk, batch)
        return self.evaluate(size)

    def __repr__(self) -> str:
        return f"Evaluator(metrics=[{', '.join(type(m).__name__ for m in self.metrics)}])"


def _build(item: Any, index: int) -> BaseMetric:
    if isinstance(item, BaseMetric):
        return item
    if isinstance(item, Mapping):
        metric = METRICS.build(item)
        if not isinstance(metric, BaseMetric):
            raise TypeError(
                f"`metrics[{index}]` built a {type(metric).__name__}, which is not a BaseMetric"
            )
        return metric
    raise TypeError(
        f"`metrics[{index}]` must be a BaseMetric or a config dict, got "
        f"{type(item).__name__}: {item!r:.200}"
    )


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
