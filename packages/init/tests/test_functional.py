"""The functional initializers: statistics, exact constants, dtypes, devices, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from camshaft.init import (
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    kaiming_init,
    normal_init,
    trunc_normal_,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)

FAN_IN, FAN_OUT = 512, 1024  # nn.Linear(512, 1024): weight (1024, 512), ~half a million draws


def _linear(dtype: torch.dtype, device: torch.device, bias: bool = True) -> nn.Linear:
    return nn.Linear(FAN_IN, FAN_OUT, bias=bias).to(device=device, dtype=dtype)


def _stats(tensor: torch.Tensor) -> tuple[float, float]:
    values = tensor.detach().double()
    return values.mean().item(), values.std().item()


def _assert_bias(layer: nn.Module, value: float) -> None:
    expected = torch.full_like(layer.bias, value)
    assert torch.equal(layer.bias, expected)


def test_constant_init_is_exact(dtype: torch.dtype, device: torch.device) -> None:
    layer = _linear(dtype, device)
    constant_init(layer, 0.5, bias=-2)
    assert torch.equal(layer.weight, torch.full_like(layer.weight, 0.5))
    _assert_bias(layer, -2)
    assert layer.weight.dtype == dtype
    assert layer.weight.device.type == device.type


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_init_std(
    dtype: torch.dtype, device: torch.device, mode: str, distribution: str
) -> None:
    layer = _linear(dtype, device)
    kaiming_init(layer, mode=mode, nonlinearity="relu", bias=0.25, distribution=distribution)
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    expected_std = math.sqrt(2.0 / fan)
    mean, std = _stats(layer.weight)
    assert std == pytest.approx(expected_std, rel=0.05)
    assert abs(mean) < 0.05 * expected_std
    if distribution == "uniform":
        bound = math.sqrt(3.0) * expected_std
        assert layer.weight.double().abs().max().item() <= bound * 1.01
    _assert_bias(layer, 0.25)


def test_kaiming_init_leaky_relu_slope_changes_gain() -> None:
    layer = _linear(torch.float32, torch.device("cpu"))
    kaiming_init(layer, a=1, mode="fan_in", nonlinearity="leaky_relu")
    _, std = _stats(layer.weight)
    assert std == pytest.approx(math.sqrt(1.0 / FAN_IN), rel=0.05)  # gain sqrt(2 / (1 + 1)) = 1


def test_caffe2_xavier_init_is_kaiming_uniform_fan_in(
    dtype: torch.dtype, device: torch.device
) -> None:
    layer = _linear(dtype, device)
    caffe2_xavier_init(layer, bias=1)
    bound = math.sqrt(3.0 / FAN_IN)
    _, std = _stats(layer.weight)
    assert std == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
    assert layer.weight.double().abs().max().item() <= bound * 1.01
    _assert_bias(layer, 1)


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_xavier_init_std(dtype: torch.dtype, device: torch.device, distribution: str) -> None:
    layer = _linear(dtype, device)
    xavier_init(layer, gain=2, bias=0.5, distribution=distribution)
    expected_std = 2 * math.sqrt(2.0 / (FAN_IN + FAN_OUT))
    mean, std = _stats(layer.weight)
    assert std == pytest.approx(expected_std, rel=0.05)
    assert abs(mean) < 0.05 * expected_std
    _assert_bias(layer, 0.5)


def test_normal_init_mean_and_std(dtype: torch.dtype, device: torch.device) -> None:
    layer = _linear(dtype, device)
    normal_init(layer, mean=1.0, std=0.02, bias=3)
    mean, std = _stats(layer.weight)
    assert mean == pytest.approx(1.0, abs=0.002)
    assert std == pytest.approx(0.02, rel=0.05)
    _assert_bias(layer, 3)


def test_trunc_normal_init_stays_in_bounds(dtype: torch.dtype, device: torch.device) -> None:
    layer = _linear(dtype, device)
    trunc_normal_init(layer, mean=0, std=1, a=-0.5, b=0.5, bias=-1)
    values = layer.weight.double()
    assert values.min().item() >= -0.5
    assert values.max().item() <= 0.5
    # N(0, 1) cut to [-0.5, 0.5] is close to uniform there: std about 0.28.
    assert values.std().item() == pytest.approx(0.2838, rel=0.05)
    _assert_bias(layer, -1)


def test_trunc_normal_returns_its_tensor(dtype: torch.dtype, device: torch.device) -> None:
    tensor = torch.empty(256, 256, dtype=dtype, device=device)
    out = trunc_normal_(tensor, mean=0.0, std=0.02, a=-0.04, b=0.04)
    assert out is tensor
    bound = torch.tensor(0.04, dtype=dtype).item()  # 0.04 as the dtype rounds it
    assert tensor.double().abs().max().item() <= bound
    assert _stats(tensor)[1] == pytest.approx(0.0176, rel=0.05)  # std of N(0,1) cut at ±2


def test_uniform_init_range(dtype: torch.dtype, device: torch.device) -> None:
    layer = _linear(dtype, device)
    uniform_init(layer, a=-3, b=1, bias=0.125)
    values = layer.weight.double()
    assert values.min().item() >= -3
    assert values.max().item() <= 1
    assert values.mean().item() == pytest.approx(-1.0, abs=0.02)
    _assert_bias(layer, 0.125)


def test_bias_init_with_prob_value() -> None:
    assert bias_init_with_prob(0.01) == float(-math.log(0.99 / 0.01))
    assert bias_init_with_prob(0.5) == 0.0
    assert isinstance(bias_init_with_prob(0.25), float)


@pytest.mark.parametrize("prior_prob", [0, 1, -0.1, 1.5, True, "0.5", None])
def test_bias_init_with_prob_rejects_non_probabilities(prior_prob: object) -> None:
    with pytest.raises(ValueError, match="prior_prob") as info:
        bias_init_with_prob(prior_prob)  # type: ignore[arg-type]
    assert repr(prior_prob) in str(info.value)
    assert "(0, 1)" in str(info.value)


ALL_INITS = [
    lambda m: constant_init(m, 1),
    lambda m: xavier_init(m),
    lambda m: normal_init(m),
    lambda m: trunc_normal_init(m),
    lambda m: uniform_init(m),
    lambda m: kaiming_init(m),
    lambda m: caffe2_xavier_init(m),
]


@pytest.mark.parametrize("init", ALL_INITS)
def test_modules_without_weight_or_bias_are_untouched(init: object) -> None:
    init(nn.ReLU())  # type: ignore[operator]
    layer = nn.Linear(4, 4, bias=False)
    init(layer)  # type: ignore[operator]
    assert layer.bias is None

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = 0.5  # not a tensor: left alone

    module = Scaled()
    init(module)  # type: ignore[operator]
    assert module.weight == 0.5


@pytest.mark.parametrize("init", ALL_INITS)
def test_meta_tensors_are_left_alone(init: object) -> None:
    layer = nn.Linear(8, 8, device="meta")
    init(layer)  # type: ignore[operator]
    assert layer.weight.is_meta
    assert layer.bias.is_meta


@pytest.mark.parametrize("init", ALL_INITS)
def test_no_autograd_history(init: object) -> None:
    layer = nn.Linear(8, 8)
    with torch.enable_grad():
        init(layer)  # type: ignore[operator]
    assert layer.weight.grad_fn is None
    assert layer.weight.requires_grad


def test_low_precision_falls_back_to_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    real_normal = nn.init.normal_
    calls: list[torch.dtype] = []

    def half_less_normal(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> object:
        calls.append(tensor.dtype)
        if tensor.dtype == torch.float16:
            raise RuntimeError("\"normal_kernel_cpu\" not implemented for 'Half'")
        return real_normal(tensor, mean, std)

    monkeypatch.setattr(nn.init, "normal_", half_less_normal)
    layer = _linear(torch.float16, torch.device("cpu"))
    normal_init(layer, mean=0, std=0.5)
    assert calls == [torch.float16, torch.float32]
    assert layer.weight.dtype == torch.float16
    assert _stats(layer.weight)[1] == pytest.approx(0.5, rel=0.05)


def test_other_runtime_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> object:
        raise RuntimeError("device-side assert")

    monkeypatch.setattr(nn.init, "normal_", broken)
    with pytest.raises(RuntimeError, match="device-side assert"):
        normal_init(_linear(torch.float16, torch.device("cpu")))


@pytest.mark.parametrize("init", [xavier_init, kaiming_init])
def test_distribution_is_validated(init: object) -> None:
    with pytest.raises(ValueError, match="`distribution`") as info:
        init(nn.Linear(2, 2), distribution="gaussian")  # type: ignore[operator]
    assert "'gaussian'" in str(info.value)
    assert "'normal'" in str(info.value)
    assert "'uniform'" in str(info.value)


def test_kaiming_mode_is_validated() -> None:
    with pytest.raises(ValueError, match=r"`mode`.*'fan_in'.*'fan_avg'"):
        kaiming_init(nn.Linear(2, 2), mode="fan_avg")


def test_kaiming_nonlinearity_is_validated() -> None:
    with pytest.raises(ValueError, match="`nonlinearity` 'swish'"):
        kaiming_init(nn.Linear(2, 2), nonlinearity="swish")


def test_kaiming_slope_must_be_a_number() -> None:
    with pytest.raises(TypeError, match=r"`a` must be a real number, got '0\.1'"):
        kaiming_init(nn.Linear(2, 2), a="0.1", nonlinearity="leaky_relu")  # type: ignore[arg-type]


@pytest.mark.parametrize("init", [xavier_init, kaiming_init])
def test_fan_based_init_names_a_one_dimensional_weight(init: object) -> None:
    with pytest.raises(ValueError, match=r"BatchNorm2d\.weight has shape \(4,\)"):
        init(nn.BatchNorm2d(4))  # type: ignore[operator]


def test_trunc_normal_rejects_empty_interval() -> None:
    with pytest.raises(ValueError, match="a=1 and b=-1"):
        trunc_normal_(torch.empty(3), a=1, b=-1)
