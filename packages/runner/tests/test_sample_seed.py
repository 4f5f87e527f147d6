"""Per-sample seeds: augmentation inside workers depends only on the sample's place in the run."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import torch

from camshaft.runner.data import DefaultSampler, build_dataloader
from camshaft.runner.data._sample_seed import SampleSeededDataset, SampleSeedSampler, sample_seed


class _Noisy(torch.utils.data.Dataset):
    metainfo: ClassVar[dict[str, Any]] = {"classes": ("x",)}

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((1,), float(index)) + torch.rand(1) + random.random()

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:  # must not be used
        raise AssertionError("a batched fetch bypassed the per-sample seeds")


def _epoch(start_batch: int, workers: int) -> list[torch.Tensor]:
    loader = build_dataloader(
        dict(
            dataset=_Noisy(),
            batch_size=3,
            num_workers=workers,
            collate_fn=dict(type="default_collate"),
        ),
        seed=5,
    )
    loader.sampler.set_epoch(1)
    loader.sampler.set_consumed(start_batch * 3)
    return list(loader)


def test_resumed_epoch_draws_the_same_augmentation_as_a_whole_one() -> None:
    whole = _epoch(0, workers=2)
    resumed = _epoch(2, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(whole[2:], resumed, strict=True))
    assert not torch.equal(whole[0], _epoch(0, workers=2)[1])


def test_wrappers_forward_the_sampler_and_dataset_api() -> None:
    loader = build_dataloader(dict(dataset=_Noisy(), batch_size=3, num_workers=1), seed=0)
    assert isinstance(loader.dataset, SampleSeededDataset)
    assert isinstance(loader.sampler, SampleSeedSampler)
    assert loader.dataset.metainfo == {"classes": ("x",)}
    loader.sampler.advance(3)
    assert loader.sampler.state_dict()["consumed"] == 3
    assert not hasattr(loader.dataset, "__getitems__")
    assert torch.is_tensor(loader.dataset[4])  # a plain index passes through


def test_no_wrapping_without_workers_or_seed() -> None:
    plain = build_dataloader(dict(dataset=_Noisy(), batch_size=3), seed=0)
    assert isinstance(plain.sampler, DefaultSampler)
    unseeded = build_dataloader(dict(dataset=_Noisy(), batch_size=3, num_workers=1))
    assert isinstance(unseeded.dataset, _Noisy)


def test_sample_seeds_differ_by_each_input() -> None:
    base = sample_seed(1, 0, 0, 0)
    assert (
        len(
            {
                base,
                sample_seed(2, 0, 0, 0),
                sample_seed(1, 1, 0, 0),
                sample_seed(1, 0, 1, 0),
                sample_seed(1, 0, 0, 1),
            }
        )
        == 5
    )
    assert 0 <= base < 2**63
