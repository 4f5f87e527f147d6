"""camshaft.runner.evaluator — metrics and the evaluator that runs them.

* :class:`BaseMetric`: subclass it with ``process`` (per batch, append to
  ``self.results``) and ``compute_metrics`` (on rank 0, from every rank's results);
  ``evaluate(size)`` gathers, computes, prefixes and shares the numbers.
* :class:`Evaluator` (in ``EVALUATOR``): one or several metrics, given as instances or
  config dicts built from ``METRICS``.
* :class:`DumpResults` (in ``METRICS``): saves the predictions as JSON, not pickle.
* :class:`EmptyResultsError`: ``evaluate`` found nothing that ``process`` recorded.

Example:
    >>> from camshaft.runner.evaluator import BaseMetric, Evaluator
    >>> class Mean(BaseMetric):
    ...     def process(self, data_batch, data_samples):
    ...         self.results.extend(data_samples)
    ...     def compute_metrics(self, results):
    ...         return {'mean': sum(results) / len(results)}
    >>> evaluator = Evaluator(Mean(prefix='val'))
    >>> evaluator.process([1.0, 2.0, 3.0])
    >>> evaluator.evaluate(size=3)
    {'val/mean': 2.0}
"""

from camshaft.runner.evaluator._base_metric import BaseMetric, EmptyResultsError
from camshaft.runner.evaluator._dump_results import DumpResults
from camshaft.runner.evaluator._evaluator import Evaluator

__all__ = ["BaseMetric", "Evaluator", "DumpResults", "EmptyResultsError"]
