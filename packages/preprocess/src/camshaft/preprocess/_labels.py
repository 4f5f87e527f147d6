"""The labels a batch augment mixes: reading the four forms users have, writing back.

MixUp and CutMix mix labels as soft scores, a float32 tensor ``(N, C)``. Batches carry
labels in one of four forms (``N`` is the batch size), read as follows:

* **Class indices** — an integer tensor of shape ``(N,)``, as a torchvision dataset
  gives them. They become one-hot rows of length ``num_classes``; the augment
  returns the mixed ``(N, C)`` tensor in their place.
* **Soft labels** — a tensor of shape ``(N, C)``; used as float32 and returned mixed.
* **A list of class indices** — ints or one-element integer tensors, as
  :func:`pseudo_collate` gives them for a torchvision dataset; read like the tensor
  above and replaced by the mixed ``(N, C)`` tensor.
* **Per-sample objects** — a list or tuple of ``N`` data samples (MMEngine-style data
  elements, dataclasses, plain objects or dicts). If the first sample has a
  ``gt_score`` that is not None, every sample's ``gt_score`` (a ``(C,)`` tensor) is
  read; otherwise every sample's ``gt_label`` (an int, or a tensor holding one
  integer). Mappings are read by key, other objects by attribute. The mixed scores
  are written back to each sample as ``gt_score`` (by item assignment for mappings,
  ``setattr`` otherwise), ``gt_label`` is left untouched, and the same sequence is
  returned. ``num_classes``, when the augment was not given it, is read from the
  first sample's ``num_classes`` the same way.

A class index outside ``[0, num_classes)`` is an error when the indices live on the
CPU and the code is not being traced by ``torch.compile``. On an accelerator it is
not checked (checking would wait for the device) and its one-hot row is all zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import torch

__all__ = ["read_soft_labels", "write_soft_labels"]

_FORMS = (
    "a class-index tensor of shape (N,), a soft-label tensor of shape (N, C), a list "
    "of N class indices, or a list of N data samples carrying `gt_label` or `gt_score`"
)


def _field(sample: Any, name: str) -> Any:
    """``sample[name]`` for a mapping, else ``getattr(sample, name, None)``."""
    if isinstance(sample, Mapping):
        return sample.get(name)
    return getattr(sample, name, None)


def read_soft_labels(
    labels: Any, num_classes: int | None, batch_size: int, device: torch.device, owner: str
) -> torch.Tensor:
    """Return ``labels`` as a float32 ``(batch_size, C)`` tensor on ``device``.

    Args:
        labels: The labels in one of the forms in the module docstring.
        num_classes: The number of classes, for one-hot encoding class indices.
        batch_size: ``N``, the number of images in the batch.
        device: Where the images are; the scores are put there.
        owner: The augment's name, for error messages.

    Raises:
        TypeError: ``labels`` is none of the three forms.
        ValueError: The labels do not match the batch size, have neither shape,
            need ``num_classes`` and none is known, or hold an out-of-range index.
    """
    if isinstance(labels, torch.Tensor):
        return _from_tensor(labels, num_classes, batch_size, device, owner)
    if isinstance(labels, (list, tuple)):
        if _is_index_list(labels):
            return _from_samples(
                [{"gt_label": label} for label in labels], num_classes, batch_size, device, owner
            )
        return _from_samples(labels, num_classes, batch_size, device, owner)
    if labels is None:
        raise TypeError(
            f"{owner} mixes labels but `data_samples` is None; give {_FORMS} "
            f"(or leave batch augments out of evaluation)"
        )
    raise TypeError(f"{owner}: `data_samples` must be {_FORMS}; got {type(labels).__name__}")


def write_soft_labels(labels: Any, scores: torch.Tensor) -> Any:
    """Return what the augment hands on: ``scores`` for tensor labels, else the samples.

    For per-sample objects, sample ``i`` gets ``scores[i]`` as its ``gt_score``.
    """
    if isinstance(labels, torch.Tensor) or _is_index_list(labels):
        return scores
    for sample, score in zip(labels, scores.unbind(0), strict=True):
        if isinstance(sample, MutableMapping):
            sample["gt_score"] = score
        else:
            setattr(sample, "gt_score", score)  # noqa: B010 - documented attribute name
    return labels


def _from_tensor(
    labels: torch.Tensor, num_classes: int | None, batch_size: int, device: torch.device, owner: str
) -> torch.Tensor:
    if labels.ndim == 0 or labels.shape[0] != batch_size or labels.ndim > 2:
        raise ValueError(
            f"{owner}: label tensor of shape {tuple(labels.shape)} matches neither "
            f"({batch_size},) class indices nor ({batch_size}, C) soft labels for a batch "
            f"of {batch_size} images"
        )
    if labels.ndim == 2:
        return labels.to(device=device, dtype=torch.float32)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"{owner}: a 1-d label tensor must hold integer class indices, got dtype "
            f"{labels.dtype}; give soft labels as a ({batch_size}, C) tensor"
        )
    return _one_hot(labels.to(device), num_classes, owner)


def _from_samples(
    samples: Sequence[Any],
    num_classes: int | None,
    batch_size: int,
    device: torch.device,
    owner: str,
) -> torch.Tensor:
    if len(samples) != batch_size:
        raise ValueError(
            f"{owner}: got {len(samples)} data samples for a batch of {batch_size} images"
        )
    if batch_size and _field(samples[0], "gt_score") is not None:
        scores = [_field(sample, "gt_score") for sample in samples]
        for index, score in enumerate(scores):
            if not isinstance(score, torch.Tensor) or score.ndim != 1:
                raise ValueError(
                    f"{owner}: `data_samples[{index}].gt_score` must be a 1-d tensor of class "
                    f"scores (as the first sample has), got {_describe(score)}"
                )
            if score.shape != scores[0].shape:
                raise ValueError(
                    f"{owner}: every gt_score must have the same length; "
                    f"`data_samples[0].gt_score` has {scores[0].shape[0]}, "
                    f"`data_samples[{index}].gt_score` has {score.shape[0]}"
                )
        return torch.stack(scores).to(device=device, dtype=torch.float32)
    values = [_field(sample, "gt_label") for sample in samples]
    for index, value in enumerate(values):
        if not _is_one_index(value):
            raise ValueError(
                f"{owner}: `data_samples[{index}]` must carry `gt_label` (one integer class "
                f"index: an int or a one-element integer tensor) or `gt_score` (a 1-d tensor); "
                f"its gt_label is {_describe(value)}"
            )
    if num_classes is None and batch_size:
        found = _field(samples[0], "num_classes")
        num_classes = found if isinstance(found, int) and not isinstance(found, bool) else None
    if all(isinstance(value, int) for value in values):
        indices = torch.tensor(values, dtype=torch.long, device=device)
    else:
        stacked = [torch.as_tensor(value).reshape(()) for value in values]
        indices = torch.stack(stacked).to(device)
    return _one_hot(indices, num_classes, owner)


def _is_index_list(labels: Sequence[Any]) -> bool:
    """Whether ``labels`` is a non-empty list of bare class indices (ints or 0-d/1-element)."""
    return bool(labels) and all(_is_one_index(label) for label in labels)


def _is_one_index(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return (
        isinstance(value, torch.Tensor)
        and value.numel() == 1
        and value.ndim <= 1
        and not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
    )


def _one_hot(indices: torch.Tensor, num_classes: int | None, owner: str) -> torch.Tensor:
    """One-hot rows by comparison with ``arange``: no scatter, no wait on the device."""
    if num_classes is None:
        raise ValueError(
            f"{owner} got class indices but no `num_classes` to one-hot them; pass "
            f"{owner}(..., num_classes=<number of classes>) or give soft labels"
        )
    # Checked only where it is free: on the CPU, outside torch.compile's tracing.
    if indices.device.type == "cpu" and indices.numel() and not torch.compiler.is_compiling():
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{owner}: class indices must lie in [0, {num_classes}) for "
                f"num_classes={num_classes}, got values from {low} to {high}"
            )
    classes = torch.arange(num_classes, device=indices.device)
    return (indices.reshape(-1, 1) == classes).to(torch.float32)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}: {value!r}"
