"""DumpResults: save every prediction to a JSON file (MMEngine writes a pickle).

A pickle of predictions needs the classes that made it to be read back, and running
it runs code. camshaft writes JSON instead, which any tool can read:

* tensors and numpy arrays become (nested) lists, numpy and tensor scalars numbers;
* tuples become lists; dict keys must be str, int, float, bool or None (JSON turns
  them into strings); objects with a ``to_dict()`` method are saved as that dict;
* NaN and infinity are written as ``NaN``/``Infinity``, which Python's ``json`` reads
  (strict JSON parsers do not);
* anything else is a ``TypeError`` naming where in the results it sits.

The whole file is encoded before anything is written, then written to a temporary
file and renamed, so a failure never leaves a half-written file. Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camshaft.runner._registry import METRICS
from camshaft.runner.evaluator._base_metric import BaseMetric, _to_cpu
from camshaft.runner.logging import print_log

__all__ = ["DumpResults"]

_SUFFIXES = (".json",)


@METRICS.register_module()
class DumpResults(BaseMetric):
    """Write the model's predictions, in dataset order, to a JSON file.

    Args:
        out_file_path: The ``.json`` file to write (parent folders are created).
        collect_device: ``'cpu'`` or ``'gpu'``, see :class:`BaseMetric`.
        collect_dir: See :class:`BaseMetric`.

    Raises:
        ValueError: ``out_file_path`` does not end in ``.json``.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), 'preds.json')
        >>> dump = DumpResults(out_file_path=path)
        >>> dump.process(None, [{'label': torch.tensor(3)}, {'label': torch.tensor(1)}])
        >>> dump.evaluate(size=2)
        {}
        >>> open(path).read()
        '[{"label": 3}, {"label": 1}]'
    """

    def __init__(
        self,
        out_file_path: str | os.PathLike[str],
        collect_device: str = "cpu",
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, collect_dir=collect_dir)
        path = Path(out_file_path)
        if path.suffix.lower() not in _SUFFIXES:
            raise ValueError(
                f"`out_file_path` must end in '.json' (DumpResults writes JSON, not "
                f"pickle), got {str(out_file_path)!r}"
            )
        self.out_file_path = path

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep every prediction of the batch (moved to the CPU), one result per sample."""
        self.results.extend(_to_cpu(list(data_samples)))

    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        """Write ``results`` to ``out_file_path``; report no metric.

        Raises:
            TypeError: A prediction holds something JSON cannot represent.
        """
        text = json.dumps(
            [_jsonable(item, f"results[{index}]") for index, item in enumerate(results)]
        )
        _write_atomic(self.out_file_path, text)
        print_log(f"Results have been saved to {self.out_file_path}.", logger="current")
        return {}


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as JSON types; ``where`` names it in errors."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if key is not None and not isinstance(key, (str, int, float, bool)):
                raise TypeError(
                    f"{where} has a dict key of type {type(key).__name__} ({key!r:.50}); "
                    "JSON keys must be str, int, float, bool or None"
                )
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict(), f"{where}.to_dict()")
    raise TypeError(
        f"{where} is a {type(value).__name__}, which DumpResults cannot write as JSON; "
        "store tensors, arrays, numbers, str, lists or dicts in the predictions"
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
