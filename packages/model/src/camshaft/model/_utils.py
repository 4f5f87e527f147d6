"""``stack_batch``: one batch tensor from images (or any tensors) of different sizes.

Data preprocessors call it after moving a list of per-sample tensors to the device.
The first dimension of each tensor (the channels of a CHW image) must agree; every
later dimension is padded on its far side (right, bottom) up to the batch maximum,
rounded up to a multiple of ``pad_size_divisor``.

The batch is written into one tensor allocated up front and filled with
``pad_value``: each sample is copied once into its corner, instead of padding every
sample into a new tensor and then copying all of them again into the stack.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["stack_batch"]


def stack_batch(
    tensor_list: list[torch.Tensor] | tuple[torch.Tensor, ...],
    pad_size_divisor: int = 1,
    pad_value: int | float = 0,
) -> torch.Tensor:
    """Stack tensors into a batch, padding all but their first dimension.

    Args:
        tensor_list: A list (or tuple) of tensors with the same number of
            dimensions, the same size in their first dimension, the same dtype and
            the same device.
        pad_size_divisor: Every padded dimension of the result is a multiple of
            this. Defaults to 1 (pad only up to the largest size).
        pad_value: The value written where a tensor does not reach. Defaults to 0.

    Returns:
        A tensor of shape ``(len(tensor_list), C, *padded_sizes)``; sample ``i``
        sits at the start of every padded dimension.

    Raises:
        TypeError: ``tensor_list`` is not a list or tuple of tensors,
            ``pad_size_divisor`` is not an int, or ``pad_value`` is not a number.
        ValueError: ``tensor_list`` is empty, ``pad_size_divisor`` is below 1, or
            the tensors disagree in number of dimensions, first-dimension size,
            dtype or device.

    Example:
        >>> import torch
        >>> batch = stack_batch([torch.ones(3, 5, 7), torch.ones(3, 6, 4)],
        ...                     pad_size_divisor=4)
        >>> tuple(batch.shape)
        (2, 3, 8, 8)
        >>> float(batch[1, :, :, 4:].abs().sum())
        0.0
    """
    _check_arguments(tensor_list, pad_size_divisor, pad_value)
    first = tensor_list[0]
    shapes = [tuple(tensor.shape) for tensor in tensor_list]
    # Per padded dimension: the largest size, rounded up to a multiple of the divisor.
    trailing_sizes = list(zip(*shapes, strict=True))[1:]
    padded = tuple(
        -(-max(sizes) // pad_size_divisor) * pad_size_divisor for sizes in trailing_sizes
    )
    if all(shape[1:] == padded for shape in shapes):
        return torch.stack(tensor_list)
    batch = torch.full(
        (len(tensor_list), first.shape[0], *padded),
        pad_value,
        dtype=first.dtype,
        device=first.device,
    )
    for index, tensor in enumerate(tensor_list):
        corner = tuple(slice(0, size) for size in tensor.shape)
        batch[index][corner] = tensor
    return batch


def _check_arguments(tensor_list: object, pad_size_divisor: object, pad_value: object) -> None:
    """Raise the error ``stack_batch`` documents for the first bad argument found."""
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError(
            f"`tensor_list` must be a list of tensors, got {type(tensor_list).__name__}"
        )
    if not tensor_list:
        raise ValueError("`tensor_list` must hold at least one tensor, got an empty list")
    if isinstance(pad_size_divisor, bool) or not isinstance(pad_size_divisor, int):
        raise TypeError(
            f"`pad_size_divisor` must be an int >= 1, got {type(pad_size_divisor).__name__}: "
            f"{pad_size_divisor!r}"
        )
    if pad_size_divisor < 1:
        raise ValueError(f"`pad_size_divisor` must be an int >= 1, got {pad_size_divisor}")
    if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Real):
        raise TypeError(
            f"`pad_value` must be an int or a float, got {type(pad_value).__name__}: {pad_value!r}"
        )
    first = tensor_list[0]
    for index, tensor in enumerate(tensor_list):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"`tensor_list[{index}]` must be a torch.Tensor, got {type(tensor).__name__}"
            )
        if tensor.ndim == 0:
            raise ValueError(
                f"`tensor_list[{index}]` must have at least one dimension, got a 0-d tensor"
            )
        if tensor.ndim != first.ndim:
            raise ValueError(
                f"every tensor in `tensor_list` must have the same number of dimensions: "
                f"`tensor_list[0]` has shape {tuple(first.shape)} ({first.ndim}-d), "
                f"`tensor_list[{index}]` has shape {tuple(tensor.shape)} ({tensor.ndim}-d)"
            )
        if tensor.shape[0] != first.shape[0]:
            raise ValueError(
                f"the first dimension (channels) is not padded, so it must agree: "
                f"`tensor_list[0]` has shape {tuple(first.shape)}, "
                f"`tensor_list[{index}]` has shape {tuple(tensor.shape)}"
            )
        if tensor.dtype != first.dtype or tensor.device != first.device:
            raise ValueError(
                f"every tensor in `tensor_list` must share dtype and device: "
                f"`tensor_list[0]` is {first.dtype} on {first.device}, "
                f"`tensor_list[{index}]` is {tensor.dtype} on {tensor.device}"
            )
