"""MMSeparateDistributedDataParallel: a toy GAN trains like one process; no_sync works."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.dist import (
    MODEL_WRAPPERS,
    MMDistributedDataParallel,
    MMSeparateDistributedDataParallel,
    all_gather,
    is_model_wrapper,
)
from camshaft.model import BaseDataPreprocessor


@pytest.mark.usefixtures("process_group")
def test_trainable_children_are_wrapped_and_the_rest_only_moved(dist_helpers: ModuleType) -> None:
    gan = dist_helpers.ToyGAN()
    wrapped = MODEL_WRAPPERS.build(
        dict(type="MMSeparateDistributedDataParallel"), default_args={"module": gan}
    )
    assert isinstance(wrapped, MMSeparateDistributedDataParallel)
    assert wrapped.module is gan
    assert is_model_wrapper(wrapped)
    assert isinstance(gan.generator, MMDistributedDataParallel)
    assert isinstance(gan.discriminator, MMDistributedDataParallel)
    assert type(gan.frozen) is nn.Linear  # no trainable parameters
    assert type(gan.data_preprocessor) is BaseDataPreprocessor  # no parameters at all
    assert gan.generator.broadcast_buffers is False
    # train()/eval() reach the children through the plain nn.Module machinery.
    wrapped.eval()
    assert not gan.generator.training
    assert not gan.generator.module.training
    wrapped.train()
    assert gan.discriminator.module.training


@pytest.mark.usefixtures("process_group")
def test_val_and_test_step_delegate_to_the_model(dist_helpers: ModuleType) -> None:
    model = dist_helpers.ToyRegressor()
    wrapped = MMSeparateDistributedDataParallel(model)
    data = dist_helpers.batch(0)
    expected = torch.stack(model.body.module(data["inputs"]).unbind())
    assert torch.equal(torch.stack(wrapped.val_step(data)), expected)
    assert torch.equal(torch.stack(wrapped.test_step(data)), expected)


@pytest.mark.usefixtures("process_group")
def test_bad_input_is_refused(dist_helpers: ModuleType) -> None:
    wrapped = MMSeparateDistributedDataParallel(dist_helpers.ToyGAN())
    with pytest.raises(TypeError, match="already wrapped in MMSeparateDistributedDataParallel"):
        MMSeparateDistributedDataParallel(wrapped)
    with pytest.raises(TypeError, match=r"must be an nn\.Module"):
        MMSeparateDistributedDataParallel([nn.Linear(2, 2)])  # type: ignore[arg-type]


def gan_batch(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "inputs": torch.randn(8, 3, generator=generator),
        "noise": torch.randn(8, 2, generator=generator),
    }


def separate_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    torch.manual_seed(0)
    gan = h.ToyGAN()
    reference = h.copy_model(gan)
    wrapped = MMSeparateDistributedDataParallel(gan)

    def wrappers(model: nn.Module) -> dict[str, Any]:
        return {
            name: h.AccumulatingOptimWrapper(
                torch.optim.SGD(getattr(model, name).parameters(), lr=0.2)
            )
            for name in ("generator", "discriminator")
        }

    optim, ref_optim = wrappers(gan), wrappers(reference)
    out: dict[str, Any] = {}
    for step in range(2):
        data = gan_batch(step)
        out["log_vars"] = wrapped.train_step(h.shard(data, rank, world_size), optim)
        reference.train_step(data, ref_optim)
    out["params"], out["reference"] = h.state(wrapped), h.state(reference)

    # no_sync: gradients stay local inside the block, and sync on the next step outside.
    gan.zero_grad()
    data = h.shard(gan_batch(5), rank, world_size)
    with wrapped.no_sync():
        gan.discriminator(gan.generator(data["noise"])).mean().backward()
    out["grads_in_no_sync"] = [p.grad.clone() for p in gan.generator.parameters()]
    out["gathered_in_no_sync"] = all_gather(out["grads_in_no_sync"][0])
    gan.discriminator(gan.generator(data["noise"])).mean().backward()
    out["gathered_after"] = all_gather(gan.generator.module.weight.grad)
    return out


def test_two_ranks_train_a_gan_like_one_process(run_distributed: Any) -> None:
    rank0, rank1 = run_distributed(separate_worker, preload=("torch._dynamo",))
    for out in (rank0, rank1):
        assert set(out["log_vars"]) == {"loss_d", "loss_g"}
        for name, reference in out["reference"].items():
            torch.testing.assert_close(out["params"][name], reference)
        weights = out["gathered_in_no_sync"]
        assert not torch.equal(weights[0], weights[1])  # each rank kept its own
        after = out["gathered_after"]
        assert torch.equal(after[0], after[1])  # the next synced backward averaged them
    for name, param in rank0["params"].items():
        assert torch.equal(param, rank1["params"][name])
