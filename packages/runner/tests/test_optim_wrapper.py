"""OptimWrapper: accumulation schedule, equivalence to a big batch, no_sync, clipping, bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camshaft.model import BaseModel, OptimWrapperProtocol
from camshaft.runner.optim import OptimWrapper


class RecordingWrapper(OptimWrapper):
    """Records the loss each backward receives, relative to the loss handed in (1.0)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backward_losses: list[float] = []

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        self.backward_losses.append(float(loss.detach()))
        super().backward(loss, **kwargs)


def _run_schedule(accumulative_counts: int, max_counts: int | None, iters: int):
    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    steps: list[int] = []
    optimizer.register_step_post_hook(lambda *_: steps.append(len(wrapper.backward_losses)))
    wrapper = RecordingWrapper(optimizer, accumulative_counts=accumulative_counts)
    if max_counts is not None:
        wrapper.initialize_count_status(nn.Linear(1, 1), 0, max_counts)
    for _ in range(iters):
        wrapper.update_params(weight.sum() * 0 + 1.0)
    divisors = [round(1 / loss, 6) for loss in wrapper.backward_losses]
    return divisors, steps


# --- the accumulation schedule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "max_counts", "iters", "divisors", "steps"),
    [
        (3, 10, 10, [3] * 9 + [1], [3, 6, 9, 10]),  # the documented case
        (4, 10, 10, [4] * 8 + [2, 2], [4, 8, 10]),  # the last window divides by its length
        (3, 9, 9, [3] * 9, [3, 6, 9]),  # divisible: all windows full
        (3, None, 10, [3] * 10, [3, 6, 9]),  # max_counts unknown: full windows only
        (1, 10, 4, [1] * 4, [1, 2, 3, 4]),  # no accumulation
    ],
)
def test_accumulation_divides_the_loss_and_steps_when_each_window_closes(
    counts: int, max_counts: int | None, iters: int, divisors: list[int], steps: list[int]
) -> None:
    assert _run_schedule(counts, max_counts, iters) == (divisors, steps)


def test_resume_mid_run_keeps_windows_aligned_to_the_absolute_count() -> None:
    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    steps: list[int] = []
    optimizer.register_step_post_hook(lambda *_: steps.append(wrapper.inner_count))
    wrapper = RecordingWrapper(optimizer, accumulative_counts=3)
    wrapper.initialize_count_status(nn.Linear(1, 1), 6, 10)
    for _ in range(4):
        wrapper.update_params(weight.sum() * 0 + 1.0)
    assert [round(1 / loss) for loss in wrapper.backward_losses] == [3, 3, 3, 1]
    assert steps == [9, 10]


def test_accumulated_micro_batches_give_the_update_of_one_combined_batch(
    regression_data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    inputs, targets = regression_data  # 10 micro-batches of 2 samples
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    reference = copy.deepcopy(model)

    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), accumulative_counts=3
    )
    wrapper.initialize_count_status(model, 0, 10)
    for i in range(10):
        batch = slice(2 * i, 2 * i + 2)
        with wrapper.optim_context(model):
            loss = F.mse_loss(model(inputs[batch]), targets[batch])
        wrapper.update_params(loss)

    # The same updates by hand: combined batches of 6, 6, 6 and (the last window) 2.
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for start, stop in [(0, 6), (6, 12), (12, 18), (18, 20)]:
        F.mse_loss(reference(inputs[start:stop]), targets[start:stop]).backward()
        optimizer.step()
        optimizer.zero_grad()

    for got, expected in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert all(param.grad is None or not param.grad.any() for param in model.parameters())


# --- optim_context and no_sync ---------------------------------------------------------


def test_no_sync_is_entered_exactly_on_micro_steps_that_do_not_step(no_sync_model: Any) -> None:
    wrapper = OptimWrapper(
        torch.optim.SGD(no_sync_model.parameters(), lr=0.1), accumulative_counts=3
    )
    wrapper.initialize_count_status(no_sync_model, 0, 10)
    for _ in range(10):
        with wrapper.optim_context(no_sync_model):
            loss = no_sync_model(torch.ones(2, 3)).mean()
        wrapper.update_params(loss)
    skipped = [i + 1 for i, inside in enumerate(no_sync_model.forwards_in_no_sync) if inside]
    assert skipped == [1, 2, 4, 5, 7, 8]  # steps after 3, 6, 9 and 10 sync


def test_no_sync_is_never_entered_without_accumulation(no_sync_model: Any) -> None:
    wrapper = OptimWrapper(torch.optim.SGD(no_sync_model.parameters(), lr=0.1))
    for _ in range(3):
        with wrapper.optim_context(no_sync_model):
            loss = no_sync_model(torch.ones(2, 3)).mean()
        wrapper.update_params(loss)
    assert no_sync_model.forwards_in_no_sync == [False, False, False]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_no_sync_of_a_real_ddp_model_skips_gradient_sync(tmp_path: Any) -> None:
    if torch.distributed.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        ddp = nn.parallel.DistributedDataParallel(nn.Linear(3, 1))
        wrapper = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1), accumulative_counts=2)
        syncing = []
        for _ in range(4):
            with wrapper.optim_context(ddp):
                syncing.append(ddp.require_backward_grad_sync)
                loss = ddp(torch.ones(2, 3)).mean()
            wrapper.update_params(loss)
        assert syncing == [False, True, False, True]
    finally:
        torch.distributed.destroy_process_group()


# --- clipping ----------------------------------------------------------------------------


def _clip_once(clip_grad: dict[str, Any], grad: list[float]) -> tuple[OptimWrapper, torch.Tensor]:
    """One update whose gradient is exactly ``grad``; returns the gradient the step saw."""
    weight = nn.Parameter(torch.zeros(len(grad)))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    seen: list[torch.Tensor] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append(weight.grad.clone()))
    wrapper = OptimWrapper(optimizer, clip_grad=clip_grad)
    wrapper.update_params((weight * torch.tensor(grad)).sum())
    return wrapper, seen[0]


def test_clip_by_norm_rescales_and_reports_the_norm_before_and_after() -> None:
    wrapper, applied = _clip_once(dict(max_norm=1.0), [3.0, 4.0, 0.0])
    assert isinstance(wrapper.grad_norm, torch.Tensor)
    assert isinstance(wrapper.clipped_grad_norm, torch.Tensor)
    torch.testing.assert_close(wrapper.grad_norm, torch.tensor(5.0))
    torch.testing.assert_close(wrapper.clipped_grad_norm, torch.tensor(1.0))
    torch.testing.assert_close(applied, torch.tensor([0.6, 0.8, 0.0]))
    torch.testing.assert_close(wrapper.clipped_grad_norm, torch.linalg.vector_norm(applied))


def test_clip_by_norm_leaves_small_gradients_alone() -> None:
    wrapper, applied = _clip_once(dict(type="norm", max_norm=10, norm_type=2), [3.0, 4.0])
    torch.testing.assert_close(applied, torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(wrapper.clipped_grad_norm, wrapper.grad_norm)


def test_clip_by_inf_norm() -> None:
    wrapper, applied = _clip_once(dict(max_norm=2.0, norm_type="inf"), [1.0, -4.0])
    torch.testing.assert_close(wrapper.grad_norm, torch.tensor(4.0))
    torch.testing.assert_close(applied, torch.tensor([0.5, -2.0]), atol=1e-5, rtol=1e-5)


def test_clip_by_value_clamps_each_element_and_reports_norms() -> None:
    wrapper, applied = _clip_once(dict(type="value", clip_value=1.0), [3.0, -4.0, 0.5])
    torch.testing.assert_close(applied, torch.tensor([1.0, -1.0, 0.5]))
    torch.testing.assert_close(
        wrapper.grad_norm, torch.linalg.vector_norm(torch.tensor([3.0, -4.0, 0.5]))
    )
    torch.testing.assert_close(wrapper.clipped_grad_norm, torch.tensor(1.5))


def test_grad_norms_are_none_until_a_clipped_step() -> None:
    weight = nn.Parameter(torch.zeros(2))
    wrapper = OptimWrapper(torch.optim.SGD([weight], lr=0.1), 2, clip_grad=dict(max_norm=1.0))
    assert wrapper.grad_norm is None
    assert wrapper.clipped_grad_norm is None
    wrapper.update_params(weight.sum())  # first micro-step of the window: no step yet
    assert wrapper.grad_norm is None
    wrapper.update_params(weight.sum())
    torch.testing.assert_close(wrapper.grad_norm, torch.tensor(2.0**0.5))


def test_the_clip_grad_dict_is_never_mutated() -> None:
    clip_grad = dict(type="value", clip_value=0.5)
    before = copy.deepcopy(clip_grad)
    wrapper, _ = _clip_once(clip_grad, [1.0, 2.0])
    assert clip_grad == before
    assert wrapper.clip_grad_kwargs == {"clip_value": 0.5}
    wrapper.clip_grad_kwargs["clip_value"] = 9  # a copy: the wrapper is unaffected
    assert wrapper.clip_grad_kwargs == {"clip_value": 0.5}


# --- the rest of the interface ---------------------------------------------------------


def test_step_and_zero_kwargs_reach_the_optimizer() -> None:
    weight = nn.Parameter(torch.ones(2))
    wrapper = OptimWrapper(torch.optim.SGD([weight], lr=0.1))
    closure_calls: list[int] = []

    def closure() -> torch.Tensor:
        closure_calls.append(1)
        return torch.zeros(())

    wrapper.update_params(
        weight.sum(), step_kwargs=dict(closure=closure), zero_kwargs=dict(set_to_none=False)
    )
    assert closure_calls == [1]
    assert weight.grad is not None
    assert not weight.grad.any()


@pytest.mark.parametrize("method", ["backward", "step", "zero_grad", "scale_loss", "should_update"])
def test_update_params_calls_each_overridden_method(method: str) -> None:
    """Without accumulation update_params runs the base bodies inline; overrides still run."""
    calls: list[str] = []

    def recording(name: str) -> Any:
        def method_override(self: OptimWrapper, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return getattr(OptimWrapper, name)(self, *args, **kwargs)

        return method_override

    subclass = type("Recording", (OptimWrapper,), {method: recording(method)})
    weight = nn.Parameter(torch.ones(2))
    wrapper = subclass(torch.optim.SGD([weight], lr=0.5))
    wrapper.update_params((weight * weight).sum())
    assert calls == [method]
    assert torch.equal(weight.detach(), torch.zeros(2))  # 1 - 0.5 * 2
    assert weight.grad is None  # zeroed (set to None) after the step
    assert wrapper.inner_count == 1


def test_get_lr_and_get_momentum_read_every_param_group() -> None:
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    sgd = OptimWrapper(
        torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    )
    assert sgd.get_lr() == {"lr": [0.1, 0.5]}
    assert sgd.get_momentum() == {"momentum": [0.9, 0.9]}
    adam = OptimWrapper(torch.optim.Adam([a], lr=1e-3, betas=(0.8, 0.99)))
    assert adam.get_momentum() == {"momentum": [0.8]}
    adagrad = OptimWrapper(torch.optim.Adagrad([a], lr=1e-2))
    assert adagrad.get_momentum() == {"momentum": [0]}
    assert sgd.param_groups is sgd.optimizer.param_groups
    assert sgd.defaults["lr"] == 0.1


def test_state_dict_round_trip(regression_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    inputs, targets = regression_data
    model = nn.Linear(3, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for _ in range(3):
        wrapper.update_params(F.mse_loss(model(inputs), targets))
    state = wrapper.state_dict()
    fresh = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.0))
    fresh.load_state_dict(copy.deepcopy(state))
    assert fresh.get_lr() == {"lr": [0.1]}
    assert fresh.get_momentum() == {"momentum": [0.9]}
    for param in model.parameters():
        torch.testing.assert_close(
            fresh.optimizer.state[param]["momentum_buffer"],
            wrapper.optimizer.state[param]["momentum_buffer"],
        )


def test_it_drives_base_model_train_step() -> None:
    class Regressor(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 1)

        def forward(self, inputs: Any, targets: Any = None, mode: str = "tensor") -> Any:
            out = self.linear(inputs)
            return {"loss": F.mse_loss(out, targets)} if mode == "loss" else out

    model = Regressor()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(wrapper, OptimWrapperProtocol)
    before = model.linear.weight.detach().clone()
    log_vars = model.train_step({"inputs": torch.ones(4, 3), "targets": torch.zeros(4, 1)}, wrapper)
    assert "loss" in log_vars
    assert not torch.equal(model.linear.weight, before)


# --- warnings and bad input ------------------------------------------------------------


def test_resuming_mid_window_and_batchnorm_accumulation_are_warned() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=4)
    with pytest.warns(UserWarning, match="not a multiple of accumulative_counts=4"):
        wrapper.initialize_count_status(nn.Linear(1, 1), 5, 20)
    with pytest.warns(UserWarning, match="BatchNorm"):
        wrapper.initialize_count_status(model, 0, 20)


@pytest.mark.parametrize("counts", [0, -1, 1.5, True, "2", None])
def test_accumulative_counts_must_be_a_positive_int(counts: Any) -> None:
    with pytest.raises(ValueError, match=r"`accumulative_counts` must be an int >= 1, got"):
        OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), counts)


@pytest.mark.parametrize("clip_grad", ["norm", 1.0, [("max_norm", 1.0)]])
def test_clip_grad_must_be_a_dict(clip_grad: Any) -> None:
    with pytest.raises(TypeError, match=r"`clip_grad` must be a dict or None, got"):
        OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), clip_grad=clip_grad)


@pytest.mark.parametrize(
    ("clip_grad", "match"),
    [
        (
            dict(type="l2", max_norm=1.0),
            r"`clip_grad\['type'\]` must be 'norm' or 'value', got 'l2'",
        ),
        (dict(max_norm=1.0, clip_value=1.0), r"keys \['clip_value'\] that 'norm' clipping"),
        (dict(type="value", max_norm=1.0), r"keys \['max_norm'\] that 'value' clipping"),
        ({}, r"'norm' clipping needs 'max_norm'"),
        (dict(type="value"), r"'value' clipping needs 'clip_value'"),
        (dict(max_norm=-1), r"`clip_grad\['max_norm'\]` must be a positive number, got -1"),
        (dict(max_norm=1.0, norm_type=0), r"`clip_grad\['norm_type'\]` must be a positive"),
    ],
)
def test_bad_clip_grad_dicts_are_refused_at_construction(
    clip_grad: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), clip_grad=clip_grad)


def test_optimizer_must_be_a_built_optimizer() -> None:
    with pytest.raises(TypeError, match=r"`optimizer` must be a torch.optim.Optimizer.*HINT"):
        OptimWrapper(dict(type="SGD", lr=0.1))  # type: ignore[arg-type]


def test_update_params_refuses_a_loss_that_is_not_a_tensor() -> None:
    wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    with pytest.raises(TypeError, match=r"`loss` must be a scalar torch.Tensor, got dict"):
        wrapper.update_params({"loss": torch.zeros(())})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("init_counts", "max_counts", "match"),
    [
        (-1, 10, "`init_counts` must be an int >= 0"),
        (5, 3, "`max_counts` must be an int >= 5"),
        (0, 0, "`max_counts` must be an int >= 1"),
        (0, 2.5, "`max_counts`"),
    ],
)
def test_initialize_count_status_checks_its_counts(
    init_counts: Any, max_counts: Any, match: str
) -> None:
    wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    with pytest.raises(ValueError, match=match):
        wrapper.initialize_count_status(nn.Linear(1, 1), init_counts, max_counts)
