"""Seeding DataLoader worker processes so random augmentation is reproducible.

A worker's random modules start from a copy of the main process's state (fork) or
from fresh state (spawn); either way two runs would augment differently. The
function here gives worker ``worker_id`` of rank ``rank`` the seed
``num_workers * rank + worker_id + seed`` (MMEngine's formula), so the workers of
all ranks get distinct, reproducible seeds.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["worker_init_fn"]


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch inside a DataLoader worker.

    Pass it to a DataLoader through ``functools.partial`` with every argument but
    ``worker_id`` bound; :func:`build_dataloader` does so when it is given a seed.

    Args:
        worker_id: the worker's index, passed by the DataLoader.
        num_workers: the DataLoader's ``num_workers``.
        rank: this process's rank.
        seed: the run's seed.

    Example:
        >>> import functools
        >>> init = functools.partial(worker_init_fn, num_workers=2, rank=0, seed=42)
        >>> init(1)  # what the DataLoader calls in worker 1
        >>> import random; first = random.random(); init(1)
        >>> random.random() == first
        True
    """
    worker_seed = num_workers * rank + worker_id + seed
    random.seed(worker_seed)
    np.random.seed(worker_seed % 2**32)
    torch.manual_seed(worker_seed)
