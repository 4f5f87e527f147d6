"""Validation and test loops.

Both run under ``torch.no_grad()`` (and autocast when ``fp16=True``: float16 on
CUDA, bfloat16 on CPU, where float16 autocast is not supported), feed every batch's
outputs to the evaluator, and return its metrics. They leave every random number
generator as they found it, so validating during training never changes what
training draws — a resumed run that does not repeat a validation still matches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from camshaft.runner._autocast import autocast
from camshaft.runner._registry import LOOPS
from camshaft.runner.checkpoint import get_rng_state, set_rng_state
from camshaft.runner.loops._base import BaseLoop

__all__ = ["ValLoop", "TestLoop"]


class _EvalLoop(BaseLoop):
    """Shared body of :class:`ValLoop` and :class:`TestLoop`."""

    mode = "val"

    def __init__(
        self,
        runner: Any,
        dataloader: DataLoader | Mapping[str, Any],
        evaluator: Any,
        fp16: bool = False,
    ) -> None:
        super().__init__(runner, dataloader)
        if not isinstance(fp16, bool):
            raise TypeError(f"`fp16` must be a bool, got {type(fp16).__name__}: {fp16!r}")
        self.evaluator = runner.build_evaluator(evaluator)
        self.fp16 = fp16
        dataset = getattr(self.dataloader, "dataset", None)
        meta = getattr(dataset, "metainfo", None)
        if meta is not None:
            self.evaluator.dataset_meta = meta

    def run(self) -> dict[str, Any]:
        """Run over the whole dataloader and return the evaluator's metrics."""
        runner = self._runner
        mode = self.mode
        rng = get_rng_state()
        runner.call_hook(f"before_{mode}")
        runner.call_hook(f"before_{mode}_epoch")
        runner.model.eval()
        step = runner.model.val_step if mode == "val" else runner.model.test_step
        with torch.no_grad(), self._autocast():
            for batch_idx, data_batch in enumerate(self.dataloader):
                runner.call_hook(f"before_{mode}_iter", batch_idx=batch_idx, data_batch=data_batch)
                outputs = step(data_batch)
                self.evaluator.process(data_samples=_as_list(outputs), data_batch=data_batch)
                runner.call_hook(
                    f"after_{mode}_iter",
                    batch_idx=batch_idx,
                    data_batch=data_batch,
                    outputs=outputs,
                )
        metrics = self.evaluator.evaluate(_dataset_size(self.dataloader))
        # Restored before the closing stages, so a checkpoint saved there (CheckpointHook
        # saves after the validation that follows an epoch) holds the training RNGs.
        set_rng_state(rng)
        runner.call_hook(f"after_{mode}_epoch", metrics=metrics)
        runner.call_hook(f"after_{mode}")
        return dict(metrics)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.fp16:
            return contextlib.nullcontext()
        device = _model_device(self._runner.model)
        dtype = torch.float16 if device == "cuda" else torch.bfloat16
        return autocast(device, dtype)


@LOOPS.register_module()
class ValLoop(_EvalLoop):
    """Validate: ``model.val_step`` on every batch, then ``evaluator.evaluate``.

    Args:
        runner: The runner.
        dataloader: A DataLoader or its config.
        evaluator: An ``Evaluator``, a metric, a metric config, a list of them, or
            ``dict(metrics=...)``.
        fp16: Run under autocast (float16 on CUDA, bfloat16 on CPU).
    """

    mode = "val"


@LOOPS.register_module()
class TestLoop(_EvalLoop):
    """Test: ``model.test_step`` on every batch, then ``evaluator.evaluate``.

    Args:
        runner: The runner.
        dataloader: A DataLoader or its config.
        evaluator: As for :class:`ValLoop`.
        fp16: Run under autocast (float16 on CUDA, bfloat16 on CPU).
    """

    mode = "test"


def _as_list(outputs: Any) -> Sequence[Any]:
    if isinstance(outputs, Sequence) and not isinstance(outputs, str | bytes):
        return outputs
    return [outputs]


def _dataset_size(loader: DataLoader) -> int:
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        return len(loader)


def _model_device(model: torch.nn.Module) -> str:
    for parameter in model.parameters():
        return parameter.device.type
    return "cpu"
