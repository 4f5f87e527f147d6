"""``InfiniteSampler``: an endless, resumable index stream for iteration-based training.

What it promises:

* The global stream is pass 0, pass 1, ... of ``range(len(dataset))``, pass ``p``
  shuffled by ``seed + p`` when ``shuffle``; rank ``r`` of ``w`` yields every
  ``w``-th index of it starting at ``r``, so ranks never overlap and together see
  every index once per pass.
* The position is the number of this rank's indices the training loop consumed,
  reported through :meth:`advance` (the sampler cannot count what it yields: a
  DataLoader with workers draws ahead). :meth:`state_dict` is ``{'seed',
  'consumed'}`` as plain ints; after :meth:`load_state_dict` the next ``iter()``
  starts exactly there, across pass boundaries included, by arithmetic rather than
  by drawing and discarding indices.
"""

from __future__ import annotations

import itertools
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

__all__ = ["InfiniteSampler"]


@DATA_SAMPLERS.register_module()
class InfiniteSampler(Sampler[int]):
    """Yield this rank's share of an endless, per-pass reshuffled index stream.

    The training loop must call :meth:`advance` once per consumed batch with the
    batch size; the Runner does. ``len(sampler)`` is ``len(dataset)``, as in MMEngine
    (the stream itself never ends). :meth:`set_epoch` is accepted and ignored, so
    hooks written for epoch samplers work unchanged.

    Args:
        dataset: a sized, non-empty dataset (only its length is used).
        shuffle: shuffle each pass ``p`` with ``seed + p``.
        seed: the shuffle seed, the same on every rank; None draws one on rank 0
            and broadcasts it (:func:`camshaft.dist.sync_random_seed`).
        rank: this process's rank; with ``world_size``, overrides camshaft.dist's.
        world_size: the number of ranks; given together with ``rank``.

    Raises:
        TypeError: ``shuffle`` is not a bool, ``seed`` not an int, or the dataset
            has no length.
        ValueError: the dataset is empty, or ``rank``/``world_size`` is invalid.

    Example:
        >>> import itertools
        >>> sampler = InfiniteSampler(range(3), shuffle=False, rank=0, world_size=2)
        >>> list(itertools.islice(sampler, 4))
        [0, 2, 1, 0]
        >>> sampler.advance(1)
        >>> list(itertools.islice(sampler, 2))
        [2, 1]
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.shuffle = check_bool("shuffle", shuffle)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.seed = resolve_seed(seed)
        self.size = dataset_size(dataset)
        if self.size == 0:
            raise ValueError(
                "`dataset` is empty; InfiniteSampler would loop forever without "
                "yielding. Check the dataset's annotation file or filters."
            )
        self._consumed = 0

    @property
    def consumed(self) -> int:
        """Indices of the stream the training loop has consumed on this rank."""
        return self._consumed

    def _stream(self, start: int) -> Iterator[int]:
        """Yield the global stream from global position ``start``."""
        first_pass, offset = divmod(start, self.size)
        for pass_ in itertools.count(first_pass):
            indices = permutation(self.size, self.seed + pass_, shuffle=self.shuffle)
            yield from indices[offset:]
            offset = 0

    def __iter__(self) -> Iterator[int]:
        # The start is fixed now, whatever advance() calls happen during prefetching.
        start = self.rank + self._consumed * self.world_size
        return itertools.islice(self._stream(start), 0, None, self.world_size)

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Accept and ignore an epoch: the stream's passes are not epochs.

        Args:
            epoch: ignored.
        """

    def advance(self, n: int) -> None:
        """Record that the training loop consumed ``n`` more indices of the stream.

        Args:
            n: the number of indices consumed, usually the batch size (``>= 0``).

        Example:
            >>> sampler = InfiniteSampler(range(4), seed=0, rank=0, world_size=1)
            >>> sampler.advance(6); sampler.consumed
            6
        """
        self._consumed += check_int("n", n)

    def set_consumed(self, n: int) -> None:
        """Set the stream position: the next ``iter()`` starts at this rank's index ``n``.

        Args:
            n: the position (``>= 0``).

        Example:
            >>> sampler = InfiniteSampler(range(3), shuffle=False, rank=0, world_size=1)
            >>> sampler.set_consumed(2); next(iter(sampler))
            2
        """
        self._consumed = check_int("n", n)

    def state_dict(self) -> dict[str, int]:
        """Return ``{'seed', 'consumed'}`` as plain ints.

        Example:
            >>> InfiniteSampler(range(3), seed=5, rank=0, world_size=1).state_dict()
            {'seed': 5, 'consumed': 0}
        """
        return {"seed": self.seed, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``iter()`` resumes at its position.

        The saved seed replaces this sampler's. The world size must be the one the
        state was saved with: ``consumed`` counts this rank's indices.

        Args:
            state: a dict from :meth:`state_dict`.

        Raises:
            KeyError: a key is missing.
            TypeError: ``state`` is not a mapping or a value is not an int.
            ValueError: ``consumed`` is negative.

        Example:
            >>> sampler = InfiniteSampler(range(3), shuffle=False, rank=0, world_size=1)
            >>> sampler.load_state_dict({'seed': 0, 'consumed': 4})
            >>> next(iter(sampler))
            1
        """
        values = check_state(type(self).__name__, state, ("seed", "consumed"))
        consumed = check_int("state['consumed']", values["consumed"])
        self.seed, self._consumed = values["seed"], consumed
