"""AmpOptimWrapper: autocast in optim_context, bf16/fp16 on CPU, loss scaler state, bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camshaft.runner.optim import AmpOptimWrapper


def _train(
    wrapper: AmpOptimWrapper, model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], steps: int
) -> list[float]:
    inputs, targets = data
    losses = []
    for _ in range(steps):
        with wrapper.optim_context(model):
            loss = F.mse_loss(model(inputs).float(), targets)
        wrapper.update_params(loss)
        losses.append(float(loss.detach()))
    return losses


def _amp(model: nn.Module, lr: float = 0.05, **kwargs: Any) -> AmpOptimWrapper:
    return AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=lr), **kwargs)


# --- bfloat16 ------------------------------------------------------------------------


def test_bf16_autocast_is_active_inside_optim_context_only() -> None:
    model = nn.Linear(3, 1)
    wrapper = _amp(model, dtype="bfloat16")
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert model(torch.ones(2, 3)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    assert model(torch.ones(2, 3)).dtype == torch.float32


def test_bf16_trains_on_cpu_without_a_loss_scaler(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    wrapper = _amp(model, dtype=torch.bfloat16)
    losses = _train(wrapper, model, regression_data, 40)
    assert losses[-1] < 0.2 * losses[0]
    assert wrapper.loss_scaler is None
    assert "loss_scaler" not in wrapper.state_dict()
    assert model.weight.dtype == torch.float32  # master weights stay in float32


def test_dtype_none_picks_bfloat16_on_cpu() -> None:
    wrapper = _amp(nn.Linear(1, 1))
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None


def test_bf16_warns_that_loss_scale_is_ignored() -> None:
    with pytest.warns(UserWarning, match="bfloat16 needs no loss scaling"):
        _amp(nn.Linear(1, 1), dtype="bfloat16", loss_scale=512.0)


def test_bf16_ignores_a_loss_scaler_entry_when_loading() -> None:
    model = nn.Linear(1, 1)
    fp16_state = _amp(model, dtype="float16").state_dict()
    wrapper = _amp(model, dtype="bfloat16")
    wrapper.load_state_dict(fp16_state)
    assert "loss_scaler" in fp16_state


# --- float16 on CPU (torch has a CPU GradScaler and float16 CPU autocast) ----------------


def test_fp16_on_cpu_uses_a_grad_scaler_and_trains(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    wrapper = _amp(model, dtype="float16")
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    with wrapper.optim_context(model):
        assert model(torch.ones(2, 3)).dtype == torch.float16
    losses = _train(wrapper, model, regression_data, 40)
    assert losses[-1] < 0.2 * losses[0]


def test_fp16_scaler_backs_off_on_overflow_and_its_state_round_trips(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    wrapper = _amp(model, dtype="float16", loss_scale=dict(init_scale=2.0**30))
    _train(wrapper, model, regression_data, 8)  # 2**30 overflows float16: the scale backs off
    assert wrapper.loss_scaler is not None
    scale = wrapper.loss_scaler.get_scale()
    assert scale < 2.0**30

    state = wrapper.state_dict()
    saved = copy.deepcopy(state)
    assert state["loss_scaler"]["scale"] == scale
    restored = _amp(model, dtype="float16")
    restored.load_state_dict(state)
    assert state == saved  # the argument is not modified
    assert restored.loss_scaler is not None
    assert restored.loss_scaler.state_dict() == wrapper.loss_scaler.state_dict()


def test_fp16_static_loss_scale_stays_fixed(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    model = nn.Linear(3, 1)
    wrapper = _amp(model, dtype="float16", loss_scale=256)
    _train(wrapper, model, regression_data, 5)
    assert wrapper.loss_scaler is not None
    assert wrapper.loss_scaler.get_scale() == 256.0


def test_fp16_clips_unscaled_gradients(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    reference = copy.deepcopy(model)
    wrapper = _amp(model, dtype="float16", loss_scale=1024.0, clip_grad=dict(max_norm=0.5))
    _train(wrapper, model, regression_data, 1)  # 1024 does not overflow: the step is taken
    inputs, targets = regression_data
    F.mse_loss(reference(inputs), targets).backward()
    expected = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in reference.parameters()])
    )
    assert wrapper.grad_norm is not None
    assert wrapper.clipped_grad_norm is not None
    torch.testing.assert_close(wrapper.grad_norm, expected, atol=5e-2, rtol=1e-2)
    torch.testing.assert_close(wrapper.clipped_grad_norm, torch.tensor(0.5))


def test_fp16_overflow_reports_a_non_finite_norm_and_skips_the_step(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    model = nn.Linear(3, 1)
    before = copy.deepcopy(model.state_dict())
    wrapper = _amp(model, dtype="float16", loss_scale=2.0**30, clip_grad=dict(max_norm=0.5))
    _train(wrapper, model, regression_data, 1)
    assert wrapper.grad_norm is not None
    assert not torch.isfinite(wrapper.grad_norm)
    assert wrapper.clipped_grad_norm is not None
    assert not torch.isfinite(wrapper.clipped_grad_norm)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_fp16_wrapper_warns_when_a_state_dict_has_no_scaler_state() -> None:
    model = nn.Linear(1, 1)
    wrapper = _amp(model, dtype="float16")
    with pytest.warns(UserWarning, match="no 'loss_scaler' entry"):
        wrapper.load_state_dict(torch.optim.SGD(model.parameters(), lr=0.05).state_dict())


def test_amp_keeps_accumulation_and_no_sync(no_sync_model: Any) -> None:
    wrapper = _amp(no_sync_model, dtype="bfloat16", accumulative_counts=2)
    steps: list[int] = []
    wrapper.optimizer.register_step_post_hook(lambda *_: steps.append(wrapper.inner_count))
    for _ in range(4):
        with wrapper.optim_context(no_sync_model):
            loss = no_sync_model(torch.ones(2, 3)).float().mean()
        wrapper.update_params(loss)
    assert steps == [2, 4]
    assert no_sync_model.forwards_in_no_sync == [True, False, True, False]


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "int8", torch.float32, 16])
def test_dtype_must_be_a_half_precision_type(dtype: Any) -> None:
    with pytest.raises(ValueError, match=r"`dtype` must be 'float16', 'bfloat16'"):
        _amp(nn.Linear(1, 1), dtype=dtype)


@pytest.mark.parametrize(
    ("loss_scale", "error", "match"),
    [
        ("static", TypeError, r"`loss_scale` must be 'dynamic', a positive number"),
        (True, TypeError, r"`loss_scale` must be 'dynamic'"),
        ([512], TypeError, r"`loss_scale` must be 'dynamic'"),
        (-1.0, ValueError, r"`loss_scale` must be positive, got -1.0"),
        (dict(init_scal=2.0), ValueError, r"keys \['init_scal'\] that GradScaler does not take"),
    ],
)
def test_bad_loss_scale_is_refused(loss_scale: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _amp(nn.Linear(1, 1), dtype="float16", loss_scale=loss_scale)


def test_optim_wrapper_arguments_are_still_checked() -> None:
    with pytest.raises(ValueError, match="`accumulative_counts` must be an int >= 1"):
        _amp(nn.Linear(1, 1), dtype="bfloat16", accumulative_counts=0)


# --- CUDA ------------------------------------------------------------------------------


@pytest.mark.gpu
def test_fp16_on_cuda_autocasts_and_trains(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1).cuda()
    wrapper = _amp(model)  # dtype None on CUDA: float16 with a dynamic scaler
    assert wrapper.cast_dtype == torch.float16
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cuda")
        assert model(torch.ones(2, 3, device="cuda")).dtype == torch.float16
    data = tuple(t.cuda() for t in regression_data)
    losses = _train(wrapper, model, data, 40)  # type: ignore[arg-type]
    assert losses[-1] < 0.2 * losses[0]
    restored = _amp(model, dtype="float16")
    restored.load_state_dict(wrapper.state_dict())
    assert restored.loss_scaler is not None
    assert wrapper.loss_scaler is not None
    assert restored.loss_scaler.state_dict() == wrapper.loss_scaler.state_dict()


@pytest.mark.gpu
def test_bf16_on_cuda_autocasts_without_a_scaler() -> None:
    model = nn.Linear(3, 1).cuda()
    wrapper = _amp(model, dtype="bfloat16", clip_grad=dict(max_norm=1.0))
    with wrapper.optim_context(model):
        out = model(torch.ones(2, 3, device="cuda"))
    assert out.dtype == torch.bfloat16
    assert wrapper.loss_scaler is None
    wrapper.update_params(out.float().mean())
    assert wrapper.grad_norm is not None
    assert wrapper.grad_norm.device.type == "cuda"
