"""``build_dataloader``: a DataLoader from a config dict, seeded and resumable.

What it promises:

* A ``DataLoader`` passes through untouched; a dict is read, never mutated, so the
  same config can be built again (for each of train/val/test, or after a restart).
* ``dataset`` is a dataset object or a config built from :data:`DATASETS`;
  ``sampler`` a config built from :data:`DATA_SAMPLERS` with the dataset and seed as
  defaults (``DefaultSampler`` shuffling when absent) or a sampler object;
  ``collate_fn`` a callable or ``dict(type='pseudo_collate' | 'default_collate')``
  (``pseudo_collate`` when absent, as in MMEngine). Every other key goes to
  ``DataLoader`` as it is.
* With a seed, every worker of every rank is seeded by :func:`worker_init_fn`; with
  worker processes and a resumable sampler, every *sample* is also seeded
  (:mod:`._sample_seed`), so random transforms in ``__getitem__`` resume exactly.
* Each mistake is reported with the key, the value and what was expected: an
  unknown dataset or sampler type lists the closest registered names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from torch.utils.data import DataLoader, Sampler

from camshaft.dist import get_dist_info
from camshaft.preprocess import default_collate, pseudo_collate
from camshaft.registry import ConfigError
from camshaft.runner._registry import DATA_SAMPLERS, DATASETS
from camshaft.runner.data._sample_seed import SampleSeededDataset, SampleSeedSampler
from camshaft.runner.data._worker_seed import worker_init_fn

__all__ = ["build_dataloader"]

_COLLATE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "pseudo_collate": pseudo_collate,
    "default_collate": default_collate,
}
_DEFAULT_SAMPLER: dict[str, Any] = {"type": "DefaultSampler", "shuffle": True}


def build_dataloader(
    cfg_or_loader: DataLoader | Mapping[str, Any],
    *,
    seed: int | None = None,
    diff_rank_seed: bool = False,
) -> DataLoader:
    """Return a DataLoader: the one given, or one built from a config dict.

    Args:
        cfg_or_loader: a ``DataLoader`` (returned as is) or a mapping with
            ``dataset`` and optionally ``sampler``, ``batch_size``, ``num_workers``,
            ``collate_fn``, ``pin_memory``, ``persistent_workers``, ``drop_last`` and
            any other ``DataLoader`` keyword.
        seed: the run's seed: the sampler's default seed, and the base of every
            worker's seed. None leaves workers unseeded and lets the sampler draw a
            seed shared by all ranks.
        diff_rank_seed: ``seed`` differs per rank. The sampler then gets no seed
            from it (ranks must shuffle alike, or their shards would overlap) and
            draws a shared one instead; workers are still seeded from ``seed``.

    Returns:
        The DataLoader.

    Raises:
        TypeError: ``cfg_or_loader`` is neither a DataLoader nor a mapping, or a
            key has the wrong type.
        ConfigError: ``dataset`` is missing, ``batch_size``/``num_workers`` is out of
            range, or ``collate_fn`` names an unknown function.
        RegistryError: the dataset or sampler ``type`` is not registered (the
            message lists the closest names).
        BuildError: the dataset or sampler constructor raised (chained).

    Example:
        >>> loader = build_dataloader(
        ...     dict(dataset=list(range(10)), batch_size=4,
        ...          sampler=dict(type='DefaultSampler', shuffle=False)), seed=0)
        >>> [batch for batch in loader]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """
    if isinstance(cfg_or_loader, DataLoader):
        return cfg_or_loader
    if not isinstance(cfg_or_loader, Mapping):
        raise TypeError(
            f"`cfg_or_loader` must be a DataLoader or a dict config, "
            f"got {type(cfg_or_loader).__name__}: {cfg_or_loader!r}"
        )
    kwargs = dict(cfg_or_loader)
    if "dataset" not in kwargs:
        raise ConfigError(
            f"the dataloader config has no 'dataset' key: {dict(cfg_or_loader)!r}. "
            f"Add dataset=<Dataset object> or dataset=dict(type='<registered name>', ...)."
        )
    dataset = _build_dataset(kwargs.pop("dataset"))
    batch_size = _positive_int("batch_size", kwargs.pop("batch_size", 1), minimum=1)
    num_workers = _positive_int("num_workers", kwargs.pop("num_workers", 0), minimum=0)
    sampler_seed = None if diff_rank_seed else seed
    sampler = _build_sampler(kwargs.pop("sampler", None), dataset, sampler_seed)
    collate_fn = _resolve_collate(kwargs.pop("collate_fn", None))
    if seed is not None and kwargs.get("worker_init_fn") is None:
        rank, _ = get_dist_info()
        kwargs["worker_init_fn"] = functools.partial(
            worker_init_fn, num_workers=num_workers, rank=rank, seed=seed
        )
    if num_workers > 0 and seed is not None and hasattr(sampler, "advance"):
        # Randomness inside workers is seeded per sample, so resuming stays exact.
        dataset, sampler = SampleSeededDataset(dataset), SampleSeedSampler(sampler)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        **kwargs,
    )


def _build_dataset(dataset: object) -> Any:
    """Build a dataset config from :data:`DATASETS`; pass a dataset object through."""
    if isinstance(dataset, Mapping):
        return DATASETS.build(dataset)
    if not (hasattr(dataset, "__getitem__") or hasattr(dataset, "__iter__")):
        raise TypeError(
            f"dataloader config 'dataset' must be a Dataset or a dict config with a "
            f"'type', got {type(dataset).__name__}: {dataset!r}"
        )
    return dataset


def _build_sampler(sampler: object, dataset: Any, seed: int | None) -> Any:
    """Build a sampler config from :data:`DATA_SAMPLERS`; pass a sampler object through."""
    if sampler is None:
        sampler = _DEFAULT_SAMPLER
    if isinstance(sampler, Mapping):
        return DATA_SAMPLERS.build(sampler, default_args={"dataset": dataset, "seed": seed})
    if not isinstance(sampler, Sampler):
        raise TypeError(
            f"dataloader config 'sampler' must be a Sampler or a dict config such as "
            f"dict(type='DefaultSampler', shuffle=True), got {type(sampler).__name__}: "
            f"{sampler!r}"
        )
    return sampler


def _resolve_collate(collate: object) -> Callable[..., Any]:
    """Turn a ``collate_fn`` value (None, name, dict or callable) into a callable."""
    if collate is None:
        return pseudo_collate
    if isinstance(collate, str):
        collate = {"type": collate}
    if isinstance(collate, Mapping):
        options = dict(collate)
        kind = options.pop("type", None)
        function = _COLLATE_FUNCTIONS.get(kind) if isinstance(kind, str) else kind
        if not callable(function):
            raise ConfigError(
                f"dataloader config 'collate_fn' type must be one of "
                f"{sorted(_COLLATE_FUNCTIONS)} or a callable, got {kind!r} in {collate!r}"
            )
        return functools.partial(function, **options) if options else function
    if not callable(collate):
        raise TypeError(
            f"dataloader config 'collate_fn' must be a callable or "
            f"dict(type='pseudo_collate' | 'default_collate'), "
            f"got {type(collate).__name__}: {collate!r}"
        )
    return collate


def _positive_int(key: str, value: object, *, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum``; raise naming the config key."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"dataloader config '{key}' must be an int, got {type(value).__name__}: {value!r}"
        )
    if value < minimum:
        raise ConfigError(f"dataloader config '{key}' must be >= {minimum}, got {value}")
    return value
