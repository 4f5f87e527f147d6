"""Every Example in the package's docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "camshaft.preprocess",
    "camshaft.preprocess._img_data_preprocessor",
    "camshaft.preprocess._mixup",
    "camshaft.preprocess._cutmix",
    "camshaft.preprocess._random_batch_augment",
    "camshaft.preprocess._collate",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
