"""CutMix: paste a random box from a partner image into every image of the batch.

The box is drawn on the device and applied as a mask built from two ``arange``
comparisons, so the whole batch is mixed by one ``torch.where``: no box coordinates
travel to the host, nothing waits for the device, and ``torch.compile`` sees only
tensor operations.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from camshaft.model import MODELS
from camshaft.preprocess._mixup import BaseBatchMix
from camshaft.preprocess._sampling import sample_beta, sample_permutation, sample_uniform

__all__ = ["CutMix"]


@MODELS.register_module()
class CutMix(BaseBatchMix):
    r"""CutMix: replace a box of every image with the same box of a partner image.

    Per batch: ``lam ~ Beta(alpha, alpha)``, a random permutation ``p`` pairs image
    ``i`` with ``p[i]``, and one box is drawn. Without ``cutmix_minmax`` the box has
    sides ``int(H * sqrt(1 - lam))`` by ``int(W * sqrt(1 - lam))`` around a uniformly
    drawn centre, clipped to the image; with ``cutmix_minmax=(lo, hi)`` its height
    and width are drawn uniformly from ``[int(H * lo), int(H * hi))`` and
    ``[int(W * lo), int(W * hi))`` and it lies wholly inside the image. Inside the
    box image ``i`` takes the pixels of image ``p[i]``; the labels mix as
    ``lam * y[i] + (1 - lam) * y[p[i]]``, where ``lam`` is recomputed from the box's
    area (the share of pixels kept) when ``correct_lam`` is True or
    ``cutmix_minmax`` is given (Yun et al., 2019, arXiv:1905.04899).

    Args:
        alpha: Beta distribution parameter, > 0. 1.0 is common.
        num_classes: Needed when labels are class indices; see
            :class:`~camshaft.preprocess._mixup.BaseBatchMix`.
        cutmix_minmax: ``(lo, hi)`` with ``0 <= lo < hi <= 1``: bounds of the box
            sides as fractions of the image sides. None (default) sizes the box
            from ``lam``.
        correct_lam: Recompute ``lam`` from the clipped box's area. Defaults to True.
        seed: None (torch's default generators) or an int (a private, seeded
            generator).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``alpha`` is not > 0, or ``cutmix_minmax`` is not two
            increasing fractions.

    Example:
        >>> import torch
        >>> cutmix = CutMix(alpha=1.0, num_classes=4, seed=0)
        >>> images, labels = cutmix(torch.randn(3, 3, 16, 16), torch.tensor([0, 1, 3]))
        >>> tuple(images.shape), tuple(labels.shape)
        ((3, 3, 16, 16), (3, 4))
    """

    _min_dims = 3

    def __init__(
        self,
        alpha: float,
        num_classes: int | None = None,
        cutmix_minmax: Sequence[float] | None = None,
        correct_lam: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(alpha, num_classes, seed)
        self.cutmix_minmax = _check_minmax(cutmix_minmax)
        if not isinstance(correct_lam, bool):
            raise TypeError(
                f"`correct_lam` must be a bool, got {type(correct_lam).__name__}: {correct_lam!r}"
            )
        self.correct_lam = correct_lam

    def mix(self, inputs: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste one box of each partner image into ``inputs`` ``(N, ..., H, W)``.

        Returns:
            The mixed images (a new tensor) and the mixed ``(N, C)`` scores.
        """
        device = inputs.device
        height, width = inputs.shape[-2], inputs.shape[-1]
        generator = self._random.generator(device)
        lam = sample_beta(self.alpha, device, generator)
        pairs = sample_permutation(inputs.shape[0], device, generator)
        uniforms = sample_uniform(4, device, generator)
        if self.cutmix_minmax is None:
            top, bottom = _centred_span(height, lam, uniforms[0])
            left, right = _centred_span(width, lam, uniforms[1])
        else:
            low, high = self.cutmix_minmax
            top, bottom = _inner_span(height, low, high, uniforms[0], uniforms[2])
            left, right = _inner_span(width, low, high, uniforms[1], uniforms[3])
        if self.correct_lam or self.cutmix_minmax is not None:
            lam = 1 - (bottom - top) * (right - left) / (height * width)
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        in_box = ((rows >= top) & (rows < bottom)).unsqueeze(1) & ((cols >= left) & (cols < right))
        mixed = torch.where(in_box, inputs[pairs], inputs)
        mixed_scores = torch.lerp(scores[pairs], scores, lam.to(scores.dtype))
        return mixed, mixed_scores

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, cutmix_minmax={self.cutmix_minmax}, "
            f"correct_lam={self.correct_lam}"
        )


def _centred_span(size: int, lam: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``[start, stop)`` of a side of ``int(size * sqrt(1 - lam))`` around a random centre."""
    cut = torch.floor(size * torch.sqrt(1 - lam))
    centre = torch.floor(uniform * size)
    half = torch.floor(cut / 2)
    return (centre - half).clamp(0, size), (centre + half).clamp(0, size)


def _inner_span(
    size: int, low: float, high: float, uniform_size: torch.Tensor, uniform_start: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``[start, stop)`` of a side drawn from ``[int(size*low), int(size*high))``, inside."""
    smallest, largest = int(size * low), int(size * high)
    cut = smallest + torch.floor(uniform_size * max(largest - smallest, 0))
    start = torch.floor(uniform_start * (size - cut))
    return start, start + cut


def _check_minmax(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(item, numbers.Real) and not isinstance(item, bool) for item in value)
    ):
        raise TypeError(
            f"`cutmix_minmax` must be None or a pair (lo, hi) of fractions, got {value!r}"
        )
    low, high = float(value[0]), float(value[1])
    if not 0 <= low < high <= 1:
        raise ValueError(f"`cutmix_minmax` must satisfy 0 <= lo < hi <= 1, got {value!r}")
    return low, high
