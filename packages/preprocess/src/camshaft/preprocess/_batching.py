"""Images to one normalised, padded float32 batch: the arithmetic of ImgDataPreprocessor.

The order is fixed: channel swap, conversion to float32, normalisation, then padding
on the right and bottom with ``pad_value`` (padding is *not* normalised). The result
is written into one tensor allocated up front; no image is padded on its own and then
stacked, and the float data is never copied twice. Normalisation computes
``(x - mean) * (1 / std)``: a multiply costs a fraction of a divide on the CPU, and
the result differs from ``(x - mean) / std`` by at most one float32 rounding step.

A large CPU batch is first marked for transparent huge pages (:mod:`._huge_pages`):
faulting in fresh memory page by page costs more than the arithmetic.

How the batch is filled depends on where it lives:

* **CPU** — image by image. Each image is converted into its corner of the batch
  (channels reversed first when swapping: a small uint8 temporary, measured faster
  than three per-channel copies) and normalised in place while it is still in the
  cache; only the padding strips are filled. An NCHW tensor is done as one batch:
  three channel copies that swap as they convert, one ``sub_``, one ``mul_``.
* **Other devices** — a handful of batched kernels, since there every kernel is a
  launch from the host: a list is first gathered into one tensor of its own dtype
  (``torch.stack`` for equal sizes, else one copy per image into a staging tensor),
  then converted and normalised as one tensor, and the padding is written by one
  masked fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from camshaft.preprocess._huge_pages import advise_huge_pages

__all__ = ["batch_images", "check_images"]


def check_images(images: object, mean_channels: int | None, name: str = "inputs") -> None:
    """Raise if ``images`` is not an NCHW tensor or a list of CHW tensors we can batch.

    Args:
        images: What the batch holds under ``inputs``.
        mean_channels: How many values ``mean`` has (None without normalisation).
        name: How the caller's batch names the images, for error messages.

    Raises:
        TypeError: ``images`` is neither form, or holds an image that is neither
            uint8 nor floating point.
        ValueError: A tensor has the wrong number of dimensions, the images differ in
            channel count, the list is empty, or ``mean`` has 3 values for images
            that do not have 3 channels.
    """
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"`{name}` as a tensor must be a 4-d NCHW batch, got shape "
                f"{tuple(images.shape)}; give a list of CHW tensors for single images"
            )
        _check_dtype(images, name)
        _check_mean(images.shape[1], mean_channels, name)
        return
    if not isinstance(images, (list, tuple)):
        raise TypeError(
            f"`{name}` must be an NCHW tensor or a list of CHW tensors, got {type(images).__name__}"
        )
    if not images:
        raise ValueError(f"`{name}` must hold at least one image, got an empty list")
    channels = None
    for index, image in enumerate(images):
        item = f"{name}[{index}]"
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"`{item}` must be a CHW tensor, got {type(image).__name__}")
        if image.ndim != 3:
            raise ValueError(f"`{item}` must be a 3-d CHW tensor, got shape {tuple(image.shape)}")
        _check_dtype(image, item)
        if channels is None:
            channels = image.shape[0]
            _check_mean(channels, mean_channels, item)
        elif image.shape[0] != channels:
            raise ValueError(
                f"every image in `{name}` must have the same number of channels: "
                f"`{name}[0]` has {channels}, `{item}` has {image.shape[0]} "
                f"(shape {tuple(image.shape)})"
            )


def _check_dtype(images: torch.Tensor, name: str) -> None:
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(
            f"`{name}` must be uint8 or floating point, got {images.dtype}; convert it in "
            f"the data pipeline (e.g. `.to(torch.uint8)` for 8-bit images)"
        )


def _check_mean(channels: int, mean_channels: int | None, name: str) -> None:
    if mean_channels == 3 and channels != 3:
        raise ValueError(
            f"`mean` and `std` have 3 values, so every image needs 3 channels, but `{name}` "
            f"has {channels}; pass one value each (e.g. mean=[127.5], std=[127.5])"
        )


def batch_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    swap_channels: bool,
    pad_size_divisor: int,
    pad_value: float,
    channels_last: bool,
) -> torch.Tensor:
    """Return the float32 ``(N, C, H, W)`` batch of ``images`` (checked by the caller).

    Args:
        images: An NCHW tensor or a list of CHW tensors, uint8 or floating point.
        mean: ``(C, 1, 1)`` float32 on the images' device, or None (no normalising).
        std: Like ``mean``; given with it.
        swap_channels: Reverse the channel order of 3-channel images (BGR <-> RGB).
        pad_size_divisor: ``H`` and ``W`` are rounded up to multiples of it.
        pad_value: Written where an image does not reach.
        channels_last: Allocate the batch in ``torch.channels_last`` memory format.
    """
    if isinstance(images, torch.Tensor):
        count, channels, tallest, widest = images.shape
        device = images.device
    else:
        count, channels, device = len(images), images[0].shape[0], images[0].device
        tallest = max(image.shape[1] for image in images)
        widest = max(image.shape[2] for image in images)
    out = torch.empty(
        (
            count,
            channels,
            _round_up(tallest, pad_size_divisor),
            _round_up(widest, pad_size_divisor),
        ),
        dtype=torch.float32,
        device=device,
        memory_format=torch.channels_last if channels_last else torch.contiguous_format,
    )
    advise_huge_pages(out)
    swap = swap_channels and channels == 3
    scale = None if std is None else std.reciprocal()  # a multiply is cheaper than a divide
    if isinstance(images, torch.Tensor):
        _fill(out, images, mean, scale, swap, pad_value)
    elif device.type == "cpu":
        for index, image in enumerate(images):
            _fill(out[index], image, mean, scale, swap, pad_value)
    else:
        _fill_batched(out, images, mean, scale, swap, pad_value)
    return out


def _round_up(size: int, divisor: int) -> int:
    return -(-size // divisor) * divisor


def _fill(
    out: torch.Tensor,
    images: torch.Tensor,
    mean: torch.Tensor | None,
    scale: torch.Tensor | None,
    swap: bool,
    pad_value: float,
) -> None:
    """Convert ``images`` (CHW or NCHW) into the top-left corner of ``out``; pad the rest.

    ``scale`` is ``1 / std``; the region becomes ``(x - mean) * scale``.
    """
    height, width = images.shape[-2], images.shape[-1]
    region = out[..., :height, :width]
    if swap and images.ndim == 3:
        # One image: a reversed uint8 temporary is small, and two kernels beat three.
        region.copy_(images.flip(0))
    elif swap:
        # A batch: three channel copies, the swap done by the copy, no big temporary.
        for channel in range(3):
            region[:, channel].copy_(images[:, 2 - channel])
    else:
        region.copy_(images)
    if mean is not None and scale is not None:
        region.sub_(mean).mul_(scale)
    if height < out.shape[-2]:
        out[..., height:, :].fill_(pad_value)
    if width < out.shape[-1]:
        out[..., :height, width:].fill_(pad_value)


def _fill_batched(
    out: torch.Tensor,
    images: Sequence[torch.Tensor],
    mean: torch.Tensor | None,
    scale: torch.Tensor | None,
    swap: bool,
    pad_value: float,
) -> None:
    """Fill ``out`` from a list in a few batched kernels (see the module docstring)."""
    shapes = [tuple(image.shape) for image in images]
    dtypes = {image.dtype for image in images}
    if len(set(shapes)) == 1 and len(dtypes) == 1:
        _fill(out, torch.stack(list(images)), mean, scale, swap, pad_value)
        return
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    staging = torch.empty(out.shape, dtype=dtype, device=out.device)
    for index, image in enumerate(images):
        staging[index, :, : image.shape[1], : image.shape[2]].copy_(image)
    _fill(out, staging, mean, scale, swap, pad_value)
    # One masked fill writes every image's padding; the sizes travel without a sync.
    sizes = torch.tensor([shape[1:] for shape in shapes], dtype=torch.long)
    sizes = sizes.to(out.device, non_blocking=True)
    rows = torch.arange(out.shape[-2], device=out.device)
    cols = torch.arange(out.shape[-1], device=out.device)
    outside = (rows >= sizes[:, :1]).unsqueeze(2) | (cols >= sizes[:, 1:]).unsqueeze(1)
    out.masked_fill_(outside.unsqueeze(1), pad_value)
