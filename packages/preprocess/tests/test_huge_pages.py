"""Large CPU batches are marked for transparent huge pages; values never change."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from camshaft.preprocess import ImgDataPreprocessor
from camshaft.preprocess import _huge_pages as huge_pages
from camshaft.preprocess._huge_pages import advise_huge_pages

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str | None:
    """The bracketed mode in the kernel's THP setting, or None where there is none."""
    try:
        text = THP.read_text()
    except OSError:
        return None
    return text[text.index("[") + 1 : text.index("]")] if "[" in text else None


@pytest.fixture(autouse=True)
def _fresh_refusal_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huge_pages, "_refused", False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is Linux's")
def test_large_batch_is_advised_where_the_kernel_offers_huge_pages() -> None:
    batch = torch.empty(64, 3, 224, 224)
    accepted = advise_huge_pages(batch)
    assert accepted is (_thp_mode() in ("always", "madvise"))


def test_small_batches_and_other_devices_are_left_alone() -> None:
    assert advise_huge_pages(torch.empty(2, 3, 32, 32)) is False  # under MIN_HUGE_BYTES
    assert advise_huge_pages(torch.empty(64, 3, 224, 224, device="meta")) is False


def test_advice_keeps_the_contents() -> None:
    batch = torch.arange(64 * 3 * 224 * 224, dtype=torch.float32).view(64, 3, 224, 224)
    expected = batch.clone()
    advise_huge_pages(batch)
    assert torch.equal(batch, expected)


def test_a_refusing_kernel_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def refuse(address: int, length: int) -> bool:
        asked.append((address, length))
        return False

    monkeypatch.setattr(huge_pages, "_advisor", lambda: (refuse, 2 * 1024 * 1024))
    assert advise_huge_pages(torch.empty(64, 3, 224, 224)) is False
    assert advise_huge_pages(torch.empty(64, 3, 224, 224)) is False
    assert len(asked) == 1
    address, length = asked[0]
    assert address % (2 * 1024 * 1024) == 0
    assert length % (2 * 1024 * 1024) == 0


@pytest.mark.parametrize("advised", [True, False])
def test_batches_are_the_same_with_and_without_huge_pages(
    monkeypatch: pytest.MonkeyPatch, advised: bool
) -> None:
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8, generator=gen)]
    images = images * 48
    preprocessor = ImgDataPreprocessor(MEAN, STD, bgr_to_rgb=True, pad_size_divisor=32)
    calls: list[bool] = []
    real = huge_pages.advise_huge_pages

    def spy(tensor: torch.Tensor) -> bool:
        calls.append(True)
        return real(tensor) if advised else False

    monkeypatch.setattr("camshaft.preprocess._batching.advise_huge_pages", spy)
    got = preprocessor(dict(inputs=images))["inputs"]
    expected = (torch.stack(images).flip(1).float() - torch.tensor(MEAN).view(3, 1, 1)) / (
        torch.tensor(STD).view(3, 1, 1)
    )
    assert calls == [True]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
