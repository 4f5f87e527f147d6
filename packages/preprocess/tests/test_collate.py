"""pseudo_collate and default_collate: structure kept, stacking, errors, a DataLoader."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from camshaft.preprocess import ImgDataPreprocessor, default_collate, pseudo_collate

Pair = namedtuple("Pair", ["image", "label"])


class DataSample:
    """Stands in for an MMEngine data element: an object neither function knows."""

    def __init__(self, label: int) -> None:
        self.gt_label = label


def test_pseudo_collate_transposes_without_stacking() -> None:
    samples = [
        dict(inputs=torch.zeros(3, 4, 5), data_samples=DataSample(1), meta=dict(path="a")),
        dict(inputs=torch.ones(3, 6, 2), data_samples=DataSample(0), meta=dict(path="b")),
    ]
    batch = pseudo_collate(samples)
    assert isinstance(batch["inputs"], list)
    assert batch["inputs"][1].shape == (3, 6, 2)
    assert [s.gt_label for s in batch["data_samples"]] == [1, 0]
    assert batch["meta"] == dict(path=["a", "b"])


def test_pseudo_collate_sequences_and_namedtuples() -> None:
    assert pseudo_collate([(1, "x"), (2, "y")]) == [[1, 2], ["x", "y"]]
    batch = pseudo_collate([Pair(torch.zeros(1), 3), Pair(torch.ones(1), 4)])
    assert isinstance(batch, Pair)
    assert batch.label == [3, 4]
    assert pseudo_collate(["a", "b"]) == ["a", "b"]
    assert pseudo_collate([None, None]) == [None, None]


def test_default_collate_stacks_tensors_numbers_and_arrays() -> None:
    samples = [
        dict(inputs=torch.full((3, 2, 2), float(i)), label=i, score=0.5 * i, arr=np.ones(2) * i)
        for i in range(3)
    ]
    batch = default_collate(samples)
    assert batch["inputs"].shape == (3, 3, 2, 2)
    assert torch.equal(batch["label"], torch.tensor([0, 1, 2]))
    assert batch["score"].dtype == torch.float64
    assert torch.equal(
        batch["arr"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    )


def test_default_collate_keeps_unknown_objects_as_lists() -> None:
    batch = default_collate([dict(data_samples=DataSample(1), name="a", nothing=None)] * 2)
    assert isinstance(batch["data_samples"], list)
    assert len(batch["data_samples"]) == 2
    assert batch["name"] == ["a", "a"]
    assert batch["nothing"] == [None, None]


def test_default_collate_matches_torch_on_plain_tuples() -> None:
    samples = [(torch.randn(3), 1), (torch.randn(3), 0)]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    assert isinstance(ours, list)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("collate", [pseudo_collate, default_collate])
@pytest.mark.parametrize(
    ("batch", "error", "match"),
    [
        ([], ValueError, "at least one sample"),
        (torch.zeros(2), TypeError, "must be a list of samples"),
        ([(1, 2), (1, 2, 3)], ValueError, "length of sample 0 \\(2\\); sample 1 has length 3"),
        ([dict(a=1), dict(b=1)], ValueError, "keys of sample 0"),
        ([dict(a=1), [1]], ValueError, "keys of sample 0"),
        ([(1, 2), 5], TypeError, "sample 1 is a int"),
    ],
)
def test_bad_batches(collate: Any, batch: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        collate(batch)


def test_default_collate_names_tensors_of_different_shapes() -> None:
    samples = [dict(inputs=torch.zeros(3, 4, 4)), dict(inputs=torch.zeros(3, 5, 4))]
    with pytest.raises(ValueError, match=r"batch\['inputs'\].*\(3, 5, 4\).*pseudo_collate"):
        default_collate(samples)


class Images(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict[str, Any]:
        size = 20 + 3 * index
        image = torch.randint(0, 256, (3, size, 24), dtype=torch.uint8)
        return dict(inputs=image, data_samples=dict(gt_label=index % 3))


def test_dataloader_to_preprocessor() -> None:
    loader = DataLoader(Images(), batch_size=3, collate_fn=pseudo_collate)
    preprocessor = ImgDataPreprocessor(
        mean=[127.5],
        std=[127.5],
        pad_size_divisor=8,
        batch_augments=dict(type="MixUp", alpha=1.0, num_classes=3),
    )
    for batch in loader:
        assert isinstance(batch["data_samples"], dict)  # a dict of lists
        out = preprocessor(
            dict(inputs=batch["inputs"], data_samples=batch["data_samples"]["gt_label"]),
            training=True,
        )
        assert out["inputs"].shape[0] == 3
        assert out["inputs"].shape[2] % 8 == 0
        assert out["data_samples"].shape == (3, 3)
