"""DefaultSampler and InfiniteSampler: sharding, seeding, and exact resume through a DataLoader."""

from __future__ import annotations

import io
import itertools
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from camshaft.runner._registry import DATA_SAMPLERS
from camshaft.runner.data import DefaultSampler, InfiniteSampler

# --- sharding and seeding --------------------------------------------------------------


@pytest.mark.parametrize(("size", "world_size"), [(10, 1), (10, 3), (12, 4), (5, 8)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_default_sampler_round_up_covers_dataset_with_equal_shards(
    size: int, world_size: int, shuffle: bool
) -> None:
    shards = [
        list(DefaultSampler(range(size), shuffle, seed=3, rank=rank, world_size=world_size))
        for rank in range(world_size)
    ]
    per_rank = -(-size // world_size)
    assert all(len(shard) == per_rank for shard in shards)
    counts = Counter(itertools.chain.from_iterable(shards))
    assert set(counts) == set(range(size))
    assert sum(counts.values()) - size == per_rank * world_size - size  # only padding repeats


@pytest.mark.parametrize(("size", "world_size"), [(10, 3), (12, 4), (2, 3)])
def test_default_sampler_without_round_up_yields_each_index_exactly_once(
    size: int, world_size: int
) -> None:
    samplers = [
        DefaultSampler(range(size), seed=0, round_up=False, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    shards = [list(sampler) for sampler in samplers]
    assert [len(shard) for shard in shards] == [len(sampler) for sampler in samplers]
    assert sorted(itertools.chain.from_iterable(shards)) == list(range(size))


def test_default_sampler_shuffle_is_reproducible_per_seed_and_epoch() -> None:
    def epoch(seed: int, number: int) -> list[int]:
        sampler = DefaultSampler(range(50), seed=seed, rank=0, world_size=1)
        sampler.set_epoch(number)
        return list(sampler)

    assert epoch(1, 0) == epoch(1, 0)
    assert epoch(1, 0) != epoch(1, 1)
    assert epoch(1, 0) != epoch(2, 0)
    assert epoch(1, 1) == epoch(0, 2)  # the seed is seed + epoch
    assert sorted(epoch(1, 0)) == list(range(50))


def test_default_sampler_without_shuffle_is_in_order() -> None:
    assert list(DefaultSampler(range(7), shuffle=False, rank=1, world_size=2)) == [1, 3, 5, 0]


def test_seed_none_draws_a_seed() -> None:
    sampler = DefaultSampler(range(4))
    assert isinstance(sampler.seed, int)
    assert (sampler.rank, sampler.world_size) == (0, 1)


def test_samplers_are_registered() -> None:
    assert DATA_SAMPLERS.get("DefaultSampler") is DefaultSampler
    assert DATA_SAMPLERS.get("InfiniteSampler") is InfiniteSampler


def test_infinite_sampler_shards_each_pass_and_reshuffles() -> None:
    size, world_size = 7, 3
    streams = [
        list(itertools.islice(InfiniteSampler(range(size), seed=5, rank=r, world_size=3), 14))
        for r in range(world_size)
    ]
    merged = [streams[i % world_size][i // world_size] for i in range(42)]
    passes = [merged[i : i + size] for i in range(0, 42, size)]
    assert all(sorted(one) == list(range(size)) for one in passes)
    assert passes[0] != passes[1]
    generator = torch.Generator().manual_seed(5 + 1)
    assert passes[1] == torch.randperm(size, generator=generator).tolist()


# --- exact resume through a DataLoader -------------------------------------------------


def _batches(loader: DataLoader, limit: int | None = None) -> list[list[int]]:
    """Consume up to ``limit`` batches, calling ``advance`` after each, as the Runner does."""
    batches = []
    for batch in loader:
        batches.append(batch.tolist())
        loader.sampler.advance(loader.batch_size)
        if limit is not None and len(batches) == limit:
            break
    return batches


def _default_loader(num_workers: int, seed: int = 11) -> DataLoader:
    sampler = DefaultSampler(range(23), seed=seed, rank=0, world_size=1)
    return DataLoader(range(23), batch_size=4, sampler=sampler, num_workers=num_workers)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("stop", [0, 1, 3, 5, 6])
def test_default_sampler_resumes_mid_epoch_exactly(num_workers: int, stop: int) -> None:
    reference = _default_loader(num_workers)
    reference.sampler.set_epoch(1)
    epoch1 = _batches(reference)
    reference.sampler.set_epoch(2)
    epoch2 = _batches(reference)
    assert len(epoch1) == 6

    interrupted = _default_loader(num_workers)
    interrupted.sampler.set_epoch(1)
    first = _batches(interrupted, limit=stop) if stop else []
    buffer = io.BytesIO()
    torch.save(interrupted.sampler.state_dict(), buffer)
    del interrupted

    resumed = _default_loader(num_workers, seed=999)  # a fresh process with another seed
    buffer.seek(0)
    resumed.sampler.load_state_dict(torch.load(buffer, weights_only=True))
    resumed.sampler.set_epoch(1)  # the loop sets the current epoch again: position kept
    assert first + _batches(resumed) == epoch1
    resumed.sampler.set_epoch(2)
    assert _batches(resumed) == epoch2


def test_default_sampler_state_is_plain_ints() -> None:
    sampler = DefaultSampler(range(9), seed=2, rank=0, world_size=1)
    sampler.set_epoch(4)
    sampler.advance(3)
    state = sampler.state_dict()
    assert state == {"epoch": 4, "seed": 2, "consumed": 3}
    assert all(type(value) is int for value in state.values())


def test_default_sampler_len_is_full_epoch_and_advance_caps_at_it() -> None:
    sampler = DefaultSampler(range(10), seed=0, rank=0, world_size=1)
    sampler.set_consumed(6)
    assert len(sampler) == 10
    assert len(list(sampler)) == 4
    sampler.advance(100)
    assert sampler.consumed == 10
    assert list(sampler) == []  # a fully consumed epoch stays consumed ...
    sampler.set_epoch(0)
    assert list(sampler) == []  # ... when the same epoch is selected again
    sampler.set_epoch(1)
    assert len(list(sampler)) == 10  # ... and a new epoch starts at index 0


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("stop", [0, 2, 3, 4, 7])
def test_infinite_sampler_resumes_across_pass_boundaries(num_workers: int, stop: int) -> None:
    def loader(seed: int) -> DataLoader:
        sampler = InfiniteSampler(range(10), seed=seed, rank=0, world_size=1)
        return DataLoader(range(10), batch_size=4, sampler=sampler, num_workers=num_workers)

    reference = _batches(loader(3), limit=10)  # 40 indices: four passes, boundaries mid-batch
    interrupted = loader(3)
    first = _batches(interrupted, limit=stop) if stop else []
    buffer = io.BytesIO()
    torch.save(interrupted.sampler.state_dict(), buffer)
    buffer.seek(0)
    resumed = loader(77)
    resumed.sampler.load_state_dict(torch.load(buffer, weights_only=True))
    assert first + _batches(resumed, limit=10 - stop) == reference


def test_infinite_sampler_resume_per_rank() -> None:
    full = list(itertools.islice(InfiniteSampler(range(5), seed=0, rank=1, world_size=2), 9))
    resumed = InfiniteSampler(range(5), seed=0, rank=1, world_size=2)
    resumed.load_state_dict({"seed": 0, "consumed": 4})
    assert list(itertools.islice(resumed, 5)) == full[4:]


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [DefaultSampler, InfiniteSampler])
def test_shuffle_must_be_a_bool(cls: type) -> None:
    with pytest.raises(TypeError, match=r"`shuffle` must be a bool, got str: 'yes'"):
        cls(range(4), shuffle="yes", seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(seed=1.5), TypeError, "`seed` must be an int or None"),
        (dict(round_up=1), TypeError, "`round_up` must be a bool"),
        (dict(rank=0), ValueError, "given together"),
        (dict(rank=2, world_size=2), ValueError, r"`rank` must be < world_size \(2\), got 2"),
        (dict(rank=0, world_size=0), ValueError, "`world_size` must be >= 1"),
    ],
)
def test_default_sampler_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        DefaultSampler(range(4), **kwargs)


def test_samplers_reject_bad_state_and_positions() -> None:
    sampler = DefaultSampler(range(4), seed=0, rank=0, world_size=1)
    with pytest.raises(KeyError, match="lacks \\['consumed'\\]"):
        sampler.load_state_dict({"epoch": 0, "seed": 0})
    with pytest.raises(TypeError, match=r"state\['consumed'\] must be an int"):
        sampler.load_state_dict({"epoch": 0, "seed": 0, "consumed": 1.0})
    with pytest.raises(ValueError, match=r"exceeds the per-rank epoch length \(4\)"):
        sampler.load_state_dict({"epoch": 3, "seed": 0, "consumed": 5})
    assert sampler.state_dict() == {"epoch": 0, "seed": 0, "consumed": 0}  # unchanged
    with pytest.raises(ValueError, match="`n` must be >= 0, got -1"):
        sampler.advance(-1)
    with pytest.raises(ValueError, match="`n` must be <= the per-rank epoch length"):
        sampler.set_consumed(5)
    with pytest.raises(ValueError, match="empty"):
        InfiniteSampler([], seed=0)
    with pytest.raises(TypeError, match="must be a mapping"):
        InfiniteSampler(range(3), seed=0).load_state_dict([0, 1])  # type: ignore[arg-type]
