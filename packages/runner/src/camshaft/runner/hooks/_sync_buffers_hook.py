"""SyncBuffersHook: average floating-point buffers across ranks in distributed training.

Each rank updates buffers such as BatchNorm's running mean and variance from its own
data, so they drift apart. After each training epoch, and before a validation that
follows training without an epoch end in between (iteration-based runs), the hook
replaces every floating-point buffer of ``runner.unwrapped_model`` by its mean over
the ranks. Integer buffers (``num_batches_tracked``) are left alone. Outside a
distributed run the hook does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["SyncBuffersHook"]


@HOOKS.register_module()
class SyncBuffersHook(Hook):
    """Average the model's floating-point buffers over all ranks.

    Reads ``runner.distributed``, ``runner.unwrapped_model`` and ``runner.iter``.
    One ``all_reduce`` runs per (device, dtype) group of buffers.

    Example:
        >>> SyncBuffersHook().get_triggered_stages()
        ['after_train_epoch', 'before_val_epoch']

        In a config: ``custom_hooks = [dict(type='SyncBuffersHook')]``.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._synced_at_iter: int | None = None

    def after_train_epoch(self, runner: Any) -> None:
        """Average the buffers when the run is distributed."""
        if runner.distributed:
            self._sync(runner)

    def before_val_epoch(self, runner: Any) -> None:
        """Average the buffers unless they were averaged since the last training iteration."""
        if runner.distributed and self._synced_at_iter != runner.iter:
            self._sync(runner)

    def _sync(self, runner: Any) -> None:
        _average_floating_buffers(runner.unwrapped_model)
        self._synced_at_iter = runner.iter


def _average_floating_buffers(module: nn.Module) -> None:
    """Replace each floating-point buffer of ``module`` by its mean over the ranks.

    Every rank must call it with the same model structure. Buffers are flattened into
    one tensor per (device, dtype) for the reduction.

    Args:
        module: The model whose buffers to average, in place.
    """
    import torch

    from camshaft.dist import all_reduce

    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for buffer in module.buffers():
        if buffer.is_floating_point():
            groups.setdefault((buffer.device, buffer.dtype), []).append(buffer)
    with torch.no_grad():
        for buffers in groups.values():
            flat = torch.cat([buffer.reshape(-1) for buffer in buffers])
            all_reduce(flat, op="mean")
            chunks = flat.split([buffer.numel() for buffer in buffers])
            for buffer, chunk in zip(buffers, chunks, strict=True):
                buffer.copy_(chunk.view_as(buffer))
