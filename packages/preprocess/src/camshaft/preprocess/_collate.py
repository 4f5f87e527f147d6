"""Collate functions: turn a DataLoader's list of samples into one batch.

Two choices, with the same names and results as MMEngine's:

* :func:`pseudo_collate` transposes the samples (a list of dicts becomes a dict of
  lists) and stacks nothing, so images of different sizes survive until
  ``ImgDataPreprocessor`` pads them on the device.
* :func:`default_collate` transposes and also stacks tensors, numpy arrays and
  numbers (through ``torch.utils.data.default_collate``, which builds the stacked
  tensor in shared memory inside worker processes); it needs equal shapes.

Both keep the structure of a sample: mappings stay mappings, namedtuples stay
namedtuples, lists and tuples become lists (as in torch and MMEngine); strings,
``None`` and objects they do not know (such as data samples) are returned as a list.

Pair either with ``DataLoader(..., pin_memory=True)`` and a data preprocessor built
with ``non_blocking=True``: the batch is then copied to the GPU from page-locked
memory, still as ``uint8``, while the GPU is busy with the previous step.

Example:
    >>> import torch
    >>> samples = [dict(inputs=torch.zeros(3, 4, 5), label=1),
    ...            dict(inputs=torch.zeros(3, 6, 5), label=0)]
    >>> batch = pseudo_collate(samples)
    >>> [tuple(image.shape) for image in batch['inputs']], batch['label']
    ([(3, 4, 5), (3, 6, 5)], [1, 0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate as _torch_default_collate

__all__ = ["default_collate", "pseudo_collate"]

_Leaf = Callable[[list[Any], str], Any]


def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose a list of samples into one batch without stacking anything.

    Args:
        data_batch: The samples, as the DataLoader hands them over.

    Returns:
        The samples' common structure with a list of values at every leaf.

    Raises:
        TypeError: ``data_batch`` is not a list or tuple, or the samples do not
            share one structure.
        ValueError: ``data_batch`` is empty, or sequences or mappings at the same
            place differ in length or keys.

    Example:
        >>> pseudo_collate([(1, 'a'), (2, 'b')])
        [[1, 2], ['a', 'b']]
    """
    return _collate(_check_batch(data_batch), "batch", _keep_list)


def default_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose a list of samples into one batch, stacking tensors and numbers.

    Args:
        data_batch: The samples, as the DataLoader hands them over.

    Returns:
        The samples' common structure with, at every leaf, a stacked tensor (for
        tensors, numpy arrays and numbers) or a list (for anything else).

    Raises:
        TypeError: As for :func:`pseudo_collate`.
        ValueError: As for :func:`pseudo_collate`, or tensors at one place differ in
            shape (use :func:`pseudo_collate` and let ``ImgDataPreprocessor`` pad).

    Example:
        >>> import torch
        >>> batch = default_collate([dict(x=torch.ones(2), y=1), dict(x=torch.zeros(2), y=0)])
        >>> tuple(batch['x'].shape), batch['y']
        ((2, 2), tensor([1, 0]))
    """
    return _collate(_check_batch(data_batch), "batch", _stack_leaf)


def _check_batch(data_batch: object) -> list[Any]:
    if not isinstance(data_batch, (list, tuple)):
        raise TypeError(f"`data_batch` must be a list of samples, got {type(data_batch).__name__}")
    if not data_batch:
        raise ValueError("`data_batch` must hold at least one sample, got an empty list")
    return list(data_batch)


def _collate(batch: list[Any], where: str, leaf: _Leaf) -> Any:
    first = batch[0]
    if isinstance(first, (str, bytes)) or first is None:
        return batch
    if isinstance(first, Mapping):
        return _collate_mapping(batch, where, leaf)
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple
        columns = _transpose(batch, where)
        return type(first)(
            *(
                _collate(column, f"{where}.{name}", leaf)
                for name, column in zip(first._fields, columns, strict=True)
            )
        )
    if isinstance(first, Sequence) and not isinstance(first, (torch.Tensor, np.ndarray)):
        columns = _transpose(batch, where)
        collated = [_collate(column, f"{where}[{i}]", leaf) for i, column in enumerate(columns)]
        if isinstance(first, (list, tuple)):
            return collated
        try:
            return type(first)(collated)  # type: ignore[call-arg]
        except TypeError:
            return collated
    return leaf(batch, where)


def _collate_mapping(batch: list[Any], where: str, leaf: _Leaf) -> Any:
    first = batch[0]
    for index, sample in enumerate(batch):
        if not isinstance(sample, Mapping) or sample.keys() != first.keys():
            got = sorted(map(str, sample.keys())) if isinstance(sample, Mapping) else sample
            raise ValueError(
                f"every sample at `{where}` must be a mapping with the keys of sample 0 "
                f"({sorted(map(str, first.keys()))}); sample {index} has {got!r}"
            )
    collated = {key: _collate([s[key] for s in batch], f"{where}[{key!r}]", leaf) for key in first}
    try:
        return type(first)(collated)
    except TypeError:
        return collated


def _transpose(batch: list[Any], where: str) -> list[list[Any]]:
    length = len(batch[0])
    for index, sample in enumerate(batch):
        if not isinstance(sample, Sequence) or isinstance(sample, (str, bytes)):
            raise TypeError(
                f"every sample at `{where}` must be a sequence like sample 0 "
                f"({type(batch[0]).__name__}); sample {index} is a {type(sample).__name__}"
            )
        if len(sample) != length:
            raise ValueError(
                f"every sample at `{where}` must have the length of sample 0 ({length}); "
                f"sample {index} has length {len(sample)}"
            )
    return [list(column) for column in zip(*batch, strict=True)]


def _keep_list(batch: list[Any], where: str) -> list[Any]:
    return batch


def _stack_leaf(batch: list[Any], where: str) -> Any:
    first = batch[0]
    stackable = isinstance(first, torch.Tensor) or (
        isinstance(first, (np.ndarray, np.number, np.bool_)) and first.dtype.kind in "biufc"
    )
    if isinstance(first, (int, float, complex)) or stackable:
        if isinstance(first, (torch.Tensor, np.ndarray)):
            for index, item in enumerate(batch):
                shape = getattr(item, "shape", None)
                if shape != first.shape:
                    raise ValueError(
                        f"default_collate stacks the tensors at `{where}`, so they must share "
                        f"one shape: sample 0 has {tuple(first.shape)}, sample {index} has "
                        f"{tuple(shape) if shape is not None else type(item).__name__}. "
                        f"HINT: use pseudo_collate and let ImgDataPreprocessor pad them"
                    )
        return _torch_default_collate(batch)
    return batch
