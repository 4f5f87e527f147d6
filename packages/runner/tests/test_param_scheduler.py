"""Parameter schedulers on their own: parity with torch, momentum, state, bad input."""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler as torch_sched

from camshaft.registry import BuildError
from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim import scheduler as sched
from camshaft.runner.optim.scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    LinearMomentum,
    MultiStepLR,
    OneCycleLR,
    PolyLR,
    StepLR,
    StepMomentum,
    build_param_schedulers,
)

STEPS = 30
MakeOptimizer = Callable[..., torch.optim.Optimizer]


def run_ours(schedulers: list[Any], optimizer: Any, steps: int = STEPS, key: str = "lr") -> list:
    """The value of every group before each of ``steps`` steps of all ``schedulers``."""
    seen = []
    for _ in range(steps):
        seen.append([group[key] for group in optimizer.param_groups])
        for scheduler in schedulers:
            scheduler.step()
    return seen


def flat(rows: list[list[float]]) -> list[float]:
    return [value for row in rows for value in row]


def run_torch(scheduler: Any, optimizer: torch.optim.Optimizer, steps: int = STEPS) -> list:
    seen = []
    for _ in range(steps):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


# (ours, torch) on the same optimizer settings; windows ending at E match total_iters=E-1.
PARITY: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "LinearLR": (
        lambda o: LinearLR(o, start_factor=0.25, end_factor=1.0, end=11),
        lambda o: torch_sched.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=10),
    ),
    "LinearLR-decay": (
        lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, end=21),
        lambda o: torch_sched.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=20),
    ),
    "ConstantLR": (
        lambda o: ConstantLR(o, factor=0.5, end=8),
        lambda o: torch_sched.ConstantLR(o, factor=0.5, total_iters=7),
    ),
    "StepLR": (
        lambda o: StepLR(o, step_size=4, gamma=0.5),
        lambda o: torch_sched.StepLR(o, step_size=4, gamma=0.5),
    ),
    "MultiStepLR": (
        lambda o: MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
        lambda o: torch_sched.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
    ),
    "ExponentialLR": (
        lambda o: ExponentialLR(o, gamma=0.9),
        lambda o: torch_sched.ExponentialLR(o, gamma=0.9),
    ),
    "CosineAnnealingLR": (  # 30 steps with T_max=10 go down, up and down again
        lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        lambda o: torch_sched.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    ),
    "PolyLR": (
        lambda o: PolyLR(o, power=2.0, end=21),
        lambda o: torch_sched.PolynomialLR(o, total_iters=20, power=2.0),
    ),
    "OneCycleLR": (
        lambda o: OneCycleLR(o, eta_max=[0.5, 0.2], total_steps=STEPS),
        lambda o: torch_sched.OneCycleLR(
            o, max_lr=[0.5, 0.2], total_steps=STEPS, cycle_momentum=False
        ),
    ),
    "OneCycleLR-linear-3phase": (
        lambda o: OneCycleLR(
            o, eta_max=0.5, total_steps=STEPS, anneal_strategy="linear", three_phase=True
        ),
        lambda o: torch_sched.OneCycleLR(
            o,
            max_lr=0.5,
            total_steps=STEPS,
            anneal_strategy="linear",
            three_phase=True,
            cycle_momentum=False,
        ),
    ),
}


@pytest.mark.parametrize("name", list(PARITY))
def test_lr_sequence_matches_torch(name: str, make_optimizer: MakeOptimizer) -> None:
    build_ours, build_torch = PARITY[name]
    ours_opt, torch_opt = make_optimizer(), make_optimizer()
    ours = run_ours([build_ours(ours_opt)], ours_opt)
    expected = run_torch(build_torch(torch_opt), torch_opt)
    for step, (got, want) in enumerate(zip(ours, expected, strict=True)):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), f"step {step}"


def test_cosine_recursive_form_matches_the_closed_form(make_optimizer: MakeOptimizer) -> None:
    # Both camshaft and torch step the recursive form; alone, it is the closed form.
    optimizer = make_optimizer()
    t_max, eta_min = 25, 0.001
    seen = run_ours([CosineAnnealingLR(optimizer, T_max=t_max, eta_min=eta_min)], optimizer)
    for t, values in enumerate(seen):
        for base, value in zip((0.1, 0.02), values, strict=True):
            closed = eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
            assert value == pytest.approx(closed, rel=1e-10)


def test_cosine_eta_min_ratio_is_relative_to_each_group(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    seen = run_ours([CosineAnnealingLR(optimizer, T_max=10, eta_min_ratio=0.1)], optimizer, 11)
    assert seen[10] == pytest.approx([0.01, 0.002])


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "PolyLR", "LinearLR"])
def test_momentum_on_sgd_follows_the_same_schedule(
    name: str, make_optimizer: MakeOptimizer
) -> None:
    # A momentum scheduler on momentum=0.9 gives the lr sequence of a base lr of 0.9.
    momentum_cls = getattr(sched, name.replace("LR", "Momentum"))
    kwargs = {
        "StepLR": dict(step_size=3, gamma=0.5),
        "CosineAnnealingLR": dict(T_max=12, eta_min=0.5),
        "PolyLR": dict(eta_min=0.5, end=15),
        "LinearLR": dict(start_factor=0.5, end=6),
    }[name]
    sgd = make_optimizer("sgd")
    reference = make_optimizer("sgd", lrs=(0.9, 0.9))
    momenta = run_ours([momentum_cls(sgd, **kwargs)], sgd, key="momentum")
    lrs = run_ours([getattr(sched, name)(reference, **kwargs)], reference)
    assert flat(momenta) == pytest.approx(flat(lrs), rel=1e-12)
    assert sgd.param_groups[0]["lr"] == 0.1  # the learning rate is left alone


def test_momentum_on_adam_schedules_beta1(make_optimizer: MakeOptimizer) -> None:
    adam = make_optimizer("adam")
    scheduler = StepMomentum(adam, step_size=2, gamma=0.5)
    seen = []
    for _ in range(6):
        seen.append(adam.param_groups[0]["betas"])
        assert adam.param_groups[1]["momentum"] == adam.param_groups[1]["betas"][0]
        adam.param_groups[0]["params"][0].grad = torch.ones(2)
        adam.step()  # the tuple it reads stays valid
        scheduler.step()
    beta1 = [0.9, 0.9, 0.45, 0.45, 0.225, 0.225]
    assert seen == [(b, 0.999) for b in beta1]
    assert adam.param_groups[0]["initial_momentum"] == 0.9


def test_momentum_chain_on_adam(make_optimizer: MakeOptimizer) -> None:
    adam = make_optimizer("adam")
    schedulers = [
        LinearMomentum(adam, start_factor=0.5, begin=0, end=3),
        sched.CosineAnnealingMomentum(adam, eta_min=0.45, begin=3, end=8),
    ]
    beta1 = [v[0] for v in run_ours(schedulers, adam, 9, key="momentum")]
    betas = adam.param_groups[0]["betas"]
    cosine = [0.45 + 0.45 * (1 + math.cos(math.pi * t / 5)) / 2 for t in range(5)]
    assert beta1 == pytest.approx([0.45, 0.675, 0.9, *cosine, cosine[-1]])
    assert betas == (pytest.approx(cosine[-1]), 0.999)


def test_momentum_needs_an_optimizer_with_momentum(make_optimizer: MakeOptimizer) -> None:
    with pytest.raises(ValueError, match="neither") as info:
        StepMomentum(make_optimizer("adagrad"), step_size=2)
    assert "Adagrad" in str(info.value)


@pytest.mark.parametrize(("begin", "end"), [(5, 5), (7, 5)])
def test_begin_not_before_end_is_refused(
    begin: int, end: int, make_optimizer: MakeOptimizer
) -> None:
    with pytest.raises(ValueError, match=f"begin={begin}, end={end}"):
        LinearLR(make_optimizer(), begin=begin, end=end)
    cfg = dict(type="CosineAnnealingLR", begin=begin, end=end)
    with pytest.raises(BuildError, match=f"begin={begin}, end={end}") as info:
        build_param_schedulers(make_optimizer(), [cfg])
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (lambda o: LinearLR(o, start_factor=0), ValueError, "start_factor"),
        (lambda o: LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
        (lambda o: ConstantLR(o, factor=0), ValueError, "factor"),
        (lambda o: StepLR(o, step_size=0), ValueError, "step_size"),
        (lambda o: StepLR(o, step_size=2.5), TypeError, "step_size"),
        (lambda o: ExponentialLR(o, gamma=-0.5), ValueError, "gamma"),
        (lambda o: MultiStepLR(o, milestones=[2, "4"]), TypeError, "milestones"),
        (lambda o: PolyLR(o, power=0), ValueError, "power"),
        (lambda o: CosineAnnealingLR(o, eta_min=0, eta_min_ratio=0.1), ValueError, "not both"),
        (lambda o: CosineRestartLR(o, periods=[5, 5]), ValueError, "restart_weights"),
        (lambda o: OneCycleLR(o, total_steps=10), ValueError, "eta_max"),
        (lambda o: OneCycleLR(o, eta_max=[1.0], total_steps=10), ValueError, "param groups"),
        (lambda o: OneCycleLR(o, eta_max=1.0, anneal_strategy="exp"), ValueError, "cos"),
        (lambda o: OneCycleLR(o, eta_max=1.0, total_steps=5, end=20), ValueError, "total_steps"),
        (lambda o: sched.OneCycleParamScheduler(o, "momentum", 1.0), ValueError, "only 'lr'"),
        (lambda o: LinearLR(o, last_step=-2), ValueError, "last_step"),
        (lambda o: LinearLR(o, last_step=3), KeyError, "initial_lr"),
        (lambda o: LinearLR(o, begin=-1), ValueError, "begin"),
        (lambda o: LinearLR(o, end=5.5), TypeError, "end"),
        (lambda o: sched.LinearParamScheduler(o, "nesterov_lr"), KeyError, "nesterov_lr"),
    ],
)
def test_bad_arguments_are_named(
    build: Callable[[Any], Any], error: type[Exception], words: str, make_optimizer: MakeOptimizer
) -> None:
    with pytest.raises(error, match=words):
        build(make_optimizer())


def test_an_object_without_param_groups_is_refused() -> None:
    with pytest.raises(TypeError, match="param_groups"):
        StepLR(object(), step_size=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="OptimWrapperDict"):
        StepLR({"g": None}, step_size=2)  # type: ignore[arg-type]


RESUMABLE: dict[str, Callable[[Any], Any]] = {
    "LinearLR": lambda o: LinearLR(o, start_factor=0.1, end=12),
    "ConstantLR": lambda o: ConstantLR(o, factor=0.2, end=9),
    "StepLR": lambda o: StepLR(o, step_size=3),
    "MultiStepLR": lambda o: MultiStepLR(o, milestones=[4, 9, 15]),
    "ExponentialLR": lambda o: ExponentialLR(o, gamma=0.8),
    "CosineAnnealingLR": lambda o: CosineAnnealingLR(o, T_max=14, begin=2),
    "PolyLR": lambda o: PolyLR(o, power=1.5, end=18),
    "OneCycleLR": lambda o: OneCycleLR(o, eta_max=0.4, total_steps=25),
    "CosineRestartLR": lambda o: CosineRestartLR(o, periods=[6, 8], restart_weights=[1, 0.5]),
    "LinearMomentum": lambda o: LinearMomentum(o, start_factor=0.5, end=10),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_state_dict_round_trip_resumes_the_same_sequence(
    name: str, kind: str, make_optimizer: MakeOptimizer
) -> None:
    build = RESUMABLE[name]
    key = "momentum" if "Momentum" in name else "lr"
    straight_opt = make_optimizer(kind)
    straight = run_ours([build(straight_opt)], straight_opt, 22, key=key)

    first_opt = make_optimizer(kind)
    first = build(first_opt)
    head = run_ours([first], first_opt, 7, key=key)
    buffer = io.BytesIO()
    torch.save({"optimizer": first_opt.state_dict(), "scheduler": first.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)  # plain types only

    resumed_opt = make_optimizer(kind)
    resumed = build(resumed_opt)  # a fresh scheduler moves the fresh optimizer's values...
    resumed_opt.load_state_dict(checkpoint["optimizer"])  # ...which the checkpoint restores
    resumed.load_state_dict(checkpoint["scheduler"])
    tail = run_ours([resumed], resumed_opt, 15, key=key)
    assert head + tail == straight


def test_state_dict_is_a_copy_without_the_optimizer(make_optimizer: MakeOptimizer) -> None:
    scheduler = MultiStepLR(make_optimizer(), milestones=[2, 2, 5])
    state = scheduler.state_dict()
    assert "optimizer" not in state
    assert state["milestones"] == {2: 2, 5: 1}
    assert type(state["milestones"]) is dict
    state["base_values"].append(99.0)
    assert scheduler.base_values == [0.1, 0.02]


def test_load_state_dict_checks_what_it_is_given(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    scheduler = StepLR(optimizer, step_size=2)
    with pytest.raises(TypeError, match="mapping"):
        scheduler.load_state_dict([1, 2])  # type: ignore[arg-type]
    momentum_state = StepMomentum(optimizer, step_size=2).state_dict()
    with pytest.raises(ValueError, match="'momentum'"):
        scheduler.load_state_dict(momentum_state)
    with pytest.warns(UserWarning, match="anneal_func"):
        scheduler.load_state_dict({**scheduler.state_dict(), "anneal_func": None})


def test_get_last_value_and_window_counters(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5, begin=3)
    assert scheduler.get_last_value() == [0.1, 0.02]
    assert scheduler.last_step == -1  # global step 0 lies before the window
    for _ in range(5):
        scheduler.step()
    assert scheduler.last_step == 2
    assert scheduler.get_last_value() == pytest.approx([0.05, 0.01])


def test_verbose_logs_each_value(make_optimizer: MakeOptimizer, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="camshaft.runner.optim.scheduler"):
        StepLR(make_optimizer(), step_size=2, verbose=True)
    assert "lr of group 1 set to 2.0000e-02" in caplog.text


def test_works_on_an_optim_wrapper() -> None:
    from camshaft.runner.optim import OptimWrapper

    model = torch.nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=0.1))
    schedulers = [StepLR(wrapper, step_size=2), StepMomentum(wrapper, step_size=3, gamma=0.5)]
    run_ours(schedulers, wrapper, 4)
    assert wrapper.param_groups[0]["lr"] == pytest.approx(0.001)  # decayed at steps 2 and 4
    assert wrapper.optimizer.param_groups[0]["betas"] == (0.45, 0.999)


# Each registered name, with the arguments it needs.
REQUIRED: dict[str, dict[str, Any]] = {
    "Step": dict(step_size=2),
    "MultiStep": dict(milestones=[2]),
    "Exponential": dict(gamma=0.9),
    "CosineRestart": dict(periods=[5]),
    "OneCycle": dict(eta_max=0.5, total_steps=10),
}


@pytest.mark.parametrize(
    "name",
    [n for n in sched.__all__ if n.endswith(("LR", "Momentum", "ParamScheduler")) and n[0] != "_"],
)
def test_every_scheduler_builds_from_the_registry(name: str, make_optimizer: MakeOptimizer) -> None:
    stem = name.removesuffix("LR").removesuffix("Momentum").removesuffix("ParamScheduler")
    cfg: dict[str, Any] = dict(type=name, **REQUIRED.get(stem, {}))
    if name.endswith("ParamScheduler"):
        cfg["param_name"] = "lr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler = PARAM_SCHEDULERS.build(cfg, default_args=dict(optimizer=make_optimizer()))
    assert type(scheduler).__name__ == name
    assert PARAM_SCHEDULERS.get(name) is getattr(sched, name)


def test_bad_arguments_leave_the_optimizer_untouched(make_optimizer: MakeOptimizer) -> None:
    adam = make_optimizer("adam")
    before = [dict(group) for group in adam.param_groups]
    with pytest.raises(ValueError, match="start_factor"):
        LinearMomentum(adam, start_factor=0)
    with pytest.raises(ValueError, match="begin=4, end=2"):
        OneCycleLR(adam, eta_max=1.0, begin=4, end=2)
    sgd = make_optimizer()
    del sgd.param_groups[1]["momentum"]
    with pytest.raises(KeyError, match=r"param_groups\[1\]"):
        StepMomentum(sgd, step_size=2)
    assert [dict(group) for group in adam.param_groups] == before
    assert "initial_momentum" not in sgd.param_groups[0]


class ParamGroupsOnly:
    """The least a scheduler accepts: an object with a list of param groups."""

    def __init__(self, groups: list[dict[str, Any]]) -> None:
        self.param_groups = groups


def test_any_object_with_param_groups_can_be_scheduled() -> None:
    holder = ParamGroupsOnly([{"lr": 1.0, "betas": (0.8, 0.99)}])
    run_ours([StepLR(holder, step_size=1, gamma=0.5), StepMomentum(holder, step_size=2)], holder, 3)
    assert holder.param_groups[0]["lr"] == 0.125
    assert holder.param_groups[0]["betas"] == (pytest.approx(0.08), 0.99)
