"""PageWarmer: pages of fresh CPU storage are mapped on another thread, data untouched."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.model import BaseModule
from camshaft.model import _prefault as prefault
from camshaft.model._prefault import PageWarmer

CFG = [
    dict(type="Kaiming", layer="Linear"),
    dict(type="Constant", layer="LayerNorm", val=1, bias=0),
]
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="madvise(MADV_POPULATE_WRITE) is Linux's"
)


class Wide(BaseModule):
    def __init__(self, init_cfg: Any = None) -> None:
        super().__init__(init_cfg)
        self.fc1 = nn.Linear(256, 512)
        self.fc2 = nn.Linear(512, 256)
        self.norm = nn.LayerNorm(256)


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warmer only starts with a second CPU; CI machines may be given one."""
    monkeypatch.setattr(prefault, "_cpu_count", lambda: 2)


@linux_only
@pytest.mark.usefixtures("two_cpus")
def test_warming_maps_pages_and_keeps_the_data() -> None:
    tensors = [torch.empty(1 << 18) for _ in range(4)]  # 1 MiB each
    tensors[0].copy_(torch.arange(1 << 18, dtype=torch.float32))
    expected = tensors[0].clone()
    with PageWarmer(tensors, torch.device("cpu"), min_bytes=0) as warmer:
        pass  # leaving joins the thread only after it is told to stop: it may quit early
    assert warmer.started
    assert not warmer.failed
    assert torch.equal(tensors[0], expected)  # populating never changes contents


@linux_only
@pytest.mark.usefixtures("two_cpus")
def test_warming_runs_to_the_end_when_given_time() -> None:
    tensors = [torch.empty(1 << 18) for _ in range(3)]
    warmer = PageWarmer(tensors, torch.device("cpu"), min_bytes=0)
    with warmer:
        assert warmer._thread is not None
        warmer._thread.join()  # let it finish before the context stops it
    page = prefault.os.sysconf("SC_PAGE_SIZE")
    total = sum(t.numel() * t.element_size() for t in tensors)
    assert total - 2 * page * len(tensors) <= warmer.warmed_bytes <= total
    assert not warmer._thread.is_alive()


@pytest.mark.usefixtures("two_cpus")
def test_small_models_cuda_and_one_cpu_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    small = [torch.empty(10)]
    with PageWarmer(small, torch.device("cpu")) as warmer:  # under MIN_WARM_BYTES
        assert not warmer.started
    with PageWarmer([torch.empty(1 << 18)], torch.device("cuda"), min_bytes=0) as warmer:
        assert not warmer.started
    with PageWarmer([torch.empty(0)], torch.device("cpu"), min_bytes=0) as warmer:
        assert not warmer.started  # nothing with elements to warm
    monkeypatch.setattr(prefault, "_cpu_count", lambda: 1)
    with PageWarmer([torch.empty(1 << 18)], torch.device("cpu"), min_bytes=0) as warmer:
        assert not warmer.started


@pytest.mark.usefixtures("two_cpus")
def test_a_refusing_kernel_stops_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def refuse(address: int, length: int) -> bool:
        asked.append((address, length))
        return False  # what an older kernel's EINVAL looks like

    monkeypatch.setattr(prefault, "_madvise_populate", lambda: refuse)
    tensors = [torch.empty(1 << 18) for _ in range(3)]
    warmer = PageWarmer(tensors, torch.device("cpu"), min_bytes=0)
    with warmer:
        assert warmer._thread is not None
        warmer._thread.join()
    assert warmer.failed
    assert warmer.warmed_bytes == 0
    assert len(asked) == 1  # gave up after the first refusal


@pytest.mark.usefixtures("two_cpus")
def test_meta_init_with_the_warmer_equals_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[bool] = []
    enter = PageWarmer.__enter__

    def spy(self: PageWarmer) -> PageWarmer:
        result = enter(self)
        started.append(self.started)
        return result

    monkeypatch.setattr(prefault, "MIN_WARM_BYTES", 0)
    monkeypatch.setattr(PageWarmer, "__enter__", spy)
    eager = Wide(CFG)
    torch.manual_seed(0)
    eager.init_weights()
    with torch.device("meta"):
        meta = Wide(CFG)
    torch.manual_seed(0)
    meta.init_weights(device="cpu")
    expect_thread = sys.platform.startswith("linux")
    assert started[-1] is expect_thread
    pairs = zip(eager.state_dict().items(), meta.state_dict().items(), strict=True)
    for (name, x), (_, y) in pairs:
        assert torch.equal(x, y), name
