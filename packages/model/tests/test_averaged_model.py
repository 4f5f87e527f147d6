"""Tests for the averaged models: EMA, momentum-annealing EMA and SWA."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from camshaft.model import (
    MODELS,
    BaseAveragedModel,
    ExponentialMovingAverage,
    MomentumAnnealingEMA,
    StochasticWeightAverage,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _train_step(model: nn.Module, seed: int) -> None:
    """Change every parameter and the BN running stats, as a training step would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator))
    model.train()
    model(torch.randn(8, 3, generator=generator))


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# --- the update rules -----------------------------------------------------------------


def test_ema_follows_the_formula_over_several_steps() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.3)
    ema.update_parameters(model)
    expected = _params(model)  # the first call copies
    for step in range(1, 6):
        _train_step(model, step)
        ema.update_parameters(model)
        for name, source in model.named_parameters():
            expected[name] = 0.7 * expected[name] + 0.3 * source.detach()
    for name, averaged in ema.module.named_parameters():
        torch.testing.assert_close(averaged, expected[name])
    assert int(ema.steps) == 6


def test_ema_with_interval_averages_only_every_interval_calls() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.5, interval=3)
    expected: dict[str, torch.Tensor] = {}
    for step in range(8):
        _train_step(model, step)
        ema.update_parameters(model)
        if step == 0:
            expected = _params(model)
        elif step % 3 == 0:
            for name, source in model.named_parameters():
                expected[name] = 0.5 * expected[name] + 0.5 * source.detach()
        # buffers follow the model on every call when update_buffers is False
        torch.testing.assert_close(
            ema.module[1].running_mean, model[1].running_mean, rtol=0, atol=0
        )
    for name, averaged in ema.module.named_parameters():
        torch.testing.assert_close(averaged, expected[name])
    assert int(ema.steps) == 8


def test_annealing_momentum_schedule() -> None:
    model = nn.Linear(1, 1, bias=False)
    ema = MomentumAnnealingEMA(model, momentum=0.2, gamma=2)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update_parameters(model)
    expected = 0.0
    for step in range(1, 13):
        with torch.no_grad():
            model.weight.fill_(float(step))
        ema.update_parameters(model)
        momentum = max(0.2, 2 / (2 + step))  # anneals, then stays at the floor
        expected = (1 - momentum) * expected + momentum * step
        assert float(ema.module.weight) == pytest.approx(expected, rel=1e-5)
    assert 2 / (2 + 12) < 0.2  # the last steps used the floor


@pytest.mark.parametrize("interval", [1, 2])
def test_swa_equals_the_mean_of_snapshots(interval: int) -> None:
    model = _net()
    swa = StochasticWeightAverage(model, interval=interval)
    snapshots: list[dict[str, torch.Tensor]] = []
    for step in range(7):
        _train_step(model, step)
        swa.update_parameters(model)
        if step % interval == 0:
            snapshots.append(_params(model))
    for name, averaged in swa.module.named_parameters():
        mean = torch.stack([snap[name] for snap in snapshots]).mean(0)
        torch.testing.assert_close(averaged, mean)


def test_update_buffers_true_averages_float_buffers_and_copies_counters() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.25, update_buffers=True)
    ema.update_parameters(model)
    expected = model[1].running_mean.clone()
    for step in range(1, 4):
        _train_step(model, step)
        ema.update_parameters(model)
        expected = 0.75 * expected + 0.25 * model[1].running_mean
    bn = ema.module[1]
    torch.testing.assert_close(bn.running_mean, expected)
    assert not torch.equal(bn.running_mean, model[1].running_mean)
    assert int(bn.num_batches_tracked) == int(model[1].num_batches_tracked) == 3


def test_update_buffers_false_copies_buffers_on_every_call() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.25, interval=2)
    for step in range(4):
        _train_step(model, step)
        ema.update_parameters(model)
        assert torch.equal(ema.module[1].running_var, model[1].running_var)
        assert torch.equal(ema.module[1].num_batches_tracked, model[1].num_batches_tracked)


def test_mixed_dtypes_and_integer_parameters_are_handled() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.single = nn.Parameter(torch.zeros(3))
            self.wide = nn.Parameter(torch.zeros(2, dtype=torch.float64))
            self.index = nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)

    model = Mixed()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    ema.update_parameters(model)
    with torch.no_grad():
        model.single.fill_(2.0)
        model.wide.fill_(4.0)
        model.index.fill_(7)
    ema.update_parameters(model)
    assert ema.module.single.tolist() == [1.0, 1.0, 1.0]
    assert ema.module.wide.dtype == torch.float64
    assert ema.module.wide.tolist() == [2.0, 2.0]
    assert ema.module.index.tolist() == [7, 7]  # not averaged: copied


def test_subclass_overriding_only_avg_func_is_used() -> None:
    seen: list[int] = []

    class Halfway(ExponentialMovingAverage):
        def avg_func(
            self,
            averaged_param: torch.Tensor,
            source_param: torch.Tensor,
            steps: torch.Tensor | int,
        ) -> None:
            seen.append(int(steps))
            averaged_param.copy_((averaged_param + source_param) / 2)

    model = nn.Linear(1, 1, bias=False)
    averaged = Halfway(model, momentum=0.01)
    averaged.update_parameters(model)
    with torch.no_grad():
        model.weight.add_(2.0)
    averaged.update_parameters(model)
    torch.testing.assert_close(averaged.module.weight, model.weight.detach() - 1.0)
    assert seen == [1]


# --- the copy ---------------------------------------------------------------------------


def test_average_is_an_independent_frozen_copy() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    before = _params(ema.module)
    _train_step(model, 1)
    for name, averaged in ema.module.named_parameters():
        assert torch.equal(averaged, before[name])
        assert not averaged.requires_grad
    assert all(p.requires_grad for p in model.parameters())
    ema.update_parameters(model)
    assert all(p.grad_fn is None and not p.requires_grad for p in ema.module.parameters())


def test_forward_runs_the_averaged_copy() -> None:
    model = _net().eval()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    ema.eval()
    inputs = torch.randn(5, 3)
    expected = model(inputs)
    _train_step(model, 3)
    model.eval()
    torch.testing.assert_close(ema(inputs), expected)
    assert not torch.allclose(model(inputs), expected)


def test_device_argument_places_the_copy() -> None:
    model = _net()
    ema = ExponentialMovingAverage(model, momentum=0.5, device="meta")
    assert all(p.is_meta for p in ema.module.parameters())
    assert ema.steps.is_meta
    assert all(not p.is_meta for p in model.parameters())
    ema.update_parameters(model)  # sources are moved to the copy's device


@pytest.mark.gpu
def test_average_on_another_device_than_the_model() -> None:
    model = _net().cuda()
    ema = ExponentialMovingAverage(model, momentum=0.5, device="cpu")
    assert all(p.device.type == "cpu" for p in ema.module.parameters())
    ema.update_parameters(model)
    _train_step(model.cpu(), 1)
    model.cuda()
    ema.update_parameters(model)
    ema_gpu = ExponentialMovingAverage(model.cpu(), momentum=0.5, device="cuda")
    assert ema_gpu.steps.device.type == "cuda"
    assert all(p.is_cuda for p in ema_gpu.module.parameters())


# --- checkpoints --------------------------------------------------------------------


def test_state_dict_round_trip_restores_steps_and_schedule() -> None:
    model = _net()
    ema = MomentumAnnealingEMA(model, momentum=0.01, gamma=3, interval=2)
    for step in range(5):
        _train_step(model, step)
        ema.update_parameters(model)
    state = ema.state_dict()
    assert "steps" in state
    assert {key for key in state if key != "steps"} == {
        f"module.{key}" for key in model.state_dict()
    }

    restored = MomentumAnnealingEMA(_net(), momentum=0.01, gamma=3, interval=2)
    restored.load_state_dict(copy.deepcopy(state))
    assert int(restored.steps) == 5
    _train_step(model, 9)
    ema.update_parameters(model)  # step 5: not an averaging step
    restored.update_parameters(model)
    _train_step(model, 10)
    ema.update_parameters(model)  # step 6: averages with momentum 3 / 9
    restored.update_parameters(model)
    for (name, a), (_, b) in zip(
        ema.module.named_parameters(), restored.module.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
    assert int(restored.steps) == 7


# --- registry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ExponentialMovingAverage", ExponentialMovingAverage),
        ("MomentumAnnealingEMA", MomentumAnnealingEMA),
        ("StochasticWeightAverage", StochasticWeightAverage),
    ],
)
def test_registered_names_build_from_models(name: str, cls: type) -> None:
    model = _net()
    built = MODELS.build(dict(type=name, interval=2), default_args=dict(model=model))
    assert type(built) is cls
    assert built.interval == 2
    assert MODELS.get(name) is cls


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_momentum_out_of_range_is_refused_with_a_hint(momentum: float) -> None:
    with pytest.raises(ValueError, match=r"`momentum` must be in \(0, 1\)") as info:
        ExponentialMovingAverage(_net(), momentum=momentum)
    assert repr(momentum) in str(info.value)
    assert "decay" in str(info.value)


@pytest.mark.parametrize("momentum", ["0.1", None, True])
def test_momentum_of_wrong_type_is_refused(momentum: object) -> None:
    with pytest.raises(TypeError, match="`momentum`"):
        ExponentialMovingAverage(_net(), momentum=momentum)  # type: ignore[arg-type]


def test_large_momentum_warns_about_the_convention() -> None:
    with pytest.warns(UserWarning, match="decay=0.9998 is momentum=0.0002"):
        ema = MomentumAnnealingEMA(_net(), momentum=0.9998)
    assert ema.momentum == pytest.approx(0.9998)


@pytest.mark.parametrize(
    ("interval", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_bad_interval_is_refused(interval: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"`interval` must be an int >= 1, got"):
        StochasticWeightAverage(_net(), interval=interval)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gamma", "error"), [(0, ValueError), (-1.0, ValueError), ("9", TypeError)]
)
def test_bad_gamma_is_refused(gamma: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="`gamma` must be a positive number"):
        MomentumAnnealingEMA(_net(), gamma=gamma)  # type: ignore[arg-type]


def test_bad_model_device_and_flags_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module, got dict"):
        ExponentialMovingAverage({})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`device` names no device: 'gpu0'"):
        ExponentialMovingAverage(_net(), device="gpu0")
    with pytest.raises(TypeError, match="`device` must be"):
        ExponentialMovingAverage(_net(), device=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`update_buffers` must be a bool"):
        ExponentialMovingAverage(_net(), update_buffers="yes")  # type: ignore[arg-type]


def test_update_with_a_different_model_names_the_mismatch() -> None:
    ema = ExponentialMovingAverage(_net())
    with pytest.raises(ValueError, match=r"unexpected \['bias', 'weight'\]") as info:
        ema.update_parameters(nn.Linear(3, 4))
    assert "'0.weight'" in str(info.value)
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module"):
        ema.update_parameters("model")  # type: ignore[arg-type]
    assert int(ema.steps) == 0


def test_base_class_without_avg_func_is_refused() -> None:
    with pytest.raises(TypeError, match="must define `avg_func`"):
        BaseAveragedModel(_net())
