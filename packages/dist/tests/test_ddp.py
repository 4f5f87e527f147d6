"""MMDistributedDataParallel: gradients sync like one big batch; accumulation skips syncs."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from camshaft.dist import MODEL_WRAPPERS, MMDistributedDataParallel, is_model_wrapper
from camshaft.registry import RegistryError

# --- one process ---------------------------------------------------------------------


def test_wrapping_needs_a_process_group(dist_helpers: ModuleType) -> None:
    with pytest.raises(RuntimeError, match=r"call camshaft\.dist\.init_dist"):
        MMDistributedDataParallel(dist_helpers.ToyRegressor())


@pytest.mark.usefixtures("process_group")
def test_the_registry_builds_it_and_is_model_wrapper_sees_it(dist_helpers: ModuleType) -> None:
    model = dist_helpers.ToyRegressor()
    ddp = MODEL_WRAPPERS.build(
        dict(type="MMDistributedDataParallel"), default_args={"module": model}
    )
    assert isinstance(ddp, MMDistributedDataParallel)
    assert ddp.module is model
    assert is_model_wrapper(ddp)
    assert not is_model_wrapper(model)
    assert is_model_wrapper(DistributedDataParallel(nn.Linear(2, 2)))


@pytest.mark.usefixtures("process_group")
def test_val_and_test_step_delegate_to_the_model(dist_helpers: ModuleType) -> None:
    model = dist_helpers.ToyRegressor()
    ddp = MMDistributedDataParallel(model)
    data = dist_helpers.batch(0)
    expected = torch.stack(model.val_step(data))
    assert torch.equal(torch.stack(ddp.val_step(data)), expected)
    assert torch.equal(torch.stack(ddp.test_step(data)), expected)


@pytest.mark.usefixtures("process_group")
def test_unused_parameters_are_reported_by_name(
    dist_helpers: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    model = dist_helpers.ToyRegressor(unused_head=True)
    ddp = MMDistributedDataParallel(
        model, detect_anomalous_params=True, find_unused_parameters=True
    )
    optim_wrapper = dist_helpers.AccumulatingOptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
    with caplog.at_level(logging.ERROR, logger="camshaft.dist"):
        log_vars = ddp.train_step(dist_helpers.batch(0), optim_wrapper)
    assert set(log_vars) == {"loss", "loss_mse"}
    [record] = caplog.records
    assert "unused.weight, unused.bias" in record.getMessage()
    assert "body.0.weight" not in record.getMessage()
    assert "find_unused_parameters=True" in record.getMessage()


@pytest.mark.usefixtures("process_group")
def test_no_report_when_every_parameter_is_used(
    dist_helpers: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    ddp = MMDistributedDataParallel(dist_helpers.ToyRegressor(), detect_anomalous_params=True)
    optim_wrapper = dist_helpers.AccumulatingOptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
    with caplog.at_level(logging.ERROR, logger="camshaft.dist"):
        ddp.train_step(dist_helpers.batch(0), optim_wrapper)
    assert caplog.records == []


@pytest.mark.usefixtures("process_group")
def test_bad_input_is_refused(dist_helpers: ModuleType) -> None:
    model = dist_helpers.ToyRegressor()
    ddp = MMDistributedDataParallel(model)
    with pytest.raises(TypeError, match="already wrapped in MMDistributedDataParallel"):
        MMDistributedDataParallel(ddp)
    with pytest.raises(TypeError, match="already wrapped in DistributedDataParallel"):
        MMDistributedDataParallel(DistributedDataParallel(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match=r"must be an nn\.Module"):
        MMDistributedDataParallel("model")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="detect_anomalous_params"):
        MMDistributedDataParallel(nn.Linear(2, 2), detect_anomalous_params="yes")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="MMDistributedDataParalel"):
        MODEL_WRAPPERS.build(dict(type="MMDistributedDataParalel", module=nn.Linear(2, 2)))
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="HINT: wrap the optimizer"):
        ddp.train_step(dist_helpers.batch(0), optimizer)
    plain = MMDistributedDataParallel(nn.Linear(4, 1))
    with pytest.raises(TypeError, match="has no data_preprocessor or parse_losses"):
        plain.train_step(dist_helpers.batch(0), dist_helpers.AccumulatingOptimWrapper(optimizer))


# --- two ranks -----------------------------------------------------------------------


def ddp_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    torch.manual_seed(0)
    out: dict[str, Any] = {}

    # One step on different shards == one single-process step on the whole batch.
    model = h.ToyRegressor()
    reference = h.copy_model(model)
    ddp = MMDistributedDataParallel(model)
    wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
    data = h.batch(seed=1)
    out["log_vars"] = ddp.train_step(h.shard(data, rank, world_size), wrapper)
    ref_wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1))
    reference.train_step(data, ref_wrapper)
    out["params"], out["reference"] = h.state(ddp), h.state(reference)
    out["context_model_is_wrapper"] = wrapper.contexts[0][0] is ddp

    # accumulative_counts=2: micro-step 1 stays local, micro-step 2 synchronises.
    model = h.ToyRegressor()
    reference = h.copy_model(model)
    ddp = MMDistributedDataParallel(model)
    wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1), 2)
    ref_wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1), 2)
    micro_batches = [h.batch(seed=10), h.batch(seed=11)]
    ddp.train_step(h.shard(micro_batches[0], rank, world_size), wrapper)
    out["grads_after_first"] = {n: p.grad.clone() for n, p in model.named_parameters()}
    local = h.copy_model(model)  # what this rank's own micro-batch alone gives
    local.zero_grad()
    local_data = h.shard(micro_batches[0], rank, world_size)
    (local.parse_losses(local._run_forward(local_data, "loss"))[0] / 2).backward()
    out["local_grads"] = {n: p.grad.clone() for n, p in local.named_parameters()}
    ddp.train_step(h.shard(micro_batches[1], rank, world_size), wrapper)
    for micro_batch in micro_batches:
        reference.train_step(micro_batch, ref_wrapper)
    out["accumulated"], out["accumulated_reference"] = h.state(ddp), h.state(reference)
    out["skipped_sync"] = [skip for _, skip in wrapper.contexts]
    return out


def test_two_ranks_train_like_one_process_and_accumulate(run_distributed: Any) -> None:
    rank0, rank1 = run_distributed(ddp_worker, preload=("torch._dynamo",))
    for out in (rank0, rank1):
        assert out["context_model_is_wrapper"]
        assert set(out["log_vars"]) == {"loss", "loss_mse"}
        for name, reference in out["reference"].items():
            torch.testing.assert_close(out["params"][name], reference)
            torch.testing.assert_close(out["accumulated"][name], out["accumulated_reference"][name])
        assert out["skipped_sync"] == [True, False]
        # After the no_sync micro-step, each rank holds only its own gradients.
        for name, grad in out["grads_after_first"].items():
            torch.testing.assert_close(grad, out["local_grads"][name])
    for name, param in rank0["params"].items():
        assert torch.equal(param, rank1["params"][name])
        assert torch.equal(rank0["accumulated"][name], rank1["accumulated"][name])
    assert not torch.equal(
        rank0["grads_after_first"]["body.0.weight"], rank1["grads_after_first"]["body.0.weight"]
    )
