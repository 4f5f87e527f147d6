"""BaseMetric: the contract every metric follows, and the distributed gathering it gets free.

A metric sees the model's predictions batch by batch in :meth:`BaseMetric.process`,
keeps what it needs in ``self.results``, and turns the whole list into numbers in
:meth:`BaseMetric.compute_metrics`. :meth:`BaseMetric.evaluate` does the rest:

1. counts the results on every rank; none anywhere is an :class:`EmptyResultsError`
   (MMEngine only warns and then fails inside ``compute_metrics``);
2. gathers them on rank 0 with :func:`camshaft.dist.collect_results`, in dataset order
   with the sampler's padding dropped — when results hold one item per sample. A
   metric that appends one item per *batch* (as the "15 minutes" ``Accuracy`` does)
   gets every item: nothing is cut when fewer items than ``size`` were gathered;
3. moves tensors to the CPU and calls ``compute_metrics`` on rank 0 only, checks that
   it returned a dict (else ``TypeError`` naming the metric class), and prefixes the
   names (``'accuracy'`` → ``'cls/accuracy'`` with ``prefix='cls'``);
4. broadcasts the dict to every rank — or, if rank 0 failed, the failure, so no rank
   is left waiting — and clears ``results`` (also when evaluation fails, so the next
   evaluation does not count a batch twice).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from camshaft.dist import (
    all_reduce,
    broadcast_object_list,
    collect_results,
    get_world_size,
    is_main_process,
)

__all__ = ["BaseMetric", "EmptyResultsError"]

_DEVICES = ("cpu", "gpu")


class EmptyResultsError(ValueError):
    """``evaluate`` was called but no rank holds a result: ``process`` never appended one."""


class BaseMetric(ABC):
    """Base class of metrics: ``process`` batches, then ``evaluate`` the dataset.

    Subclasses implement :meth:`process` and :meth:`compute_metrics`; registering
    them in ``METRICS`` lets configs name them (``dict(type='Accuracy')``).

    Args:
        collect_device: Where results travel when gathered: ``'cpu'`` (through CPU
            memory) or ``'gpu'`` (through the process group's device).
        prefix: Put before every metric name as ``'<prefix>/<name>'``; the class's
            ``default_prefix`` when None.
        collect_dir: With ``collect_device='cpu'``, gather through files in this
            directory (visible to every rank) instead of through the process group.

    Raises:
        ValueError: ``collect_device`` is not ``'cpu'``/``'gpu'``, or ``collect_dir``
            is given with ``'gpu'``.
        TypeError: ``prefix`` is not a str or None.

    Example:
        >>> class Accuracy(BaseMetric):
        ...     def process(self, data_batch, data_samples):
        ...         score, gt = data_samples
        ...         self.results.append(
        ...             {'batch_size': len(gt), 'correct': (score.argmax(dim=1) == gt).sum()})
        ...     def compute_metrics(self, results):
        ...         correct = sum(item['correct'] for item in results)
        ...         total = sum(item['batch_size'] for item in results)
        ...         return dict(accuracy=float(100 * correct / total))
        >>> metric = Accuracy()
        >>> metric.process(None, [torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])])
        >>> metric.evaluate(size=2)
        {'accuracy': 50.0}
    """

    default_prefix: ClassVar[str | None] = None

    def __init__(
        self,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        if collect_device not in _DEVICES:
            raise ValueError(
                f"`collect_device` must be 'cpu' or 'gpu', got {collect_device!r} "
                f"(in {type(self).__name__})"
            )
        if collect_dir is not None and collect_device != "cpu":
            raise ValueError(
                f"`collect_dir` ({collect_dir!r}) is only used with collect_device='cpu', "
                f"got collect_device={collect_device!r}"
            )
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"`prefix` must be a str or None, got {type(prefix).__name__}")
        self.collect_device = collect_device
        self.collect_dir = collect_dir
        self.prefix = prefix or self.default_prefix
        self.results: list[Any] = []
        self._dataset_meta: dict[str, Any] | None = None

    @property
    def dataset_meta(self) -> dict[str, Any] | None:
        """The dataset's meta information (class names, ...), set by the runner."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict[str, Any] | None) -> None:
        self._dataset_meta = dataset_meta

    @abstractmethod
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Record what this metric needs from one batch in ``self.results``.

        Args:
            data_batch: The batch from the dataloader (None in offline evaluation
                without data).
            data_samples: The model's ``predict`` outputs for the batch.
        """

    @abstractmethod
    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        """Compute the metrics from every rank's results (rank 0 only).

        Args:
            results: The gathered ``self.results`` of all ranks, in dataset order.

        Returns:
            The metrics by name (without the prefix).
        """

    def evaluate(self, size: int) -> dict[str, Any]:
        """Gather the results of all ranks, compute the metrics, share them, reset.

        Every rank must call it.

        Args:
            size: The dataset's length (results beyond it, the sampler's padding,
                are dropped).

        Returns:
            The metrics, named ``'<prefix>/<name>'`` when there is a prefix, on
            every rank.

        Raises:
            EmptyResultsError: No rank has any result (``process`` never ran, or
                never appended to ``self.results``).
            TypeError: ``compute_metrics`` did not return a dict with str keys, or
                ``size`` is not an int.
            ValueError: ``size`` is negative.
            RuntimeError: On ranks other than 0, when rank 0 failed to compute.
        """
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"`size` must be an int (the dataset length), got {size!r}")
        if size < 0:
            raise ValueError(f"`size` must be >= 0 (the dataset length), got {size}")
        try:
            return self._evaluate(size)
        finally:
            self.results.clear()

    def _evaluate(self, size: int) -> dict[str, Any]:
        name = type(self).__name__
        total = _count_all_ranks(len(self.results))
        if total == 0:
            raise EmptyResultsError(
                f"{name}.evaluate() found no results on any rank: process() was never "
                f"called, or it did not append to self.results. Call {name}.process() "
                "for each batch (the evaluator does it) before evaluate()."
            )
        results = self.results if self.collect_device == "gpu" else _to_cpu(self.results)
        gathered = collect_results(
            results, min(size, total), self.collect_device, tmpdir=self.collect_dir
        )
        if get_world_size() == 1:
            return self._compute(_to_cpu(gathered or []))
        payload: list[Any] = [None]
        failure: BaseException | None = None
        if is_main_process():
            try:
                payload[0] = ("ok", self._compute(_to_cpu(gathered or [])))
            except Exception as exc:  # shared with the other ranks, then re-raised
                failure = exc
                payload[0] = ("error", f"{type(exc).__name__}: {exc}")
        broadcast_object_list(payload)
        if failure is not None:
            raise failure
        status, value = payload[0]
        if status == "error":
            raise RuntimeError(f"{name}.evaluate() failed on rank 0: {value}")
        metrics: dict[str, Any] = value
        return metrics

    def _compute(self, results: list[Any]) -> dict[str, Any]:
        name = type(self).__name__
        metrics = self.compute_metrics(results)
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"{name}.compute_metrics() must return a dict of metric values by name, "
                f"got {type(metrics).__name__}: {metrics!r:.200}"
            )
        bad = [key for key in metrics if not isinstance(key, str)]
        if bad:
            raise TypeError(
                f"{name}.compute_metrics() returned a dict with non-str keys {bad!r}; "
                "metric names must be str"
            )
        if self.prefix:
            return {f"{self.prefix}/{key}": value for key, value in metrics.items()}
        return dict(metrics)


def _count_all_ranks(count: int) -> int:
    """The number of results summed over all ranks (every rank gets the total)."""
    if get_world_size() == 1:
        return count
    total = torch.tensor([count], dtype=torch.int64)
    all_reduce(total, op="sum")
    return int(total.item())


def _to_cpu(data: Any) -> Any:
    """``data`` with every tensor (and anything with ``.cpu()``) moved to the CPU."""
    if isinstance(data, torch.Tensor):
        return data.detach().cpu()
    if isinstance(data, list):
        return [_to_cpu(item) for item in data]
    if isinstance(data, tuple):
        items = [_to_cpu(item) for item in data]
        return type(data)(*items) if hasattr(data, "_fields") else tuple(items)
    if isinstance(data, dict):
        return {key: _to_cpu(value) for key, value in data.items()}
    cpu = getattr(data, "cpu", None)
    return cpu() if callable(cpu) and not isinstance(data, type) else data
