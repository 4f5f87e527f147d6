"""build_dataloader: DataLoaders from config dicts, seeded workers, and clear errors."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from camshaft.preprocess import default_collate, pseudo_collate
from camshaft.registry import BuildError, ConfigError, RegistryError
from camshaft.runner._registry import DATASETS
from camshaft.runner.data import DefaultSampler, InfiniteSampler, _sampler_state, build_dataloader


@DATASETS.register_module(name="BuildDataloaderTestSquares", force=True)
class Squares(Dataset):
    """``length`` samples ``{'x': tensor([i]), 'y': i * i}``."""

    def __init__(self, length: int = 6) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.tensor([float(index)]), "y": index * index}


class RandomNoise(Dataset):
    """Each sample is drawn from torch's RNG: reproducible only if workers are seeded."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.rand(1)


def test_a_dataloader_passes_through() -> None:
    loader = DataLoader(range(3))
    assert build_dataloader(loader) is loader


def test_defaults_shuffle_with_default_sampler_and_pseudo_collate() -> None:
    cfg = {"dataset": Squares(), "batch_size": 2}
    snapshot = dict(cfg)
    loader = build_dataloader(cfg, seed=4)
    assert cfg == snapshot  # the caller's dict is untouched
    assert isinstance(loader.sampler, DefaultSampler)
    assert loader.sampler.shuffle is True
    assert loader.sampler.seed == 4
    assert loader.collate_fn is pseudo_collate
    assert loader.batch_size == 2
    batch = next(iter(loader))
    assert isinstance(batch["x"], list)
    assert len(batch["x"]) == 2


def test_registered_dataset_type_and_collate_by_name() -> None:
    cfg = {
        "dataset": {"type": "BuildDataloaderTestSquares", "length": 5},
        "sampler": {"type": "DefaultSampler", "shuffle": False},
        "batch_size": 2,
        "collate_fn": {"type": "default_collate"},
        "drop_last": True,
    }
    snapshot = copy.deepcopy(cfg)
    loader = build_dataloader(cfg, seed=0)
    assert cfg == snapshot
    assert loader.collate_fn is default_collate
    batches = list(loader)
    assert len(batches) == 2  # drop_last passed through
    assert batches[0]["x"].shape == (2, 1)
    assert batches[1]["y"].tolist() == [4, 9]


def test_sampler_dict_can_name_infinite_sampler_and_keeps_its_own_seed() -> None:
    loader = build_dataloader(
        {"dataset": Squares(3), "sampler": {"type": "InfiniteSampler", "seed": 9}}, seed=1
    )
    assert isinstance(loader.sampler, InfiniteSampler)
    assert loader.sampler.seed == 9


def test_seed_sets_worker_init_fn_and_workers_are_reproducible() -> None:
    def run() -> list[float]:
        cfg = {"dataset": RandomNoise(), "batch_size": 2, "num_workers": 2}
        loader = build_dataloader({**cfg, "collate_fn": default_collate}, seed=123)
        return torch.cat([batch.flatten() for batch in loader]).tolist()

    assert run() == run()
    loader = build_dataloader({"dataset": RandomNoise(), "num_workers": 2}, seed=5)
    init = loader.worker_init_fn
    assert isinstance(init, functools.partial)
    assert init.keywords == {"num_workers": 2, "rank": 0, "seed": 5}


def test_without_seed_workers_are_left_alone() -> None:
    assert build_dataloader({"dataset": Squares()}).worker_init_fn is None


def test_diff_rank_seed_gives_the_sampler_a_shared_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sampler_state, "sync_random_seed", lambda: 31337)
    loader = build_dataloader({"dataset": Squares()}, seed=8, diff_rank_seed=True)
    assert loader.sampler.seed == 31337
    assert build_dataloader({"dataset": Squares()}, seed=8).sampler.seed == 8


def test_collate_options_are_bound() -> None:
    calls = []

    def collate(samples: list, *, tag: str) -> str:
        calls.append(tag)
        return tag

    loader = build_dataloader({"dataset": Squares(2), "collate_fn": {"type": collate, "tag": "t"}})
    assert list(loader) == ["t", "t"]


# --- bad input ----------------------------------------------------------------------


def test_unknown_dataset_type_lists_close_names() -> None:
    with pytest.raises(RegistryError, match="BuildDataloaderTestSquares"):
        build_dataloader({"dataset": {"type": "BuildDataloaderTestSquare"}})


def test_missing_dataset_key_names_the_cfg() -> None:
    with pytest.raises(ConfigError, match=r"no 'dataset' key: \{'batch_size': 2\}"):
        build_dataloader({"batch_size": 2})


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_must_be_positive(batch_size: int) -> None:
    with pytest.raises(ConfigError, match=f"'batch_size' must be >= 1, got {batch_size}"):
        build_dataloader({"dataset": Squares(), "batch_size": batch_size})


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"dataset": Squares(), "batch_size": "4"}, "'batch_size' must be an int, got str"),
        ({"dataset": Squares(), "num_workers": 1.0}, "'num_workers' must be an int"),
        ({"dataset": 3}, "'dataset' must be a Dataset or a dict config"),
        ({"dataset": Squares(), "sampler": "DefaultSampler"}, "'sampler' must be a Sampler"),
        ({"dataset": Squares(), "collate_fn": 3}, "'collate_fn' must be a callable"),
    ],
)
def test_wrong_types_are_named(cfg: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        build_dataloader(cfg)


def test_sampler_shuffle_must_be_a_bool() -> None:
    cfg = {"dataset": Squares(), "sampler": {"type": "DefaultSampler", "shuffle": "no"}}
    with pytest.raises(BuildError, match="`shuffle` must be a bool, got str: 'no'") as info:
        build_dataloader(cfg, seed=0)
    assert isinstance(info.value.__cause__, TypeError)


def test_unknown_collate_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"\['default_collate', 'pseudo_collate'\]"):
        build_dataloader({"dataset": Squares(), "collate_fn": {"type": "pseudo_colate"}})


def test_not_a_config_is_rejected() -> None:
    with pytest.raises(TypeError, match="must be a DataLoader or a dict config, got list"):
        build_dataloader([1, 2])  # type: ignore[arg-type]
