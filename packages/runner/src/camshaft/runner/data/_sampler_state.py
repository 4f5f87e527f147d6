"""Argument checks and sharding shared by the samplers.

Kept apart from the sampler classes so that both samplers validate their arguments
and their checkpointed state with the same messages, and so that the shard
arithmetic can be read (and tested) on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Any

import torch

from camshaft.dist import get_dist_info, sync_random_seed

__all__ = [
    "check_bool",
    "check_int",
    "check_state",
    "dataset_size",
    "permutation",
    "resolve_rank",
    "resolve_seed",
]


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; raise ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}: {value!r}")
    return value


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    """Return ``value`` if it is an int (not a bool) ``>= minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def dataset_size(dataset: object) -> int:
    """Return ``len(dataset)``; raise ``TypeError`` when the dataset has no length."""
    if not isinstance(dataset, Sized):
        raise TypeError(
            f"`dataset` must have a length (a map-style Dataset or a sequence), "
            f"got {type(dataset).__name__}"
        )
    return len(dataset)


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Return ``(rank, world_size)``: the overrides when given, camshaft.dist's otherwise.

    Both overrides must be given together (they exist to test sharding without a
    process group); ``0 <= rank < world_size`` is checked.
    """
    if (rank is None) != (world_size is None):
        raise ValueError(
            f"`rank` and `world_size` must be given together or not at all, "
            f"got rank={rank!r}, world_size={world_size!r}"
        )
    if rank is None or world_size is None:
        return get_dist_info()
    check_int("world_size", world_size, minimum=1)
    check_int("rank", rank)
    if rank >= world_size:
        raise ValueError(f"`rank` must be < world_size ({world_size}), got {rank}")
    return rank, world_size


def resolve_seed(seed: int | None) -> int:
    """Return ``seed``, or a seed shared by every rank (:func:`sync_random_seed`) if None."""
    if seed is None:
        return sync_random_seed()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int or None, got {type(seed).__name__}: {seed!r}")
    return seed


def permutation(size: int, seed: int, *, shuffle: bool) -> list[int]:
    """Return ``range(size)``, shuffled by a generator seeded with ``seed`` if ``shuffle``."""
    if not shuffle:
        return list(range(size))
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(size, generator=generator).tolist()


def check_state(owner: str, state: object, keys: tuple[str, ...]) -> dict[str, int]:
    """Validate a sampler ``state_dict``: a mapping holding ``keys``, each a plain int.

    Args:
        owner: the sampler's class name, for the message.
        state: what was passed to ``load_state_dict``.
        keys: the keys that must be present.

    Returns:
        A new dict with exactly ``keys``.
    """
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{owner}.load_state_dict: `state` must be a mapping with keys {list(keys)}, "
            f"got {type(state).__name__}: {state!r}"
        )
    missing = [key for key in keys if key not in state]
    if missing:
        raise KeyError(
            f"{owner}.load_state_dict: `state` lacks {missing}; expected keys {list(keys)}, "
            f"got {sorted(map(str, state))}. Was it saved by a different sampler?"
        )
    values: dict[str, Any] = {key: state[key] for key in keys}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{owner}.load_state_dict: state[{key!r}] must be an int, "
                f"got {type(value).__name__}: {value!r}"
            )
    return values
