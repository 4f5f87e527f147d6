"""``DefaultSampler``: MMEngine's epoch sampler, plus a position for exact resume.

What it promises:

* Each epoch every rank gets its shard of one index list, the same on every rank:
  ``range(len(dataset))``, shuffled by ``seed + epoch`` when ``shuffle``. With
  ``round_up`` the list is padded by repeating it, so every rank yields the same
  number of indices; without it, the first ``len(dataset) % world_size`` ranks yield
  one more and no index is repeated.
* The sampler knows how many indices of the current epoch the training loop has
  consumed -- but only because the loop says so through :meth:`advance`. The
  sampler cannot count what it yields: a DataLoader with workers draws indices
  ``num_workers * prefetch_factor`` batches ahead of the model.
* :meth:`state_dict` is ``{'epoch', 'seed', 'consumed'}`` (plain ints, so
  ``torch.load(weights_only=True)`` reads a checkpoint holding it). After
  :meth:`load_state_dict`, the next ``iter()`` starts at index ``consumed`` of that
  epoch's list -- nothing replayed, nothing skipped, no batches drawn and thrown
  away -- and later epochs are the ones an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any

from torch.utils.data import Sampler

from camshaft.runner._registry import DATA_SAMPLERS
from camshaft.runner.data._sampler_state import (
    check_bool,
    check_int,
    check_state,
    dataset_size,
    permutation,
    resolve_rank,
    resolve_seed,
)

__all__ = ["DefaultSampler"]


@DATA_SAMPLERS.register_module()
class DefaultSampler(Sampler[int]):
    """Shard a map-style dataset across ranks, one epoch at a time, resumably.

    The training loop must call :meth:`advance` once per batch it consumed (with the
    batch size) and :meth:`set_epoch` before each epoch; the Runner does both.
    ``len(sampler)`` is always the full per-rank count of an epoch, even for an epoch
    resumed part-way (which yields ``len(sampler) - consumed`` indices), so a loop
    must not derive its iteration count of a resumed epoch from ``len(loader)``.

    ``iter()`` always starts at the consumed position of the current epoch: calling
    it again in the same epoch continues there, and once the epoch is fully consumed
    it yields nothing until :meth:`set_epoch` selects another epoch (or
    ``set_consumed(0)`` rewinds). So a checkpoint taken after an epoch's last batch
    resumes to an empty remainder, then the next epoch. Code that never calls
    :meth:`advance` sees MMEngine's behaviour: every ``iter()`` is a whole epoch.

    Args:
        dataset: a sized dataset (only its length is used).
        shuffle: shuffle the index list each epoch with ``seed + epoch``.
        seed: the shuffle seed, the same on every rank; None draws one on rank 0
            and broadcasts it (:func:`camshaft.dist.sync_random_seed`).
        round_up: pad the list so every rank yields ``ceil(len(dataset) / world_size)``
            indices.
        rank: this process's rank; with ``world_size``, overrides camshaft.dist's
            (for tests and tools that shard without a process group).
        world_size: the number of ranks; given together with ``rank``.

    Raises:
        TypeError: ``shuffle``/``round_up`` is not a bool, ``seed`` not an int, or
            the dataset has no length.
        ValueError: ``rank``/``world_size`` out of range or given alone.

    Example:
        >>> sampler = DefaultSampler(range(10), seed=0, rank=1, world_size=4)
        >>> len(sampler), len(list(sampler))
        (3, 3)
        >>> sampler.advance(2)
        >>> sampler.state_dict()
        {'epoch': 0, 'seed': 0, 'consumed': 2}
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int | None = None,
        round_up: bool = True,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.shuffle = check_bool("shuffle", shuffle)
        self.round_up = check_bool("round_up", round_up)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.seed = resolve_seed(seed)
        self.epoch = 0
        self._consumed = 0
        size = dataset_size(dataset)
        if self.round_up:
            self.num_samples = math.ceil(size / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = max(0, math.ceil((size - self.rank) / self.world_size))
            self.total_size = size

    @property
    def consumed(self) -> int:
        """Indices of the current epoch the training loop has consumed on this rank."""
        return self._consumed

    def epoch_indices(self, epoch: int | None = None) -> list[int]:
        """Return this rank's full index list for ``epoch`` (the current one if None).

        Args:
            epoch: the epoch whose list to return.

        Returns:
            ``len(self)`` dataset indices, in the order an epoch yields them.

        Example:
            >>> DefaultSampler(range(5), shuffle=False, rank=0, world_size=2).epoch_indices()
            [0, 2, 4]
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch)
        size = dataset_size(self.dataset)
        if size == 0:
            return []
        indices = permutation(size, self.seed + epoch, shuffle=self.shuffle)
        if self.round_up:
            repeats = math.ceil(self.total_size / size)
            indices = (indices * repeats)[: self.total_size]
        return indices[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        # The list is built eagerly: the start position is the one at iter() time,
        # whatever advance() calls happen while the DataLoader prefetches.
        return iter(self.epoch_indices()[self._consumed :])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next ``iter()`` yields; a new epoch starts at index 0.

        Setting the epoch that is already current keeps the consumed position, so a
        loop that calls ``set_epoch(e)`` after ``load_state_dict`` resumes epoch ``e``.

        Args:
            epoch: the epoch number (``>= 0``); the shuffle seed is ``seed + epoch``.

        Example:
            >>> sampler = DefaultSampler(range(4), seed=0, rank=0, world_size=1)
            >>> sampler.set_epoch(3)
            >>> sampler.state_dict()['epoch']
            3
        """
        epoch = check_int("epoch", epoch)
        if epoch != self.epoch:
            self._consumed = 0
        self.epoch = epoch

    def advance(self, n: int) -> None:
        """Record that the training loop consumed ``n`` more indices of this epoch.

        Call it once per consumed batch with the batch size; a short last batch may
        pass the full batch size, as the count is capped at ``len(self)``.

        Args:
            n: the number of indices consumed (``>= 0``).

        Example:
            >>> sampler = DefaultSampler(range(5), seed=0, rank=0, world_size=1)
            >>> sampler.advance(4); sampler.advance(4); sampler.consumed
            5
        """
        n = check_int("n", n)
        self._consumed = min(self._consumed + n, self.num_samples)

    def set_consumed(self, n: int) -> None:
        """Set how many indices of the current epoch have been consumed.

        Args:
            n: the position, ``0 <= n <= len(self)``.

        Raises:
            ValueError: ``n`` is out of that range.

        Example:
            >>> sampler = DefaultSampler(range(5), shuffle=False, rank=0, world_size=1)
            >>> sampler.set_consumed(3); list(sampler)
            [3, 4]
        """
        n = check_int("n", n)
        if n > self.num_samples:
            raise ValueError(
                f"`n` must be <= the per-rank epoch length ({self.num_samples}), got {n}"
            )
        self._consumed = n

    def state_dict(self) -> dict[str, int]:
        """Return ``{'epoch', 'seed', 'consumed'}`` as plain ints.

        Example:
            >>> DefaultSampler(range(4), seed=7, rank=0, world_size=1).state_dict()
            {'epoch': 0, 'seed': 7, 'consumed': 0}
        """
        return {"epoch": self.epoch, "seed": self.seed, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``iter()`` resumes at its position.

        The saved seed replaces this sampler's, so the resumed epoch is the same
        permutation. The world size must be the one the state was saved with:
        ``consumed`` counts this rank's indices.

        Args:
            state: a dict from :meth:`state_dict`.

        Raises:
            KeyError: a key is missing.
            TypeError: ``state`` is not a mapping or a value is not an int.
            ValueError: ``epoch``/``consumed`` is negative or ``consumed`` exceeds
                ``len(self)``.

        Example:
            >>> sampler = DefaultSampler(range(6), shuffle=False, rank=0, world_size=1)
            >>> sampler.load_state_dict({'epoch': 2, 'seed': 0, 'consumed': 4})
            >>> list(sampler)
            [4, 5]
        """
        values = check_state(type(self).__name__, state, ("epoch", "seed", "consumed"))
        epoch = check_int("state['epoch']", values["epoch"])
        consumed = check_int("state['consumed']", values["consumed"])
        if consumed > self.num_samples:
            raise ValueError(
                f"state['consumed'] ({consumed}) exceeds the per-rank epoch length "
                f"({self.num_samples}); was the state saved with another world size or dataset?"
            )
        self.epoch, self.seed, self._consumed = epoch, values["seed"], consumed
