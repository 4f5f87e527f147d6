"""MixUp, and the base that MixUp and CutMix share: arguments, labels, random source.

A batch augment is an ``nn.Module`` called as ``aug(inputs, data_samples)`` that
returns ``(inputs, data_samples)``; ``ImgDataPreprocessor`` calls it after
normalising and padding, and only when ``training=True``. Both augments pair every
image with another from the same batch through one random permutation (so any batch
size works, odd ones included), draw their parameters on the images' device, and mix
the whole batch in one tensor expression: no per-sample Python loop, no wait on the
device. How labels are read and written back is in ``_labels``; where the random
numbers come from, and how to seed them, in ``_sampling``.
"""

from __future__ import annotations

import numbers
from typing import Any, TypeVar

import torch
from torch import nn

from camshaft.model import MODELS
from camshaft.preprocess._labels import read_soft_labels, write_soft_labels
from camshaft.preprocess._sampling import (
    RandomSource,
    sample_beta,
    sample_permutation,
)

__all__ = ["BaseBatchMix", "MixUp"]

_MixT = TypeVar("_MixT", bound="BaseBatchMix")


def check_positive_number(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a real number > 0, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number > 0, got {type(value).__name__}: {value!r}")
    if not float(value) > 0:  # also refuses NaN
        raise ValueError(f"`{name}` must be > 0, got {value!r}")
    return float(value)


class BaseBatchMix(nn.Module):
    """What MixUp and CutMix share: ``alpha``, labels, seeding and ``forward``.

    Subclasses implement :meth:`mix`. Labels are read in any of the forms described
    in :func:`read_soft_labels` (class indices ``(N,)``, soft labels ``(N, C)``, or
    data samples with ``gt_label`` / ``gt_score``) and handed on mixed, as a float32
    ``(N, C)`` tensor or as each sample's ``gt_score``.

    Args:
        alpha: Both parameters of the Beta(``alpha``, ``alpha``) distribution the
            mixing ratio is drawn from; must be > 0.
        num_classes: The number of classes, needed to one-hot class indices. None
            reads it from the first data sample's ``num_classes``, if it has one.
        seed: None draws from torch's default generator of the images' device;
            an int draws from a private generator seeded with it (see
            :meth:`manual_seed`).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``alpha`` is not > 0 or ``num_classes`` is below 1.
    """

    def __init__(
        self, alpha: float, num_classes: int | None = None, seed: int | None = None
    ) -> None:
        super().__init__()
        self.alpha = check_positive_number(alpha, "alpha")
        if num_classes is not None:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int):
                raise TypeError(
                    f"`num_classes` must be an int >= 1 or None, got "
                    f"{type(num_classes).__name__}: {num_classes!r}"
                )
            if num_classes < 1:
                raise ValueError(f"`num_classes` must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self._random = RandomSource(seed)

    @property
    def seed(self) -> int | None:
        """The seed of the private generators, or None when drawing from torch's."""
        return self._random.seed

    def manual_seed(self: _MixT, seed: int) -> _MixT:
        """Draw from a private generator seeded with ``seed`` from the next batch on.

        Returns:
            This augment, so that ``MixUp(0.8).manual_seed(0)`` reads as one step.

        Raises:
            TypeError: ``seed`` is not an int.
        """
        self._random.manual_seed(seed)
        return self

    def get_rng_state(self) -> dict[str, torch.Tensor]:
        """The private generators' states, keyed by device (empty when unseeded)."""
        return self._random.get_state()

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore states from :meth:`get_rng_state`, to resume a seeded run exactly.

        Raises:
            TypeError: ``state`` is not a dict of tensors.
            ValueError: This augment is unseeded.
        """
        self._random.set_state(state)

    def forward(self, inputs: torch.Tensor, data_samples: Any) -> tuple[torch.Tensor, Any]:
        """Mix a batch of images and their labels.

        Args:
            inputs: Floating-point images, ``(N, C, H, W)`` (or ``(N, ...)`` for MixUp).
            data_samples: The labels, in one of the forms in the class docstring.

        Returns:
            The mixed images (a new tensor; ``inputs`` is not changed) and the labels
            mixed the same way: a float32 ``(N, C)`` tensor for tensor labels, else
            the same samples with ``gt_score`` set.

        Raises:
            TypeError: ``inputs`` is not a floating-point tensor, or the labels are
                none of the accepted forms.
            ValueError: ``inputs`` has too few dimensions, or the labels do not fit
                the batch.
        """
        self._check_inputs(inputs)
        scores = read_soft_labels(
            data_samples, self.num_classes, inputs.shape[0], inputs.device, type(self).__name__
        )
        mixed_inputs, mixed_scores = self.mix(inputs, scores)
        return mixed_inputs, write_soft_labels(data_samples, mixed_scores)

    def mix(self, inputs: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix images and ``(N, C)`` soft labels; implemented by each augment."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}, seed={self.seed}"

    _min_dims = 2

    def _check_inputs(self, inputs: object) -> None:
        name = type(self).__name__
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"{name}: `inputs` must be a tensor, got {type(inputs).__name__}")
        if not inputs.is_floating_point():
            raise TypeError(
                f"{name}: `inputs` must be floating point (normalised images), got "
                f"{inputs.dtype}; put the augment after ImgDataPreprocessor's normalisation"
            )
        if inputs.ndim < self._min_dims:
            raise ValueError(
                f"{name}: `inputs` must have at least {self._min_dims} dimensions "
                f"(N, C, H, W), got shape {tuple(inputs.shape)}"
            )


@MODELS.register_module(name=["MixUp", "Mixup"])
class MixUp(BaseBatchMix):
    r"""MixUp: blend every image and its label with another sample of the batch.

    With ``lam ~ Beta(alpha, alpha)`` drawn once per batch and a random permutation
    ``p`` of the batch, image ``i`` becomes ``lam * x[i] + (1 - lam) * x[p[i]]`` and its
    soft label ``lam * y[i] + (1 - lam) * y[p[i]]`` (Zhang et al., 2018,
    arXiv:1710.09412). Registered as ``'MixUp'`` and, for configs written for
    mmpretrain, ``'Mixup'``.

    Args:
        alpha: Beta distribution parameter, > 0. 0.8 and 1.0 are common.
        num_classes: Needed when labels are class indices; see
            :class:`BaseBatchMix`.
        seed: None (torch's default generators) or an int (a private, seeded
            generator); see :meth:`BaseBatchMix.manual_seed`.

    Example:
        >>> import torch
        >>> mixup = MixUp(alpha=0.8, num_classes=10, seed=0)
        >>> images, labels = mixup(torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4]))
        >>> tuple(images.shape), tuple(labels.shape)
        ((5, 3, 8, 8), (5, 10))
        >>> bool(torch.allclose(labels.sum(dim=1), torch.ones(5)))
        True
    """

    def mix(self, inputs: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``inputs`` ``(N, ...)`` and ``scores`` ``(N, C)`` with one ratio and pairing.

        Returns:
            The mixed images and the mixed scores, both new tensors.
        """
        generator = self._random.generator(inputs.device)
        lam = sample_beta(self.alpha, inputs.device, generator)
        pairs = sample_permutation(inputs.shape[0], inputs.device, generator)
        # lerp(partner, own, lam) == lam * own + (1 - lam) * partner, in one kernel.
        mixed = torch.lerp(inputs[pairs], inputs, lam.to(inputs.dtype))
        mixed_scores = torch.lerp(scores[pairs], scores, lam.to(scores.dtype))
        return mixed, mixed_scores
