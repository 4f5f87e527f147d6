"""ImgDataPreprocessor: move images while they are uint8, then normalise on the device.

A uint8 image is a quarter of the bytes of its float32 form, so the batch crosses to
the GPU in that form and becomes float there: channel swap, float, normalise, pad and
stack (see ``_batching``), then, when training, the batch augments. The three batch
shapes users have are accepted, and each comes back in its own shape:

* ``dict(inputs=[CHW tensors], data_samples=...)`` — what :func:`pseudo_collate` gives;
* ``dict(inputs=NCHW tensor, data_samples=...)`` — what :func:`default_collate` gives;
* ``(images, labels)`` — what a DataLoader over a torchvision dataset gives (a list
  or tuple of two; a list comes back as a list, a tuple as a tuple).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from camshaft.model import MODELS, BaseDataPreprocessor
from camshaft.preprocess._batching import batch_images, check_images
from camshaft.preprocess._random_batch_augment import RandomBatchAugment, build_augment

__all__ = ["ImgDataPreprocessor"]


@MODELS.register_module()
class ImgDataPreprocessor(BaseDataPreprocessor):
    """Move, normalise, pad and stack image batches; augment them when training.

    Per batch, in this order: move everything to :attr:`device` (images still uint8,
    ``non_blocking`` when asked) → swap BGR/RGB if asked → float32 → ``(x - mean) /
    std`` (computed as ``(x - mean) * (1 / std)``, equal to one float32 rounding
    step) → pad every image on the right and bottom to the batch's largest size
    rounded up to ``pad_size_divisor``, with ``pad_value`` → one ``(N, C, H, W)``
    tensor → with ``training=True`` only, the batch augments.

    Args:
        mean: Per-channel means (1 or 3 values), or None for no normalisation. Given
            together with ``std``. Stored as a non-persistent buffer (not saved).
        std: Per-channel standard deviations, non-zero; as ``mean``.
        pad_size_divisor: Padded height and width are multiples of this. Defaults to 1.
        pad_value: Value of the padding (written after normalisation). Defaults to 0.
        bgr_to_rgb: Reverse the channels of 3-channel images. Defaults to False.
        rgb_to_bgr: The same swap, named the other way; at most one may be set.
        non_blocking: Copy to the device with ``non_blocking=True``; use it with a
            ``pin_memory=True`` DataLoader. Defaults to False.
        batch_augments: None; a module or config dict (such as
            ``dict(type='MixUp', alpha=0.8, num_classes=10)``); a list of them,
            applied in order; or ``dict(augments=[...], probs=[...])``, built as a
            :class:`RandomBatchAugment`. Each is called as ``aug(inputs,
            data_samples)`` and returns both.
        channels_last: Return the batch in ``torch.channels_last`` memory format.
            Defaults to False.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: Only one of ``mean``/``std`` is given, either has a length
            other than 1 or 3, ``std`` holds a zero, ``pad_size_divisor`` < 1, or
            both channel flags are set.

    Example:
        >>> import torch
        >>> preprocessor = ImgDataPreprocessor(
        ...     mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        ...     bgr_to_rgb=True, pad_size_divisor=32)
        >>> images = [torch.randint(0, 256, (3, 60, 50), dtype=torch.uint8),
        ...           torch.randint(0, 256, (3, 40, 70), dtype=torch.uint8)]
        >>> batch = preprocessor(dict(inputs=images, data_samples=None))
        >>> tuple(batch['inputs'].shape), batch['inputs'].dtype
        ((2, 3, 64, 96), torch.float32)
    """

    mean: torch.Tensor
    std: torch.Tensor
    pad_size_divisor: int
    pad_value: float
    channels_last: bool
    batch_augments: nn.ModuleList | None
    _channel_conversion: bool
    _enable_normalize: bool
    _mean_std: tuple[list[float] | None, list[float] | None]

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pad_size_divisor: int = 1,
        pad_value: float = 0,
        bgr_to_rgb: bool = False,
        rgb_to_bgr: bool = False,
        non_blocking: bool = False,
        batch_augments: Any = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        for name, flag in (
            ("bgr_to_rgb", bgr_to_rgb),
            ("rgb_to_bgr", rgb_to_bgr),
            ("channels_last", channels_last),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be a bool, got {type(flag).__name__}: {flag!r}")
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError(
                "`bgr_to_rgb` and `rgb_to_bgr` cannot both be True: each reverses the "
                "channel order, so set the one that names your conversion"
            )
        if isinstance(pad_size_divisor, bool) or not isinstance(pad_size_divisor, int):
            raise TypeError(
                f"`pad_size_divisor` must be an int >= 1, got "
                f"{type(pad_size_divisor).__name__}: {pad_size_divisor!r}"
            )
        if pad_size_divisor < 1:
            raise ValueError(f"`pad_size_divisor` must be >= 1, got {pad_size_divisor}")
        if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Real):
            raise TypeError(
                f"`pad_value` must be a number, got {type(pad_value).__name__}: {pad_value!r}"
            )
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = float(pad_value)
        self._channel_conversion = bgr_to_rgb or rgb_to_bgr
        self.channels_last = channels_last
        self._enable_normalize = _check_mean_std(mean, std)
        # As given (copied), for the repr; the buffers hold the float32 values.
        self._mean_std = (None if mean is None else list(mean), None if std is None else list(std))
        if self._enable_normalize:
            self.register_buffer("mean", _as_column(mean), persistent=False)
            self.register_buffer("std", _as_column(std), persistent=False)
        self.batch_augments = _build_batch_augments(batch_augments)

    def forward(self, data: Any, training: bool = False) -> Any:
        """Turn one batch from the DataLoader into model inputs on :attr:`device`.

        Args:
            data: ``dict(inputs=..., data_samples=...)`` with an NCHW tensor or a list
                of CHW tensors (uint8 or floating point) under ``inputs``, or an
                ``(images, labels)`` pair.
            training: Apply the batch augments. Defaults to False.

        Returns:
            The batch in the form it came: a dict with the float32 ``(N, C, H, W)``
            batch under ``inputs`` (and ``data_samples``, None if it was missing),
            or an ``(images, labels)`` pair of the same list or tuple type. Batch
            augments may replace the labels (mixed soft labels).

        Raises:
            TypeError: ``data`` is neither form, or the images have a dtype other
                than uint8 or floating point.
            ValueError: The images have the wrong number of dimensions or differ in
                channel count, or ``mean`` has 3 values for images with other than 3.
        """
        if isinstance(data, Mapping):
            if "inputs" not in data:
                raise ValueError(
                    f"a dict batch must have an 'inputs' key, got keys {sorted(map(str, data))}"
                )
            moved = self.cast_data(data)
            images, labels = self._process(
                moved["inputs"], moved.get("data_samples"), training, "inputs"
            )
            moved["inputs"] = images
            moved["data_samples"] = labels
            return moved
        if isinstance(data, (list, tuple)) and len(data) == 2:
            moved = self.cast_data(data)
            images, labels = self._process(moved[0], moved[1], training, "data[0]")
            kind: Any = type(data)
            if hasattr(data, "_fields"):  # namedtuple
                return kind(images, labels)
            return kind((images, labels))
        raise TypeError(
            f"`data` must be dict(inputs=..., data_samples=...) or an (images, labels) pair, "
            f"got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (list, tuple)) else "")
        )

    def _process(
        self, images: Any, labels: Any, training: bool, name: str
    ) -> tuple[torch.Tensor, Any]:
        check_images(images, self.mean.shape[0] if self._enable_normalize else None, name)
        batch = batch_images(
            images,
            mean=self.mean if self._enable_normalize else None,
            std=self.std if self._enable_normalize else None,
            swap_channels=self._channel_conversion,
            pad_size_divisor=self.pad_size_divisor,
            pad_value=self.pad_value,
            channels_last=self.channels_last,
        )
        if training and self.batch_augments is not None:
            for augment in self.batch_augments:
                batch, labels = augment(batch, labels)
        return batch, labels

    def extra_repr(self) -> str:
        mean, std = self._mean_std
        return (
            f"mean={mean}, std={std}, pad_size_divisor={self.pad_size_divisor}, "
            f"pad_value={self.pad_value}, channel_conversion={self._channel_conversion}, "
            f"channels_last={self.channels_last}"
        )


def _check_mean_std(mean: object, std: object) -> bool:
    """Validate ``mean`` and ``std``; return whether normalisation is enabled."""
    if (mean is None) != (std is None):
        raise ValueError(
            f"`mean` and `std` must be given together or not at all, got mean={mean!r}, std={std!r}"
        )
    if mean is None:
        return False
    for name, values in (("mean", mean), ("std", std)):
        if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
        ):
            raise TypeError(
                f"`{name}` must be a list or tuple of 1 or 3 numbers, got "
                f"{type(values).__name__}: {values!r}"
            )
        if len(values) not in (1, 3):
            raise ValueError(
                f"`{name}` must have 1 value (grey images) or 3 (colour images), got "
                f"{len(values)}: {values!r}"
            )
    if any(float(v) == 0 for v in std):  # type: ignore[attr-defined]
        raise ValueError(f"`std` must not hold a zero (it divides), got {std!r}")
    return True


def _as_column(values: Any) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float32).view(-1, 1, 1)


def _build_batch_augments(batch_augments: Any) -> nn.ModuleList | None:
    """Build ``batch_augments`` into the list of modules applied in order, or None."""
    if batch_augments is None:
        return None
    if isinstance(batch_augments, Mapping) and "type" not in batch_augments:
        if "augments" not in batch_augments:
            raise ValueError(
                f"`batch_augments` as a dict needs a 'type' key (one augment) or an "
                f"'augments' key (a RandomBatchAugment), got keys {sorted(batch_augments)}"
            )
        return nn.ModuleList([RandomBatchAugment(**batch_augments)])
    items = list(batch_augments) if isinstance(batch_augments, (list, tuple)) else [batch_augments]
    return nn.ModuleList(
        build_augment(item, f"batch_augments[{index}]") for index, item in enumerate(items)
    )
