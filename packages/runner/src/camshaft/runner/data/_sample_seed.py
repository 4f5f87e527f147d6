"""Per-sample seeds for randomness inside DataLoader workers, so resume stays exact.

A worker's generators are seeded once when it starts. After a mid-epoch resume the
workers restart on a different batch than they had reached, so a random transform
inside ``Dataset.__getitem__`` would draw differently than in an uninterrupted run.
With worker processes, :func:`build_dataloader` therefore hands each sample its own
seed: :class:`SampleSeedSampler` yields ``(index, seed)`` pairs, the seed mixed from
the run's seed, the rank, the epoch and the sample's position in it, and
:class:`SampleSeededDataset` seeds python, numpy and torch with it before reading the
sample. The augmentation of a sample then depends only on where it is in the run,
not on which worker reads it or when the run was restarted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["sample_seed", "SampleSeedSampler", "SampleSeededDataset"]

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, rank: int, epoch: int, position: int) -> int:
    """A 63-bit seed mixed from the four numbers (splitmix64 finalizer).

    Example:
        >>> sample_seed(0, 0, 0, 1) != sample_seed(0, 0, 0, 2)
        True
    """
    x = (seed * 0x9E3779B97F4A7C15 + rank * 0xD1B54A32D192ED03) & _MASK64
    x = (x + epoch * 0xBF58476D1CE4E5B9 + position * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return x >> 1


class SampleSeedSampler(Sampler[tuple[int, int]]):
    """Yield ``(index, seed)`` for each index of a resumable camshaft sampler.

    Everything else (``advance``, ``state_dict``, ``set_epoch``, ``epoch``, ...) is the
    wrapped sampler's, so the training loop's resume logic sees the sampler itself.

    Args:
        sampler: A ``DefaultSampler`` or ``InfiniteSampler`` (anything with
            ``seed``, ``consumed`` and ``rank``).
    """

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        base = self.sampler
        seed, rank, epoch = base.seed, base.rank, getattr(base, "epoch", 0)
        for position, index in enumerate(iter(base), start=base.consumed):
            yield index, sample_seed(seed, rank, epoch, position)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


class SampleSeededDataset(Dataset[Any]):
    """Seed python, numpy and torch from the sample's seed, then read the sample.

    Keys that are not ``(index, seed)`` pairs are passed through unchanged; other
    attributes (``metainfo``, ...) are the wrapped dataset's.

    Args:
        dataset: The dataset to read from.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __getitem__(self, key: Any) -> Any:
        if type(key) is tuple:
            index, seed = key
            random.seed(seed)
            np.random.seed(seed & 0xFFFFFFFF)
            torch.manual_seed(seed)
            return self.dataset[index]
        return self.dataset[key]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        # Dunder lookups (e.g. DataLoader's `__getitems__` probe) must not reach the
        # wrapped dataset: a batched fetch would bypass the per-sample seeding.
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
