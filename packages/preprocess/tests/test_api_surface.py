"""The public names users import; this test fails when one disappears or moves."""

from __future__ import annotations

import inspect

import camshaft.preprocess as preprocess
from camshaft.model import MODELS

PUBLIC = {
    "__version__",
    "ImgDataPreprocessor",
    "MixUp",
    "CutMix",
    "RandomBatchAugment",
    "pseudo_collate",
    "default_collate",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(preprocess.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(preprocess, name), name


def test_modules_are_registered_for_configs() -> None:
    for name in ("ImgDataPreprocessor", "MixUp", "Mixup", "CutMix", "RandomBatchAugment"):
        assert MODELS.get(name) is not None, name


def test_mmengine_argument_names_and_defaults() -> None:
    params = inspect.signature(preprocess.ImgDataPreprocessor).parameters
    expected = dict(
        mean=None,
        std=None,
        pad_size_divisor=1,
        pad_value=0,
        bgr_to_rgb=False,
        rgb_to_bgr=False,
        non_blocking=False,
        batch_augments=None,
        channels_last=False,
    )
    assert {name: p.default for name, p in params.items()} == expected
    assert list(inspect.signature(preprocess.CutMix).parameters)[:4] == [
        "alpha",
        "num_classes",
        "cutmix_minmax",
        "correct_lam",
    ]
    assert inspect.signature(preprocess.CutMix).parameters["correct_lam"].default is True
    assert list(inspect.signature(preprocess.MixUp).parameters)[:2] == ["alpha", "num_classes"]
    assert list(inspect.signature(preprocess.RandomBatchAugment).parameters)[:2] == [
        "augments",
        "probs",
    ]
