"""CPU bfloat16 autocast works for real-sized matmuls, in training (AMP) and validation."""

from __future__ import annotations

import torch

from camshaft.runner import AmpOptimWrapper
from camshaft.runner._autocast import autocast, onednn_bfloat16_works


def test_large_bfloat16_matmul_under_autocast_runs() -> None:
    x, w = torch.randn(128, 784), torch.randn(256, 784)
    with autocast("cpu", torch.bfloat16):
        y = torch.nn.functional.linear(x, w)
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), x @ w.T, rtol=0.05, atol=2.0)
    assert isinstance(onednn_bfloat16_works(), bool)


def test_oneDNN_flag_is_restored_after_the_fallback() -> None:
    before = torch.backends.mkldnn.enabled
    with autocast("cpu", torch.bfloat16):
        pass
    assert torch.backends.mkldnn.enabled == before


def test_amp_training_step_on_cpu_with_a_784_256_layer() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    wrapper = AmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype="bfloat16"
    )
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    losses = []
    for _ in range(5):
        with wrapper.optim_context(model):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert losses[-1] < losses[0]
