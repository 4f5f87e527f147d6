"""Swap batch norm layers for ``nn.SyncBatchNorm`` before distributed training, and back.

``nn.SyncBatchNorm`` needs a process group to run in training mode on several
devices, so a model trained with it is reverted to plain batch norm for single-device
evaluation, export or CPU inference. ``SyncBatchNorm`` accepts any input of two or
more dimensions, while ``BatchNorm1d/2d/3d`` each accept only their own; the
reverted layer is :class:`_BatchNormXd`, which accepts any of them, so a model works
after the round trip on whatever inputs it took before.

What :func:`revert_sync_batchnorm` promises: the new layer holds the *same*
parameter and buffer tensors as the old one (weight, bias, running mean and
variance, ``num_batches_tracked``), so values, device, dtype and ``requires_grad``
are unchanged and an optimizer built over the old parameters still updates the new
layer. Its hyper-parameters, training flag and ``qconfig`` are carried over; hooks
registered on the old layer are not.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["convert_sync_batchnorm", "revert_sync_batchnorm"]


class _BatchNormXd(_BatchNorm):
    """Batch norm over ``(N, C, *)`` inputs of any number of trailing dimensions.

    ``BatchNorm1d``, ``BatchNorm2d`` and ``BatchNorm3d`` differ only in the input
    shape they accept; this layer accepts what ``SyncBatchNorm`` accepts.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects an input of shape (N, C, ...) with at "
                f"least 2 dimensions, got {input.dim()} (shape {tuple(input.shape)})"
            )


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` with an equivalent batch norm.

    The replacement behaves like ``BatchNorm1d/2d/3d`` for 2-D to 5-D inputs and
    shares the old layer's parameters and running statistics (no copy). The search
    is recursive; a layer shared by several parents is replaced by one new layer.

    Args:
        module: A model, or a single ``nn.SyncBatchNorm``.

    Returns:
        ``module`` itself with its sync layers replaced, or the new layer when
        ``module`` is an ``nn.SyncBatchNorm``.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
        >>> model = convert_sync_batchnorm(model)
        >>> type(model[1]).__name__
        'SyncBatchNorm'
        >>> model = revert_sync_batchnorm(model)
        >>> isinstance(model[1], torch.nn.SyncBatchNorm)
        False
        >>> tuple(model.eval()(torch.randn(2, 3, 5, 5)).shape)
        (2, 4, 5, 5)
    """
    _check_module("revert_sync_batchnorm", module)
    return _revert(module, {})


def convert_sync_batchnorm(
    module: nn.Module, implementation: str = "torch", process_group: object = None
) -> nn.Module:
    """Replace every batch norm layer in ``module`` with ``nn.SyncBatchNorm``.

    Delegates to ``nn.SyncBatchNorm.convert_sync_batchnorm``, which needs no
    initialised process group to convert; the group is needed only to train.

    Args:
        module: A model, or a single batch norm layer.
        implementation: Which SyncBatchNorm to use. Only ``'torch'`` is supported
            (MMEngine also accepts ``'mmcv'``). Defaults to ``'torch'``.
        process_group: The ``torch.distributed`` process group to synchronise
            statistics over; ``None`` uses the whole world. Defaults to None.

    Returns:
        ``module`` with its batch norm layers replaced, or a new
        ``nn.SyncBatchNorm`` when ``module`` is itself a batch norm layer.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``.
        ValueError: ``implementation`` is not ``'torch'``.

    Example:
        >>> import torch
        >>> layer = convert_sync_batchnorm(torch.nn.BatchNorm1d(8))
        >>> isinstance(layer, torch.nn.SyncBatchNorm)
        True
    """
    _check_module("convert_sync_batchnorm", module)
    if implementation != "torch":
        raise ValueError(
            f"convert_sync_batchnorm: `implementation` must be 'torch', got "
            f"{implementation!r}. mmcv's SyncBatchNorm is not supported; use 'torch'."
        )
    converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    return converted


def _check_module(owner: str, module: object) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{owner}: `module` must be a torch.nn.Module, got {type(module).__name__}")


def _revert(module: nn.Module, done: dict[int, nn.Module]) -> nn.Module:
    """Revert ``module`` and its descendants; ``done`` maps old layers to new ones."""
    if id(module) in done:
        return done[id(module)]
    result = _to_batchnorm(module) if isinstance(module, nn.SyncBatchNorm) else module
    done[id(module)] = result
    for name, child in module.named_children():
        reverted = _revert(child, done)
        if reverted is not child or result is not module:
            result.add_module(name, reverted)
    return result


def _to_batchnorm(sync: nn.SyncBatchNorm) -> _BatchNormXd:
    """A ``_BatchNormXd`` sharing ``sync``'s tensors and settings."""
    # Built on the meta device: every tensor it allocates is replaced just below.
    layer = _BatchNormXd(
        sync.num_features,
        eps=sync.eps,
        momentum=sync.momentum,
        affine=sync.affine,
        track_running_stats=sync.track_running_stats,
        device="meta",
    )
    for name in ("weight", "bias"):
        setattr(layer, name, sync._parameters[name])
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(layer, name, sync._buffers.get(name))
    layer.train(sync.training)
    if hasattr(sync, "qconfig"):
        layer.qconfig = sync.qconfig
    return layer
