"""Shared fixtures for the camshaft.preprocess tests: devices, images, a reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]

Reference = Callable[..., torch.Tensor]


@pytest.fixture
def mean() -> list[float]:
    return list(MEAN)


@pytest.fixture
def std() -> list[float]:
    return list(STD)


@pytest.fixture
def make_images() -> Callable[..., list[torch.Tensor]]:
    """``make_images(sizes, channels=3, seed=0)``: uint8 CHW images of the given sizes."""

    def make(
        sizes: Sequence[tuple[int, int]], channels: int = 3, seed: int = 0
    ) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return [
            torch.randint(0, 256, (channels, h, w), dtype=torch.uint8, generator=generator)
            for h, w in sizes
        ]

    return make


@pytest.fixture
def reference() -> Reference:
    """The plain, obviously-right pipeline: per image flip, float, normalise, pad; stack.

    Written the way MMEngine's documentation describes the order, one step at a time.
    """

    def run(
        images: Sequence[torch.Tensor],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        swap: bool = False,
        divisor: int = 1,
        pad_value: float = 0.0,
    ) -> torch.Tensor:
        height = max(image.shape[1] for image in images)
        width = max(image.shape[2] for image in images)
        height = -(-height // divisor) * divisor
        width = -(-width // divisor) * divisor
        out = []
        for image in images:
            x = image
            if swap and x.shape[0] == 3:
                x = x[[2, 1, 0]]
            x = x.float()
            if mean is not None and std is not None:
                x = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
            x = torch.nn.functional.pad(
                x, (0, width - x.shape[2], 0, height - x.shape[1]), value=pad_value
            )
            out.append(x)
        return torch.stack(out)

    return run


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device test runs on the CPU, and on CUDA where there is one."""
    return torch.device(request.param)
