"""ImgDataPreprocessor: the three batch forms, the order of the steps, padding, augments."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.model import MODELS, BaseDataPreprocessor
from camshaft.preprocess import CutMix, ImgDataPreprocessor, MixUp, RandomBatchAugment


def test_is_a_registered_base_data_preprocessor() -> None:
    assert MODELS.get("ImgDataPreprocessor") is ImgDataPreprocessor
    built = MODELS.build(dict(type="ImgDataPreprocessor", mean=[0.0], std=[1.0]))
    assert isinstance(built, ImgDataPreprocessor)
    assert isinstance(built, BaseDataPreprocessor)


def test_defaults_match_mmengine() -> None:
    preprocessor = ImgDataPreprocessor()
    assert preprocessor.pad_size_divisor == 1
    assert preprocessor.pad_value == 0
    assert preprocessor.batch_augments is None
    assert not preprocessor.channels_last
    assert not preprocessor._enable_normalize


def test_list_of_mixed_sizes_matches_reference(make_images, reference, mean, std) -> None:
    images = make_images([(30, 41), (33, 20), (17, 50)])
    preprocessor = ImgDataPreprocessor(
        mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=16, pad_value=-3
    )
    out = preprocessor(dict(inputs=images, data_samples=None))
    expected = reference(images, mean, std, swap=True, divisor=16, pad_value=-3)
    assert out["inputs"].shape == (3, 3, 48, 64)
    torch.testing.assert_close(out["inputs"], expected, rtol=0, atol=1e-6)
    # padding holds pad_value itself: it is written after normalisation
    assert torch.all(out["inputs"][1, :, 33:, :] == -3)
    assert torch.all(out["inputs"][0, :, :30, 41:] == -3)


def test_nchw_tensor_matches_reference(make_images, reference, mean, std) -> None:
    images = make_images([(20, 30)] * 4)
    preprocessor = ImgDataPreprocessor(mean=mean, std=std, rgb_to_bgr=True, pad_size_divisor=8)
    out = preprocessor(dict(inputs=torch.stack(images), data_samples=None))
    expected = reference(images, mean, std, swap=True, divisor=8)
    assert out["inputs"].shape == (4, 3, 24, 32)
    torch.testing.assert_close(out["inputs"], expected, rtol=0, atol=1e-6)


def test_swap_flag_reverses_channel_order(make_images) -> None:
    images = make_images([(4, 5)])
    swapped = ImgDataPreprocessor(bgr_to_rgb=True)(dict(inputs=images))["inputs"][0]
    plain = ImgDataPreprocessor()(dict(inputs=images))["inputs"][0]
    assert torch.equal(swapped, plain.flip(0))


def test_dict_without_data_samples_gets_none(make_images) -> None:
    out = ImgDataPreprocessor()(dict(inputs=make_images([(4, 4)]), extra="kept"))
    assert out["data_samples"] is None
    assert out["extra"] == "kept"


@pytest.mark.parametrize("kind", [tuple, list])
def test_images_labels_pair_comes_back_as_given(kind: type, make_images, mean, std) -> None:
    images = torch.stack(make_images([(8, 8)] * 3))
    labels = torch.tensor([0, 2, 1])
    out = ImgDataPreprocessor(mean=mean, std=std)(kind((images, labels)))
    assert type(out) is kind
    assert out[0].dtype == torch.float32
    assert out[0].shape == (3, 3, 8, 8)
    assert torch.equal(out[1], labels)


def test_namedtuple_pair_keeps_its_type(make_images) -> None:
    Batch = namedtuple("Batch", ["images", "labels"])
    out = ImgDataPreprocessor()(Batch(torch.stack(make_images([(4, 4)] * 2)), torch.tensor([1, 0])))
    assert isinstance(out, Batch)
    assert out.images.dtype == torch.float32


def test_pair_with_a_list_of_images(make_images) -> None:
    images = make_images([(4, 6), (6, 4)])
    out = ImgDataPreprocessor()((images, [0, 1]))
    assert out[0].shape == (2, 3, 6, 6)
    assert out[1] == [0, 1]


def test_grey_images_with_single_mean(make_images) -> None:
    images = make_images([(5, 5), (3, 7)], channels=1)
    out = ImgDataPreprocessor(mean=[127.5], std=[127.5], bgr_to_rgb=True)(dict(inputs=images))
    assert out["inputs"].shape == (2, 1, 5, 7)
    # one channel: the swap flag leaves it alone
    torch.testing.assert_close(out["inputs"][0, :, :, :5], (images[0].float() - 127.5) / 127.5)


def test_one_mean_value_broadcasts_over_three_channels(make_images) -> None:
    images = make_images([(3, 3)])
    out = ImgDataPreprocessor(mean=[10], std=[2])(dict(inputs=images))["inputs"]
    torch.testing.assert_close(out[0], (images[0].float() - 10) / 2)


def test_float_images_are_accepted(make_images, mean, std, reference) -> None:
    images = [image.double() for image in make_images([(6, 7), (7, 6)])]
    out = ImgDataPreprocessor(mean=mean, std=std)(dict(inputs=images))["inputs"]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference(images, mean, std), rtol=0, atol=1e-5)


def test_input_is_not_modified(make_images, mean, std) -> None:
    images = torch.stack(make_images([(6, 6)] * 2)).float()
    before = images.clone()
    ImgDataPreprocessor(mean=mean, std=std, bgr_to_rgb=True)(dict(inputs=images))
    assert torch.equal(images, before)


def test_channels_last(make_images, mean, std, reference) -> None:
    images = make_images([(9, 10), (10, 9)])
    out = ImgDataPreprocessor(mean=mean, std=std, channels_last=True, bgr_to_rgb=True)(
        dict(inputs=images)
    )["inputs"]
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, reference(images, mean, std, swap=True), rtol=0, atol=1e-6)


def test_mean_and_std_are_buffers_not_saved(mean, std) -> None:
    preprocessor = ImgDataPreprocessor(mean=mean, std=std)
    assert set(dict(preprocessor.named_buffers())) >= {"mean", "std"}
    assert "mean" not in preprocessor.state_dict()
    assert preprocessor.mean.shape == (3, 1, 1)


@pytest.mark.parametrize("sizes", [[(11, 13), (16, 9), (5, 16)], [(16, 16)] * 3])
def test_batched_fill_equals_per_image_fill(sizes, make_images, mean, std) -> None:
    # Accelerators fill the batch in a few batched kernels; the numbers must not change.
    from camshaft.preprocess._batching import _fill, _fill_batched

    images = make_images(sizes)
    stats = dict(mean=torch.tensor(mean).view(3, 1, 1), scale=1 / torch.tensor(std).view(3, 1, 1))
    expected = torch.full((3, 3, 16, 16), float("nan"))
    for index, image in enumerate(images):
        _fill(expected[index], image, swap=True, pad_value=7.0, **stats)
    got = torch.full((3, 3, 16, 16), float("nan"))
    _fill_batched(got, images, swap=True, pad_value=7.0, **stats)
    assert not torch.isnan(expected).any()
    assert torch.equal(got, expected)


# --- batch augments -------------------------------------------------------------------


class Recorder(nn.Module):
    """A batch augment that records its calls and adds ``delta`` to the images."""

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        self.delta = delta
        self.calls: list[tuple[torch.Tensor, Any]] = []

    def forward(self, inputs: torch.Tensor, data_samples: Any) -> tuple[torch.Tensor, Any]:
        self.calls.append((inputs.clone(), data_samples))
        return inputs + self.delta, data_samples


def test_batch_augments_run_only_when_training(make_images, mean, std) -> None:
    recorder = Recorder()
    preprocessor = ImgDataPreprocessor(mean=mean, std=std, batch_augments=recorder)
    batch = dict(inputs=make_images([(4, 4)] * 2), data_samples=[1, 2])
    evaluated = preprocessor(batch, training=False)
    assert recorder.calls == []
    trained = preprocessor(batch, training=True)
    assert len(recorder.calls) == 1
    # augments see the normalised, padded batch
    torch.testing.assert_close(recorder.calls[0][0], evaluated["inputs"])
    torch.testing.assert_close(trained["inputs"], evaluated["inputs"] + 1)


def test_list_of_augments_runs_in_order(make_images) -> None:
    first, second = Recorder(1.0), Recorder(10.0)
    preprocessor = ImgDataPreprocessor(batch_augments=[first, second])
    out = preprocessor(dict(inputs=make_images([(2, 2)])), training=True)
    torch.testing.assert_close(second.calls[0][0], first.calls[0][0] + 1)
    torch.testing.assert_close(out["inputs"], first.calls[0][0] + 11)


def test_augment_config_forms_are_built() -> None:
    single = ImgDataPreprocessor(batch_augments=dict(type="MixUp", alpha=0.8))
    assert isinstance(single.batch_augments[0], MixUp)
    several = ImgDataPreprocessor(batch_augments=[dict(type="CutMix", alpha=1.0), MixUp(alpha=0.2)])
    assert [type(m) for m in several.batch_augments] == [CutMix, MixUp]
    random = ImgDataPreprocessor(
        batch_augments=dict(
            augments=[dict(type="MixUp", alpha=0.8), dict(type="CutMix", alpha=1.0)],
            probs=[0.5, 0.5],
        )
    )
    assert isinstance(random.batch_augments[0], RandomBatchAugment)
    assert random.batch_augments[0].probs == [0.5, 0.5]


def test_mixup_end_to_end_on_class_indices(make_images, mean, std) -> None:
    preprocessor = ImgDataPreprocessor(
        mean=mean, std=std, batch_augments=dict(type="MixUp", alpha=1.0, num_classes=5, seed=0)
    )
    _images, labels = preprocessor(
        (torch.stack(make_images([(8, 8)] * 5)), torch.tensor([0, 1, 2, 3, 4])), training=True
    )
    assert labels.shape == (5, 5)
    torch.testing.assert_close(labels.sum(1), torch.ones(5))


def test_batch_augments_follow_the_preprocessor_in_state_and_modules() -> None:
    preprocessor = ImgDataPreprocessor(batch_augments=MixUp(alpha=1.0))
    assert any(isinstance(m, MixUp) for m in preprocessor.modules())


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(mean=[1.0, 2.0, 3.0]), ValueError, "given together"),
        (dict(std=[1.0]), ValueError, "given together"),
        (dict(mean=[1.0, 2.0], std=[1.0, 2.0]), ValueError, "1 value .* or 3"),
        (dict(mean=1.0, std=1.0), TypeError, "list or tuple"),
        (dict(mean=[0.0], std=[0.0]), ValueError, "zero"),
        (dict(bgr_to_rgb=True, rgb_to_bgr=True), ValueError, "cannot both be True"),
        (dict(bgr_to_rgb=1), TypeError, "bgr_to_rgb"),
        (dict(pad_size_divisor=0), ValueError, "pad_size_divisor"),
        (dict(pad_size_divisor=2.0), TypeError, "pad_size_divisor"),
        (dict(pad_value="0"), TypeError, "pad_value"),
        (dict(channels_last="yes"), TypeError, "channels_last"),
        (dict(batch_augments="MixUp"), TypeError, "batch_augments\\[0\\]"),
        (dict(batch_augments=dict(alpha=1.0)), ValueError, "'type' key .* 'augments' key"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ImgDataPreprocessor(**kwargs)


def test_images_with_different_channel_counts(make_images) -> None:
    images = make_images([(4, 4)]) + make_images([(4, 4)], channels=1)
    with pytest.raises(ValueError, match=r"same number of channels.*inputs\[1\]` has 1"):
        ImgDataPreprocessor()(dict(inputs=images))


def test_three_value_mean_on_grey_image(make_images, mean, std) -> None:
    with pytest.raises(ValueError, match=r"3 values.*has 1"):
        ImgDataPreprocessor(mean=mean, std=std)(dict(inputs=make_images([(4, 4)], channels=1)))


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 3, 8, 8), (8,)])
def test_tensor_input_that_is_not_4d(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="4-d NCHW"):
        ImgDataPreprocessor()(dict(inputs=torch.zeros(shape, dtype=torch.uint8)))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.int16])
def test_non_uint8_non_float_images(dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match="uint8 or floating point"):
        ImgDataPreprocessor()(dict(inputs=torch.zeros(2, 3, 4, 4, dtype=dtype)))
    with pytest.raises(TypeError, match=r"inputs\[0\].*uint8 or floating point"):
        ImgDataPreprocessor()(dict(inputs=[torch.zeros(3, 4, 4, dtype=dtype)]))


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (dict(data_samples=None), ValueError, "'inputs' key"),
        (dict(inputs=[]), ValueError, "at least one image"),
        (dict(inputs="image.png"), TypeError, "NCHW tensor or a list"),
        (dict(inputs=[torch.zeros(4, 4, dtype=torch.uint8)]), ValueError, "3-d CHW"),
        (dict(inputs=[torch.zeros(3, 4, 4, dtype=torch.uint8), None]), TypeError, r"\[1\]"),
        ((torch.zeros(3, 4, 4, dtype=torch.uint8), 1), ValueError, r"`data\[0\]`.*4-d"),
        ((1, 2, 3), TypeError, "of length 3"),
        ("batch", TypeError, "dict"),
    ],
)
def test_bad_batches_are_named(data: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ImgDataPreprocessor()(data)


# --- devices --------------------------------------------------------------------------


def test_result_lives_on_the_preprocessor_device(device, make_images, mean, std, reference):
    preprocessor = ImgDataPreprocessor(mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=32).to(
        device
    )
    images = make_images([(40, 50), (64, 30), (20, 20)])
    expected = reference(images, mean, std, swap=True, divisor=32)
    for inputs in (images, torch.stack(make_images([(40, 50)] * 3))):
        out = preprocessor(dict(inputs=inputs, data_samples=torch.tensor([1, 2, 3])))
        assert out["inputs"].device.type == device.type
        assert out["data_samples"].device.type == device.type
    out = preprocessor(dict(inputs=images))["inputs"]
    torch.testing.assert_close(out.cpu(), expected, rtol=0, atol=1e-5)


@pytest.mark.gpu
def test_pinned_non_blocking_equals_blocking(make_images, mean, std) -> None:
    images = make_images([(64, 48), (48, 64), (30, 30)])
    pinned = [image.pin_memory() for image in images]
    batch = torch.stack(make_images([(32, 32)] * 4)).pin_memory()
    blocking = ImgDataPreprocessor(mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=32)
    fast = ImgDataPreprocessor(
        mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=32, non_blocking=True
    )
    blocking, fast = blocking.cuda(), fast.cuda()
    for slow_in, fast_in in ((images, pinned), (torch.stack(make_images([(32, 32)] * 4)), batch)):
        expected = blocking(dict(inputs=slow_in))["inputs"]
        got = fast(dict(inputs=fast_in))["inputs"]
        torch.cuda.synchronize()
        assert got.is_cuda
        assert torch.equal(got, expected)
