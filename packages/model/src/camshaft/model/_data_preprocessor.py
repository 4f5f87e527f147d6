"""``BaseDataPreprocessor``: moves a batch, whatever its nesting, to the model's device.

Every model holds a data preprocessor as its ``data_preprocessor`` submodule, and
``train_step`` / ``val_step`` / ``test_step`` pass each batch through it before the
forward pass. This base class only moves data; subclasses (``ImgDataPreprocessor`` in
``camshaft.preprocess``) normalise, pad and augment *after* the move, on the device.

What it promises:

* The device is where the module lives, read from a zero-size, non-persistent buffer.
  ``model.to()``, ``.cuda()`` and ``.cpu()`` move that buffer with every other, so the
  device cannot go stale, and the buffer never appears in a ``state_dict``.
* :meth:`BaseDataPreprocessor.cast_data` keeps the shape of the batch: mappings come
  back as ``dict``, namedtuples, lists, tuples and dataclasses as their own type.
  Tensors and any other object with a ``.to`` method (MMEngine-style data samples)
  are moved; everything else (strings, bytes, numbers, ``None``, numpy arrays) is
  returned as it is.
* With ``non_blocking=True`` every ``.to`` call gets ``non_blocking=True``, so copies
  from pinned host memory overlap with compute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from camshaft.model._registry import MODELS

__all__ = ["BaseDataPreprocessor"]


@MODELS.register_module()
class BaseDataPreprocessor(nn.Module):
    """Move every tensor in a batch to the device this module lives on.

    Args:
        non_blocking: Pass ``non_blocking=True`` to every ``.to`` call, so a copy
            from pinned memory does not wait for the device. Defaults to False.

    Raises:
        TypeError: ``non_blocking`` is not a bool.

    Example:
        >>> import torch
        >>> preprocessor = BaseDataPreprocessor()
        >>> batch = dict(inputs=[torch.zeros(3, 4, 4)], data_samples=None)
        >>> out = preprocessor(batch)
        >>> out['inputs'][0].device == preprocessor.device
        True
    """

    _device_anchor: torch.Tensor

    def __init__(self, non_blocking: bool = False) -> None:
        super().__init__()
        if not isinstance(non_blocking, bool):
            raise TypeError(
                f"`non_blocking` must be a bool, got {type(non_blocking).__name__}: "
                f"{non_blocking!r}"
            )
        self._non_blocking = non_blocking
        # Zero elements, not saved: it exists only so that ``.device`` follows the module.
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """The device this module lives on, which batches are moved to."""
        # Straight from ``_buffers``: ``self._device_anchor`` would go through
        # ``nn.Module.__getattr__``, a Python call, on every batch.
        return self._buffers["_device_anchor"].device  # type: ignore[union-attr]

    def cast_data(self, data: Any) -> Any:
        """Move ``data``, and everything nested in it, to :attr:`device`.

        Args:
            data: A tensor, an object with a ``.to`` method, or any nesting of
                mappings, lists, tuples, namedtuples and dataclasses around them.

        Returns:
            ``data`` with the same structure: mappings become ``dict``; lists,
            tuples, namedtuples and dataclass instances keep their type; tensors and
            objects with ``.to`` are moved; other leaves are returned unchanged.
        """
        return _cast(data, self.device, self._non_blocking)

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move the batch to :attr:`device`.

        Args:
            data: The batch, as the DataLoader produced it.
            training: Whether this is a training step. Unused here; subclasses use it
                to apply batch augmentations only when training.

        Returns:
            The batch on :attr:`device`, as :meth:`cast_data` returns it.
        """
        if type(self).cast_data is BaseDataPreprocessor.cast_data:
            # Not overridden: skip the two calls of ``cast_data`` and ``device``.
            anchor: torch.Tensor = self._buffers["_device_anchor"]  # type: ignore[assignment]
            # ``is_cpu`` is a flag read; ``.device`` builds a new device object.
            device = _CPU if anchor.is_cpu else anchor.device
            return _cast(data, device, self._non_blocking)
        return self.cast_data(data)


_CPU = torch.device("cpu")


def _cast(data: Any, device: torch.device, non_blocking: bool) -> Any:
    """Return ``data`` with every movable leaf moved to ``device`` (see ``cast_data``)."""
    # Exact-type fast paths first: this runs on every batch, and isinstance against
    # the Mapping ABC alone costs several calls.
    cls = data.__class__
    # For the CPU, ``is_cpu`` answers "already there?" without building a device object.
    to_cpu = device is _CPU
    if cls is torch.Tensor:
        # Already there (a CPU run): ``.to`` would return ``data`` itself, after a call
        # through the dispatcher.
        if data.is_cpu if to_cpu else data.device == device:
            return data
        return data.to(device, non_blocking=non_blocking)
    if cls is dict:
        return {key: _cast(value, device, non_blocking) for key, value in data.items()}
    if cls is tuple or cls is list:
        # A plain loop over a copy (a comprehension is a call of its own before Python
        # 3.12); tensors already on ``device`` (a CPU run) are kept without any call.
        items = list(data)
        for index, item in enumerate(items):
            if item.__class__ is not torch.Tensor or not (
                item.is_cpu if to_cpu else item.device == device
            ):
                items[index] = _cast(item, device, non_blocking)
        return items if cls is list else tuple(items)
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=non_blocking)
    if isinstance(data, (str, bytes, bytearray, int, float, complex)) or data is None:
        return data
    if isinstance(data, Mapping):
        return {key: _cast(value, device, non_blocking) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(_cast(item, device, non_blocking) for item in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_cast(item, device, non_blocking) for item in data)
    if isinstance(data, type):  # a class is a value, even if it has a ``to`` attribute
        return data
    to = getattr(data, "to", None)
    if callable(to):
        return to(device, non_blocking=True) if non_blocking else to(device)
    if dataclasses.is_dataclass(data):
        return _cast_dataclass(data, device, non_blocking)
    return data


def _cast_dataclass(data: Any, device: torch.device, non_blocking: bool) -> Any:
    """Rebuild a dataclass instance with every field cast.

    Fields with ``init=True`` go through the constructor (so ``__post_init__`` runs,
    as with :func:`dataclasses.replace`); fields with ``init=False`` are cast and set
    afterwards, which also works on frozen dataclasses.
    """
    init_values: dict[str, Any] = {}
    late_values: dict[str, Any] = {}
    for field in dataclasses.fields(data):
        if not hasattr(data, field.name):  # an init=False field that was never set
            continue
        value = _cast(getattr(data, field.name), device, non_blocking)
        (init_values if field.init else late_values)[field.name] = value
    rebuilt = type(data)(**init_values)
    for name, value in late_values.items():
        object.__setattr__(rebuilt, name, value)
    return rebuilt
