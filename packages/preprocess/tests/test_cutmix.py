"""CutMix: one box per batch, labels weighted by the area kept, minmax boxes, bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from camshaft.model import MODELS
from camshaft.preprocess import CutMix


def constant_images(count: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    values = torch.arange(count, dtype=torch.float32, device=device)
    return values.view(-1, 1, 1, 1).expand(count, 3, height, width).contiguous()


def box_of(mixed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Where any image changed: the (H, W) mask of the pasted box."""
    return (mixed != images).any(dim=(0, 1))


def test_registered() -> None:
    assert MODELS.get("CutMix") is CutMix


@pytest.mark.parametrize(("count", "height", "width"), [(2, 16, 16), (5, 17, 31), (7, 8, 40)])
def test_one_box_pasted_from_partner(count: int, height: int, width: int, device) -> None:
    images = constant_images(count, height, width, device)
    for seed in range(5):
        mixed, labels = CutMix(alpha=1.0, num_classes=count, seed=seed)(
            images, torch.arange(count, device=device)
        )
        assert mixed.device.type == device.type
        box = box_of(mixed, images)
        if box.any():
            rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
            # a solid rectangle, the same for every image
            assert box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
            assert int(box.sum()) == len(rows) * len(cols)
        kept = 1 - box.float().mean()
        own = labels.diagonal()
        moved = own < 1  # images paired with another image
        # correct_lam: the label keeps exactly the share of pixels kept
        torch.testing.assert_close(own[moved], kept.expand(int(moved.sum())))
        # the pasted pixels say which image was the partner; the label agrees
        partner = mixed[:, 0][:, box].mean(1) if box.any() else None
        if partner is not None:
            for i in moved.nonzero().flatten().tolist():
                assert labels[i, int(partner[i])] > 0
        torch.testing.assert_close(labels.sum(1), torch.ones(count, device=device))


def test_inputs_are_not_modified() -> None:
    images = torch.randn(4, 3, 8, 8)
    before = images.clone()
    CutMix(alpha=1.0, num_classes=2, seed=0)(images, torch.tensor([0, 1, 0, 1]))
    assert torch.equal(images, before)


def test_minmax_box_sizes_stay_in_bounds() -> None:
    images = constant_images(6, 40, 50, torch.device("cpu"))
    for seed in range(20):
        cutmix = CutMix(alpha=1.0, num_classes=6, cutmix_minmax=(0.2, 0.5), seed=seed)
        mixed, _ = cutmix(images, torch.arange(6))
        box = box_of(mixed, images)
        if not box.any():  # every image paired with itself
            continue
        height, width = int(box.any(1).sum()), int(box.any(0).sum())
        assert 8 <= height < 20
        assert 10 <= width < 25


def test_uncorrected_lam_still_gives_valid_labels() -> None:
    _, labels = CutMix(alpha=0.5, num_classes=4, correct_lam=False, seed=0)(
        torch.randn(4, 3, 9, 9), torch.tensor([0, 1, 2, 3])
    )
    assert (labels >= 0).all()
    torch.testing.assert_close(labels.sum(1), torch.ones(4))


def test_seeded_runs_repeat() -> None:
    images, labels = torch.randn(5, 3, 12, 12), torch.arange(5)
    first = CutMix(alpha=1.0, num_classes=5, seed=7)(images, labels)
    again = CutMix(alpha=1.0, num_classes=5, seed=7)(images, labels)
    assert torch.equal(first[0], again[0])
    assert torch.equal(first[1], again[1])


def test_video_shaped_inputs_mix_the_last_two_dims() -> None:
    images = torch.randn(3, 2, 4, 8, 8)  # N, C, T, H, W
    mixed, _ = CutMix(alpha=1.0, num_classes=3, seed=0)(images, torch.arange(3))
    assert mixed.shape == images.shape


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(alpha=0.0), ValueError, "`alpha` must be > 0"),
        (dict(alpha=1.0, cutmix_minmax=(0.5, 0.2)), ValueError, "0 <= lo < hi <= 1"),
        (dict(alpha=1.0, cutmix_minmax=(0.2, 1.5)), ValueError, "0 <= lo < hi <= 1"),
        (dict(alpha=1.0, cutmix_minmax=(0.2,)), TypeError, "pair"),
        (dict(alpha=1.0, cutmix_minmax="0.2"), TypeError, "pair"),
        (dict(alpha=1.0, correct_lam="yes"), TypeError, "`correct_lam` must be a bool"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        CutMix(**kwargs)


def test_inputs_without_spatial_dims() -> None:
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        CutMix(alpha=1.0, num_classes=2)(torch.randn(2, 5), torch.tensor([0, 1]))


def test_labels_that_fit_no_form() -> None:
    with pytest.raises(ValueError, match="matches neither"):
        CutMix(alpha=1.0, num_classes=2)(torch.randn(2, 3, 4, 4), torch.zeros(2, 2, 2))


@pytest.mark.gpu
def test_cutmix_on_cuda_is_seeded_on_the_device() -> None:
    images, labels = torch.randn(6, 3, 16, 16, device="cuda"), torch.arange(6, device="cuda")
    first = CutMix(alpha=1.0, num_classes=6, seed=0)(images, labels)
    again = CutMix(alpha=1.0, num_classes=6, seed=0)(images, labels)
    assert first[0].is_cuda
    assert first[1].is_cuda
    assert torch.equal(first[0], again[0])
    assert torch.equal(first[1], again[1])
