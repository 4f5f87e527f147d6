"""GPU checks: NCCL with one process, FSDP2 on CUDA, CUDA tensors through gloo.

All are marked ``gpu``: skipped with a reason where CUDA is absent, selected by
``nox -s gpu`` (or ``tools/gpu_tests.sh``) on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.distributed as dist

import camshaft.dist as cd

pytestmark = pytest.mark.gpu


@pytest.fixture
def nccl_group(monkeypatch: pytest.MonkeyPatch, dist_helpers: ModuleType) -> Iterator[None]:
    """A one-process NCCL group joined through init_dist, as under torchrun."""
    values = dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    for name, value in {**values, "MASTER_PORT": str(dist_helpers.free_port())}.items():
        monkeypatch.setenv(name, value)
    cd.init_dist("pytorch", timeout=60)  # backend None: NCCL, since CUDA is available
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.usefixtures("nccl_group")
def test_nccl_is_the_default_backend_and_communicates_through_cuda() -> None:
    assert cd.get_backend() == "nccl"
    assert cd.get_comm_device() == torch.device("cuda", 0)
    tensor = torch.tensor([2.0])
    cd.all_reduce(tensor, op="mean")
    assert tensor.device.type == "cpu"
    assert tensor.item() == 2.0
    assert cd.collect_results([1, 2, 3], size=2, device="gpu") == [1, 2]


@pytest.mark.usefixtures("nccl_group")
def test_ddp_on_one_gpu_trains_like_the_bare_model(dist_helpers: ModuleType) -> None:
    h = dist_helpers
    torch.manual_seed(0)
    model = h.ToyRegressor().cuda()
    reference = h.copy_model(model)
    ddp = cd.MMDistributedDataParallel(model, device_ids=[0])
    data = h.batch(seed=3)
    log_vars = ddp.train_step(
        data, h.AccumulatingOptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
    )
    reference.train_step(
        data, h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1))
    )
    assert log_vars["loss"].device.type == "cuda"
    for name, param in h.state(ddp).items():
        torch.testing.assert_close(param, h.state(reference)[name])


@pytest.mark.usefixtures("nccl_group")
def test_separate_ddp_moves_children_to_the_gpu(dist_helpers: ModuleType) -> None:
    gan = dist_helpers.ToyGAN()
    cd.MMSeparateDistributedDataParallel(gan)
    assert isinstance(gan.generator, cd.MMDistributedDataParallel)
    assert gan.generator.module.weight.device.type == "cuda"
    assert gan.frozen.weight.device.type == "cuda"
    assert gan.data_preprocessor.device.type == "cuda"


@pytest.mark.usefixtures("nccl_group")
def test_fsdp_on_one_gpu_trains_like_the_bare_model(dist_helpers: ModuleType) -> None:
    h = dist_helpers
    torch.manual_seed(0)
    model = h.ToyRegressor()
    reference = h.copy_model(model).cuda()
    wrapped = cd.MMFullyShardedDataParallel(
        model, auto_wrap_policy=dict(type="module_classes", module_classes=["Linear"])
    )
    assert next(wrapped.parameters()).device.type == "cuda"
    data = h.batch(seed=4)
    wrapped.train_step(
        data, h.AccumulatingOptimWrapper(torch.optim.SGD(wrapped.parameters(), lr=0.1))
    )
    reference.train_step(
        data, h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1))
    )
    for name, param in h.state(wrapped).items():
        torch.testing.assert_close(param, h.state(reference)[name])
    assert wrapped.val_step(data)[0].device.type == "cuda"


def cuda_through_gloo_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    device = torch.device("cuda", 0)
    summed = torch.tensor([float(rank + 1)], device=device)
    cd.all_reduce(summed)
    sent = torch.full((2,), float(rank), device=device)
    cd.broadcast(sent, src=1)
    gathered = cd.all_gather(torch.tensor([float(rank)], device=device))
    return {
        "sum": summed.cpu(),
        "sum_device": summed.device.type,
        "broadcast": sent.cpu(),
        "gathered": [t.cpu() for t in gathered],
        "gathered_device": {t.device.type for t in gathered},
    }


def test_cuda_tensors_go_through_gloo_and_come_back(run_distributed: Any) -> None:
    for out in run_distributed(cuda_through_gloo_worker):
        assert out["sum_device"] == "cuda"
        assert out["sum"].item() == 3.0
        assert torch.equal(out["broadcast"], torch.ones(2))
        assert [t.item() for t in out["gathered"]] == [0.0, 1.0]
        assert out["gathered_device"] == {"cuda"}
