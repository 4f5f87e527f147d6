"""Batch augments and the preprocessor under torch.compile (CPU-cheap backends)."""

from __future__ import annotations

import pytest
import torch

from camshaft.preprocess import CutMix, ImgDataPreprocessor, MixUp


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    torch._dynamo.reset()


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: MixUp(alpha=1.0, num_classes=6, seed=0),
        lambda: CutMix(alpha=1.0, num_classes=6, seed=0),
        lambda: CutMix(alpha=1.0, num_classes=6, cutmix_minmax=(0.2, 0.6), seed=0),
    ],
    ids=["mixup", "cutmix", "cutmix-minmax"],
)
def test_seeded_augment_compiles_to_the_same_numbers(backend: str, make) -> None:
    images, labels = torch.randn(6, 3, 12, 12), torch.arange(6)
    eager = make()
    compiled = torch.compile(make(), backend=backend)
    for _ in range(3):  # the stream advances alike, batch after batch
        expected, got = eager(images, labels), compiled(images, labels)
        assert torch.equal(got[0], expected[0])
        assert torch.equal(got[1], expected[1])


@pytest.mark.parametrize(
    "augment",
    [MixUp(alpha=0.8, num_classes=5), CutMix(alpha=1.0, num_classes=5)],
    ids=["mixup", "cutmix"],
)
def test_unseeded_augment_compiles_as_one_graph(augment) -> None:
    compiled = torch.compile(augment, backend="aot_eager", fullgraph=True)
    images, labels = compiled(torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4]))
    assert images.shape == (5, 3, 8, 8)
    assert labels.shape == (5, 5)


def test_preprocessor_compiles() -> None:
    preprocessor = ImgDataPreprocessor(
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_size_divisor=8,
        batch_augments=dict(type="MixUp", alpha=1.0, num_classes=4, seed=0),
    )
    images = torch.randint(0, 256, (4, 3, 10, 12), dtype=torch.uint8)
    batch = dict(inputs=images, data_samples=torch.tensor([0, 1, 2, 3]))
    expected = preprocessor(batch, training=False)["inputs"]
    compiled = torch.compile(preprocessor, backend="eager")
    assert torch.equal(compiled(batch, training=False)["inputs"], expected)
    assert compiled(batch, training=True)["data_samples"].shape == (4, 4)
