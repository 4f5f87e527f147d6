"""RandomBatchAugment: pick one batch augment per batch, with given probabilities.

The pick decides which module runs, so it is made on the host, from a CPU
generator: deciding from a draw on the GPU would make the host wait for it. The
augment that runs still draws its own parameters on the images' device.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from camshaft.model import MODELS
from camshaft.preprocess._labels import read_soft_labels, write_soft_labels
from camshaft.preprocess._sampling import RandomSource

__all__ = ["RandomBatchAugment", "build_augment"]

_CPU = torch.device("cpu")


def build_augment(augment: object, name: str) -> nn.Module:
    """Return ``augment`` if it is a module, or build it from a config dict in MODELS.

    Raises:
        TypeError: ``augment`` is neither an ``nn.Module`` nor a dict with ``type``.
    """
    if isinstance(augment, nn.Module):
        return augment
    if isinstance(augment, Mapping) and "type" in augment:
        built = MODELS.build(augment)
        if isinstance(built, nn.Module):
            return built
        raise TypeError(
            f"`{name}` = {dict(augment)!r} built a {type(built).__name__}, not an nn.Module "
            f"taking and returning (inputs, data_samples)"
        )
    raise TypeError(
        f"`{name}` must be an nn.Module or a config dict with a 'type' key (such as "
        f"dict(type='MixUp', alpha=0.8)), got {type(augment).__name__}: {augment!r}"
    )


@MODELS.register_module()
class RandomBatchAugment(nn.Module):
    """Apply one of several batch augments per batch, or none, chosen at random.

    The probability left over when ``probs`` sums to less than 1 is the chance that
    no augment runs. Even then the labels are handed on in the form the augments
    produce (soft ``(N, C)`` scores, or each sample's ``gt_score`` set to its one-hot
    row), so the loss always sees one label form during training.

    Args:
        augments: A module or config dict, or a list of them; each is called as
            ``aug(inputs, data_samples)`` and returns ``(inputs, data_samples)``.
        probs: One probability per augment (a float for a single augment), summing
            to at most 1. None (default) picks uniformly among the augments.
        seed: None picks from torch's default CPU generator; an int picks from a
            private one and also seeds augment ``i`` with ``seed + 1 + i`` when it has
            a ``manual_seed`` method (see :meth:`manual_seed`).

    Raises:
        TypeError: An augment is not a module or config dict, or ``probs`` is not
            a number or a list of numbers.
        ValueError: ``augments`` is empty, or ``probs`` has the wrong length, a
            value outside [0, 1], or sums to more than 1.

    Example:
        >>> import torch
        >>> augment = RandomBatchAugment(
        ...     augments=[dict(type='MixUp', alpha=0.8, num_classes=10),
        ...               dict(type='CutMix', alpha=1.0, num_classes=10)],
        ...     probs=[0.5, 0.5], seed=0)
        >>> images, labels = augment(torch.randn(4, 3, 8, 8), torch.tensor([1, 2, 3, 4]))
        >>> tuple(labels.shape)
        (4, 10)
    """

    def __init__(
        self,
        augments: Any,
        probs: float | Sequence[float] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        items = list(augments) if isinstance(augments, (list, tuple)) else [augments]
        if not items:
            raise ValueError("`augments` must hold at least one augment, got an empty list")
        self.augments = nn.ModuleList(
            build_augment(item, f"augments[{index}]") for index, item in enumerate(items)
        )
        self.probs = _check_probs(probs, len(items))
        self._bounds = list(itertools.accumulate(self.probs))
        if self._bounds[-1] > 1 - 1e-6:  # no room left for "no augment" but rounding
            self._bounds[-1] = 1.0
        self._random = RandomSource(None)
        if seed is not None:
            self.manual_seed(seed)

    @property
    def num_classes(self) -> int | None:
        """The first ``num_classes`` an augment has; used to one-hot labels when none runs."""
        for augment in self.augments:
            found = getattr(augment, "num_classes", None)
            if isinstance(found, int):
                return found
        return None

    def manual_seed(self, seed: int) -> RandomBatchAugment:
        """Seed the pick with ``seed`` and augment ``i`` with ``seed + 1 + i``.

        Augments without a ``manual_seed`` method are left as they are.

        Returns:
            This module.

        Raises:
            TypeError: ``seed`` is not an int.
        """
        self._random.manual_seed(seed)
        for index, augment in enumerate(self.augments):
            seeder = getattr(augment, "manual_seed", None)
            if callable(seeder):
                seeder(seed + 1 + index)
        return self

    def get_rng_state(self) -> dict[str, torch.Tensor]:
        """States of the pick's generator and of every seeded augment's generators.

        Keys are ``'pick/<device>'`` and ``'augments.<i>/<device>'``.
        """
        state = {f"pick/{key}": value for key, value in self._random.get_state().items()}
        for index, augment in enumerate(self.augments):
            getter = getattr(augment, "get_rng_state", None)
            if callable(getter):
                for key, value in getter().items():
                    state[f"augments.{index}/{key}"] = value
        return state

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore states returned by :meth:`get_rng_state` (seed the module first).

        Raises:
            TypeError: ``state`` is not a dict of tensors.
            ValueError: A key names no part of this module, or a part is unseeded.
        """
        if not isinstance(state, dict):
            raise TypeError(f"`state` must be a dict, got {type(state).__name__}")
        parts: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            part, _, device = str(key).partition("/")
            parts.setdefault(part, {})[device] = value
        for part, part_state in parts.items():
            if part == "pick":
                self._random.set_state(part_state)
                continue
            index = part.removeprefix("augments.")
            setter = None
            if index.isdigit() and int(index) < len(self.augments):
                setter = getattr(self.augments[int(index)], "set_rng_state", None)
            if not callable(setter):
                raise ValueError(f"`state` key {part!r} names no seedable part of this module")
            setter(part_state)

    def forward(self, inputs: torch.Tensor, data_samples: Any) -> tuple[torch.Tensor, Any]:
        """Run the augment picked for this batch, or pass the batch on with soft labels.

        Args:
            inputs: The normalised image batch.
            data_samples: Labels in a form the augments accept.

        Returns:
            ``(inputs, data_samples)`` as the picked augment returns them.
        """
        draw = torch.rand((), generator=self._random.generator(_CPU)).item()
        picked = bisect.bisect_right(self._bounds, draw)
        if picked < len(self.augments):
            return self.augments[picked](inputs, data_samples)
        scores = read_soft_labels(
            data_samples, self.num_classes, inputs.shape[0], inputs.device, "RandomBatchAugment"
        )
        return inputs, write_soft_labels(data_samples, scores)

    def extra_repr(self) -> str:
        return f"probs={self.probs}, seed={self._random.seed}"


def _check_probs(probs: object, count: int) -> list[float]:
    if probs is None:
        return [1.0 / count] * count
    if isinstance(probs, numbers.Real) and not isinstance(probs, bool):
        probs = [probs]
    if not isinstance(probs, (list, tuple)) or not all(
        isinstance(p, numbers.Real) and not isinstance(p, bool) for p in probs
    ):
        raise TypeError(
            f"`probs` must be a number, a list of numbers or None, got "
            f"{type(probs).__name__}: {probs!r}"
        )
    if len(probs) != count:
        raise ValueError(
            f"`probs` must give one probability per augment: {count} augments, "
            f"got {len(probs)} probs {list(probs)!r}"
        )
    values = [float(p) for p in probs]
    if not all(0 <= p <= 1 for p in values):
        raise ValueError(f"every value of `probs` must lie in [0, 1], got {list(probs)!r}")
    total = math.fsum(values)
    if total > 1 + 1e-6:
        raise ValueError(
            f"`probs` must sum to at most 1 (what is left is the chance of no augment), "
            f"got {list(probs)!r} summing to {total:g}"
        )
    return values
