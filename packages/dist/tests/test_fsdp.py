"""MMFullyShardedDataParallel on FSDP2, on CPU with gloo (torch's fully_shard supports it)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.dist import (
    MODEL_WRAPPERS,
    MMDistributedDataParallel,
    MMFullyShardedDataParallel,
    all_gather,
    is_model_wrapper,
)

# --- one process ---------------------------------------------------------------------


@pytest.mark.usefixtures("process_group")
def test_config_forms_build_a_sharded_model(dist_helpers: ModuleType) -> None:
    from torch.distributed.fsdp import FSDPModule

    model = dist_helpers.ToyRegressor()
    wrapped = MODEL_WRAPPERS.build(
        dict(
            type="MMFullyShardedDataParallel",
            sharding_strategy="SHARD_GRAD_OP",
            mixed_precision=dict(param_dtype="float32", reduce_dtype="fp32", buffer_dtype=None),
            auto_wrap_policy=dict(type="module_classes", module_classes=["Linear"]),
            cpu_offload=False,
            backward_prefetch="BACKWARD_PRE",
        ),
        default_args={"module": model},
    )
    assert isinstance(wrapped, MMFullyShardedDataParallel)
    assert is_model_wrapper(wrapped)
    assert isinstance(model, FSDPModule)
    assert isinstance(model.body[0], FSDPModule)
    assert not isinstance(model.body[1], FSDPModule)  # Tanh: not a listed class
    predictions = wrapped.val_step(dist_helpers.batch(0))
    assert len(predictions) == 8
    assert predictions[0].shape == (1,)


@pytest.mark.usefixtures("process_group")
@pytest.mark.parametrize(
    ("policy", "body_sharded", "linears_sharded"),
    [
        ("size_based", False, False),  # torch's default threshold: 1e8 parameters
        (dict(type="size_based_auto_wrap_policy", min_num_params=1), False, True),
        (
            dict(
                type="torch.distributed.fsdp.wrap.transformer_auto_wrap_policy",
                transformer_layer_cls=["Sequential"],
            ),
            True,
            False,
        ),
    ],
)
def test_auto_wrap_policy_forms(
    dist_helpers: ModuleType, policy: Any, body_sharded: bool, linears_sharded: bool
) -> None:
    from torch.distributed.fsdp import FSDPModule

    model = dist_helpers.ToyRegressor()
    MMFullyShardedDataParallel(model, auto_wrap_policy=policy)
    assert isinstance(model, FSDPModule)
    assert isinstance(model.body, FSDPModule) is body_sharded
    assert isinstance(model.body[0], FSDPModule) is linears_sharded
    assert isinstance(model.body[2], FSDPModule) is linears_sharded


@pytest.mark.usefixtures("process_group")
def test_meta_models_are_materialised_by_param_init_fn(dist_helpers: ModuleType) -> None:
    with torch.device("meta"):
        model = dist_helpers.ToyRegressor()
    calls = []

    def init(module: nn.Module) -> None:
        calls.append(module)
        for param in module.parameters():
            nn.init.constant_(param, 0.5)

    MMFullyShardedDataParallel(model, param_init_fn=init)
    assert calls == [model]
    weight = model.body[0].weight.full_tensor()
    assert weight.device.type == "cpu"
    assert torch.all(weight == 0.5)
    with torch.device("meta"):
        other = dist_helpers.ToyRegressor()
    with pytest.raises(ValueError, match="meta device; pass param_init_fn"):
        MMFullyShardedDataParallel(other)


@pytest.mark.usefixtures("process_group")
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(sharding_strategy="NO_SHARD"), ValueError, "use .*MMDistributedDataParallel"),
        (dict(sharding_strategy="FULLSHARD"), ValueError, "`sharding_strategy` must be one of"),
        (dict(use_orig_params=False), ValueError, "`use_orig_params` must be True"),
        (dict(backward_prefetch="BACKWARD_POST"), ValueError, "BACKWARD_PRE"),
        (dict(mixed_precision=dict(param_dtype="float8")), ValueError, "param_dtype"),
        (dict(mixed_precision=dict(keep_low_precision_grads=True)), ValueError, "keep_low"),
        (dict(mixed_precision=3), TypeError, "`mixed_precision` must be"),
        (dict(cpu_offload="yes"), TypeError, "`cpu_offload` must be"),
        (dict(auto_wrap_policy="biggest"), ValueError, "auto_wrap_policy` type must be"),
        (dict(auto_wrap_policy=dict(type="transformer")), ValueError, "transformer_layer_cls"),
        (
            dict(auto_wrap_policy=dict(type="transformer", transformer_layer_cls=["Block"])),
            ValueError,
            "'Block', which is no class of a submodule of ToyRegressor",
        ),
        (dict(ignored_modules=["head"]), ValueError, "'head', which is no submodule"),
        (dict(limit_all_gathers=True), TypeError, r"unsupported keyword arguments \['limit_"),
        (dict(reshard_after_forward=True, sharding_strategy="FULL_SHARD"), ValueError, "either"),
    ],
)
def test_bad_options_are_refused(
    dist_helpers: ModuleType, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        MMFullyShardedDataParallel(dist_helpers.ToyRegressor(), **kwargs)


@pytest.mark.usefixtures("process_group")
def test_wrapped_or_sharded_models_are_refused(dist_helpers: ModuleType) -> None:
    from torch.distributed.fsdp import fully_shard

    with pytest.raises(TypeError, match="already wrapped in MMDistributedDataParallel"):
        MMFullyShardedDataParallel(MMDistributedDataParallel(dist_helpers.ToyRegressor()))
    sharded = fully_shard(dist_helpers.ToyRegressor())
    with pytest.raises(TypeError, match="already sharded with fully_shard"):
        MMFullyShardedDataParallel(sharded)


# --- two ranks -----------------------------------------------------------------------


def fsdp_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    policy = dict(type="module_classes", module_classes=["Linear"])

    # Ranks start from different weights; sync_module_states makes them rank 0's.
    torch.manual_seed(rank)
    model = h.ToyRegressor()
    reference = h.copy_model(model)
    wrapped = MMFullyShardedDataParallel(model, auto_wrap_policy=policy, sync_module_states=True)
    out["synced"] = h.state(wrapped)

    wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(wrapped.parameters(), lr=0.1))
    data = h.batch(seed=1)
    out["log_vars"] = wrapped.train_step(h.shard(data, rank, world_size), wrapper)
    out["params"] = h.state(wrapped)
    out["predict"] = torch.stack(wrapped.val_step(data))
    out["test"] = torch.stack(wrapped.test_step(data))
    torch.manual_seed(0)  # rank 0's weights, for the single-process reference
    reference = h.ToyRegressor()
    reference.train_step(
        data, h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1))
    )
    out["reference"] = h.state(reference)
    out["reference_predict"] = torch.stack(reference.val_step(data))

    # accumulative_counts=2: no reduce-scatter after micro-step 1 (no sharded grads yet).
    torch.manual_seed(0)
    model = h.ToyRegressor()
    reference = h.copy_model(model)
    wrapped = MMFullyShardedDataParallel(model, auto_wrap_policy=policy)
    wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(wrapped.parameters(), lr=0.1), 2)
    ref_wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1), 2)
    micro_batches = [h.batch(seed=10), h.batch(seed=11)]
    wrapped.train_step(h.shard(micro_batches[0], rank, world_size), wrapper)
    out["grads_after_first"] = [p.grad is None for p in wrapped.parameters()]
    wrapped.train_step(h.shard(micro_batches[1], rank, world_size), wrapper)
    for micro_batch in micro_batches:
        reference.train_step(micro_batch, ref_wrapper)
    out["accumulated"], out["accumulated_reference"] = h.state(wrapped), h.state(reference)
    out["skipped_sync"] = [skip for _, skip in wrapper.contexts]
    wrapped(data["inputs"]).sum().backward()  # outside no_sync: reduce-scattered
    out["grads_after_synced"] = [p.grad is not None for p in wrapped.parameters()]

    # A mixed-precision configuration trains without error.
    wrapped = MMFullyShardedDataParallel(h.ToyRegressor(), mixed_precision="bfloat16")
    wrapper = h.AccumulatingOptimWrapper(torch.optim.SGD(wrapped.parameters(), lr=0.1))
    out["bf16_loss"] = wrapped.train_step(h.shard(data, rank, world_size), wrapper)["loss"]
    out["bf16_output_dtype"] = wrapped(data["inputs"]).dtype
    out["gathered_loss"] = all_gather(out["bf16_loss"].float().reshape(1))
    return out


def test_two_ranks_shard_train_and_accumulate_like_one_process(run_distributed: Any) -> None:
    rank0, rank1 = run_distributed(fsdp_worker, preload=("torch._dynamo", "torch.distributed.fsdp"))
    for out in (rank0, rank1):
        for name, synced in out["synced"].items():
            assert torch.equal(synced, rank0["synced"][name])
        for name, reference in out["reference"].items():
            torch.testing.assert_close(out["params"][name], reference)
            torch.testing.assert_close(out["accumulated"][name], out["accumulated_reference"][name])
        torch.testing.assert_close(out["predict"], out["reference_predict"])
        assert torch.equal(out["predict"], out["test"])
        assert set(out["log_vars"]) == {"loss", "loss_mse"}
        assert out["skipped_sync"] == [True, False]
        assert all(out["grads_after_first"])
        assert all(out["grads_after_synced"])
        assert out["bf16_output_dtype"] == torch.bfloat16
        assert torch.isfinite(out["bf16_loss"])
