"""RandomBatchAugment: the pick follows probs, leftover mass means none, seeding, bad probs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from camshaft.model import MODELS
from camshaft.preprocess import CutMix, MixUp, RandomBatchAugment


class Tag(nn.Module):
    """An augment that stamps its number on the images, so the pick is visible."""

    def __init__(self, number: float, num_classes: int = 3) -> None:
        super().__init__()
        self.number = number
        self.num_classes = num_classes

    def forward(self, inputs: torch.Tensor, data_samples: Any) -> tuple[torch.Tensor, Any]:
        return torch.full_like(inputs, self.number), data_samples


def picks(augment: RandomBatchAugment, rounds: int) -> list[float]:
    images, labels = torch.zeros(2, 1, 1, 1), torch.tensor([0, 1])
    return [float(augment(images, labels)[0][0, 0, 0, 0]) for _ in range(rounds)]


def test_registered_and_builds_children_from_configs() -> None:
    built = MODELS.build(
        dict(
            type="RandomBatchAugment",
            augments=[dict(type="MixUp", alpha=0.8), dict(type="CutMix", alpha=1.0)],
            probs=[0.5, 0.5],
        )
    )
    assert [type(m) for m in built.augments] == [MixUp, CutMix]


def test_pick_frequencies_follow_probs() -> None:
    augment = RandomBatchAugment([Tag(1), Tag(2)], probs=[0.5, 0.3], seed=0)
    drawn = picks(augment, 2000)
    share = {value: drawn.count(value) / len(drawn) for value in (0.0, 1.0, 2.0)}
    assert abs(share[1.0] - 0.5) < 0.04
    assert abs(share[2.0] - 0.3) < 0.04
    assert abs(share[0.0] - 0.2) < 0.04  # the leftover mass: no augment


def test_probs_default_to_uniform_and_certain_picks() -> None:
    assert RandomBatchAugment([Tag(1), Tag(2), Tag(3)]).probs == pytest.approx([1 / 3] * 3)
    assert set(picks(RandomBatchAugment([Tag(1), Tag(2)], probs=[0.0, 1.0]), 50)) == {2.0}
    assert set(picks(RandomBatchAugment(Tag(4), probs=1.0), 20)) == {4.0}


def test_no_augment_still_hands_on_soft_labels() -> None:
    augment = RandomBatchAugment([MixUp(alpha=1.0, num_classes=4)], probs=[0.0])
    images = torch.randn(3, 1, 2, 2)
    out, labels = augment(images, torch.tensor([0, 3, 1]))
    assert out is images
    assert torch.equal(labels, torch.eye(4)[[0, 3, 1]])
    samples = [dict(gt_label=1), dict(gt_label=2)]
    augment(torch.randn(2, 1, 2, 2), samples)
    assert torch.equal(samples[1]["gt_score"], torch.eye(4)[2])


def test_seed_seeds_the_pick_and_the_augments() -> None:
    def run() -> list[torch.Tensor]:
        augment = RandomBatchAugment(
            [MixUp(alpha=1.0, num_classes=6), CutMix(alpha=1.0, num_classes=6)],
            probs=[0.4, 0.4],
            seed=9,
        )
        return [
            augment(
                torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(6)
            )[1]
            for _ in range(6)
        ]

    assert all(torch.equal(a, b) for a, b in zip(run(), run(), strict=True))
    augment = RandomBatchAugment([MixUp(alpha=1.0), CutMix(alpha=1.0)], seed=9)
    assert [m.seed for m in augment.augments] == [10, 11]


def test_rng_state_round_trip() -> None:
    augment = RandomBatchAugment(
        [MixUp(alpha=1.0, num_classes=4), CutMix(alpha=1.0, num_classes=4)], seed=0
    )
    images, labels = torch.randn(4, 3, 8, 8), torch.arange(4)
    augment(images, labels)
    state = augment.get_rng_state()
    assert "pick/cpu" in state
    expected = [augment(images, labels)[1] for _ in range(4)]
    resumed = RandomBatchAugment(
        [MixUp(alpha=1.0, num_classes=4), CutMix(alpha=1.0, num_classes=4)], seed=0
    )
    resumed.set_rng_state(state)
    got = [resumed(images, labels)[1] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    with pytest.raises(ValueError, match="names no seedable part"):
        resumed.set_rng_state({"augments.7/cpu": state["pick/cpu"]})


@pytest.mark.parametrize(
    ("probs", "error", "match"),
    [
        ([0.6, 0.6], ValueError, "sum to at most 1.*summing to 1.2"),
        ([0.5], ValueError, "2 augments, got 1 probs"),
        ([0.5, 0.2, 0.1], ValueError, "2 augments, got 3"),
        ([-0.1, 0.5], ValueError, r"lie in \[0, 1\]"),
        ("0.5", TypeError, "`probs` must be a number"),
        ([0.5, None], TypeError, "`probs` must be a number"),
    ],
)
def test_bad_probs(probs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RandomBatchAugment([Tag(1), Tag(2)], probs=probs)


def test_bad_augments() -> None:
    with pytest.raises(ValueError, match="at least one augment"):
        RandomBatchAugment([])
    with pytest.raises(TypeError, match=r"`augments\[1\]` must be an nn.Module or a config"):
        RandomBatchAugment([Tag(1), "MixUp"])
    with pytest.raises(TypeError, match="`seed`"):
        RandomBatchAugment([Tag(1)], seed="0")
