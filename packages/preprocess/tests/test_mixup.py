"""MixUp: what is mixed with what, label forms, seeding, bad input."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from camshaft.model import MODELS
from camshaft.preprocess import MixUp


def constant_images(count: int, device: torch.device, size: int = 4) -> torch.Tensor:
    """Image ``i`` is filled with the value ``i``: a mix shows who was mixed with whom."""
    values = torch.arange(count, dtype=torch.float32, device=device)
    return values.view(-1, 1, 1, 1).expand(count, 3, size, size).contiguous()


@dataclasses.dataclass
class Sample:
    gt_label: Any = None
    gt_score: Any = None


def test_registered_under_both_names() -> None:
    assert MODELS.get("MixUp") is MixUp
    assert MODELS.get("Mixup") is MixUp  # the mmpretrain spelling
    assert isinstance(MODELS.build(dict(type="Mixup", alpha=0.5)), MixUp)


@pytest.mark.parametrize("count", [1, 2, 5, 7])
def test_images_and_labels_are_mixed_alike(count: int, device: torch.device) -> None:
    images = constant_images(count, device)
    mixed, labels = MixUp(alpha=1.0, num_classes=count, seed=count)(
        images, torch.arange(count, device=device)
    )
    assert mixed.device.type == device.type
    assert labels.device.type == device.type
    assert labels.shape == (count, count)
    assert labels.dtype == torch.float32
    torch.testing.assert_close(labels.sum(1), torch.ones(count, device=device))
    # every pixel of image i is the label-weighted mean of the class (= image) values
    expected = (labels * torch.arange(count, device=device)).sum(1)
    torch.testing.assert_close(mixed.mean(dim=(1, 2, 3)), expected)
    torch.testing.assert_close(mixed.amax(dim=(1, 2, 3)), mixed.amin(dim=(1, 2, 3)))


def test_one_ratio_for_the_whole_batch() -> None:
    labels = MixUp(alpha=1.0, num_classes=6, seed=1)(torch.zeros(6, 1, 2, 2), torch.arange(6))[1]
    own = labels.diagonal()
    # a sample paired with itself keeps 1; every other keeps the same lam
    kept = own[own < 1]
    assert kept.numel() > 0
    torch.testing.assert_close(kept, kept[:1].expand_as(kept))


def test_inputs_are_not_modified() -> None:
    images = torch.randn(4, 3, 5, 5)
    before = images.clone()
    MixUp(alpha=1.0, num_classes=3)(images, torch.tensor([0, 1, 2, 0]))
    assert torch.equal(images, before)


def test_soft_labels_are_mixed() -> None:
    scores = torch.softmax(torch.randn(4, 3), dim=1)
    _images, mixed = MixUp(alpha=1.0, seed=0)(torch.randn(4, 2, 3, 3), scores)
    assert mixed.shape == (4, 3)
    torch.testing.assert_close(mixed.sum(1), torch.ones(4))


def test_list_of_class_indices_becomes_soft_tensor() -> None:
    _, labels = MixUp(alpha=1.0, num_classes=4, seed=0)(torch.randn(3, 1, 2, 2), [0, 3, 1])
    assert isinstance(labels, torch.Tensor)
    assert labels.shape == (3, 4)


def test_data_samples_get_gt_score_and_keep_gt_label() -> None:
    samples = [Sample(gt_label=torch.tensor([2])), Sample(gt_label=0), Sample(gt_label=1)]
    images = constant_images(3, torch.device("cpu"))
    mixed, out = MixUp(alpha=1.0, num_classes=3, seed=0)(images, samples)
    assert out is samples
    assert samples[1].gt_label == 0
    scores = torch.stack([s.gt_score for s in samples])
    torch.testing.assert_close(scores.sum(1), torch.ones(3))
    # class 0 is image 1 (value 1), class 1 is image 2, class 2 is image 0
    torch.testing.assert_close(mixed.mean(dim=(1, 2, 3)), scores @ torch.tensor([1.0, 2.0, 0.0]))


def test_gt_score_is_read_when_present() -> None:
    samples = [Sample(gt_label=0, gt_score=torch.tensor([0.0, 1.0])) for _ in range(3)]
    MixUp(alpha=1.0, seed=0)(torch.randn(3, 1, 2, 2), samples)
    # every score was (0, 1), so any mix of them is (0, 1): gt_label was not used
    for sample in samples:
        torch.testing.assert_close(sample.gt_score, torch.tensor([0.0, 1.0]))


def test_mapping_samples_and_num_classes_from_sample() -> None:
    samples = [dict(gt_label=i % 2, num_classes=2) for i in range(4)]
    MixUp(alpha=1.0, seed=0)(torch.randn(4, 1, 2, 2), samples)
    assert all(sample["gt_score"].shape == (2,) for sample in samples)


def test_seeded_runs_repeat_and_seeds_differ() -> None:
    images, labels = torch.randn(8, 3, 4, 4), torch.arange(8)
    first = MixUp(alpha=1.0, num_classes=8, seed=3)(images, labels)
    again = MixUp(alpha=1.0, num_classes=8, seed=3)(images, labels)
    other = MixUp(alpha=1.0, num_classes=8, seed=4)(images, labels)
    assert torch.equal(first[0], again[0])
    assert torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_manual_seed_restarts_the_stream() -> None:
    mixup = MixUp(alpha=1.0, num_classes=8)
    images, labels = torch.randn(8, 3, 4, 4), torch.arange(8)
    assert mixup.manual_seed(5) is mixup
    assert mixup.seed == 5
    first = mixup(images, labels)[1]
    mixup.manual_seed(5)
    assert torch.equal(mixup(images, labels)[1], first)


def test_unseeded_draws_follow_torch_global_seed() -> None:
    mixup = MixUp(alpha=1.0, num_classes=8)
    images, labels = torch.randn(8, 3, 4, 4), torch.arange(8)
    torch.manual_seed(11)
    first = mixup(images, labels)[1]
    torch.manual_seed(11)
    assert torch.equal(mixup(images, labels)[1], first)
    assert mixup.get_rng_state() == {}


def test_rng_state_resumes_a_seeded_run_exactly() -> None:
    images, labels = torch.randn(8, 3, 4, 4), torch.arange(8)
    mixup = MixUp(alpha=1.0, num_classes=8, seed=0)
    mixup(images, labels)
    state = mixup.get_rng_state()
    expected = mixup(images, labels)[1]
    resumed = MixUp(alpha=1.0, num_classes=8, seed=0)
    resumed.set_rng_state(state)
    assert torch.equal(resumed(images, labels)[1], expected)


def test_beta_draws_have_the_right_moments() -> None:
    from camshaft.preprocess._sampling import sample_beta

    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_beta(0.5, torch.device("cpu"), generator) for _ in range(4000)])
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 0.125 for a = 0.5
    assert abs(draws.mean().item() - 0.5) < 0.02
    assert abs(draws.var().item() - 0.125) < 0.01
    tiny = torch.stack([sample_beta(1e-4, torch.device("cpu"), generator) for _ in range(200)])
    assert torch.isfinite(tiny).all()
    assert ((tiny >= 0) & (tiny <= 1)).all()


@pytest.mark.gpu
def test_seeded_generator_lives_on_cuda() -> None:
    mixup = MixUp(alpha=1.0, num_classes=4, seed=0)
    images, labels = torch.randn(4, 3, 8, 8, device="cuda"), torch.arange(4, device="cuda")
    first = mixup(images, labels)
    assert first[0].is_cuda
    assert first[1].is_cuda
    assert all(key.startswith("cuda") for key in mixup.get_rng_state())
    again = MixUp(alpha=1.0, num_classes=4, seed=0)(images, labels)
    assert torch.equal(first[0], again[0])
    assert torch.equal(first[1], again[1])


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(alpha=0), ValueError, "`alpha` must be > 0, got 0"),
        (dict(alpha=-1.0), ValueError, "`alpha` must be > 0"),
        (dict(alpha=float("nan")), ValueError, "`alpha` must be > 0"),
        (dict(alpha="1"), TypeError, "`alpha` must be a number"),
        (dict(alpha=True), TypeError, "`alpha` must be a number"),
        (dict(alpha=1.0, num_classes=0), ValueError, "`num_classes` must be >= 1"),
        (dict(alpha=1.0, num_classes=2.0), TypeError, "`num_classes`"),
        (dict(alpha=1.0, seed=1.5), TypeError, "`seed`"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        MixUp(**kwargs)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (torch.tensor([0, 1, 2]), ValueError, r"shape \(3,\) matches neither \(4,\)"),
        (torch.zeros(4, 3, 1), ValueError, r"matches neither"),
        (torch.tensor(1), ValueError, r"matches neither"),
        (torch.zeros(4), ValueError, "integer class indices"),
        (None, TypeError, "`data_samples` is None"),
        ("cat", TypeError, "must be a class-index tensor"),
        (torch.tensor([0, 1, 2, 9]), ValueError, r"\[0, 5\).*from 0 to 9"),
        ([Sample(gt_label=1)] * 3, ValueError, "3 data samples for a batch of 4"),
        ([Sample()] * 4, ValueError, r"data_samples\[0\]` must carry `gt_label`"),
        ([Sample(gt_label=torch.tensor([1, 2]))] * 4, ValueError, "one integer class index"),
        ([Sample(gt_label=0.5)] * 4, ValueError, "gt_label"),
        (
            [Sample(gt_score=torch.ones(5))] * 3 + [Sample(gt_score=torch.ones(4))],
            ValueError,
            "same length",
        ),
        ([Sample(gt_score=torch.ones(5))] * 3 + [Sample(gt_label=1)], ValueError, "1-d tensor"),
    ],
)
def test_labels_that_fit_no_form(labels: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        MixUp(alpha=1.0, num_classes=5)(torch.randn(4, 3, 2, 2), labels)


def test_class_indices_without_num_classes() -> None:
    with pytest.raises(ValueError, match=r"no `num_classes`.*MixUp\(\.\.\., num_classes="):
        MixUp(alpha=1.0)(torch.randn(2, 3, 2, 2), torch.tensor([0, 1]))


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), TypeError, "floating point"),
        (torch.zeros(2), ValueError, "at least 2 dimensions"),
        ([torch.zeros(3, 4, 4)], TypeError, "must be a tensor"),
    ],
)
def test_bad_inputs(inputs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        MixUp(alpha=1.0, num_classes=2)(inputs, torch.tensor([0, 1]))


def test_set_rng_state_on_unseeded_augment() -> None:
    state = MixUp(alpha=1.0, seed=0).manual_seed(1)
    state(torch.randn(2, 1, 1, 1), torch.eye(2))
    with pytest.raises(ValueError, match="unseeded"):
        MixUp(alpha=1.0).set_rng_state(state.get_rng_state())
    with pytest.raises(TypeError, match="dict of device name"):
        MixUp(alpha=1.0, seed=0).set_rng_state([1, 2])  # type: ignore[arg-type]
