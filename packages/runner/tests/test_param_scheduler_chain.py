"""Schedulers together: windows, chains, epoch-to-iteration conversion, building from configs."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from camshaft.registry import BuildError, RegistryError
from camshaft.runner._registry import PARAM_SCHEDULERS
from camshaft.runner.optim.scheduler import (
    INF,
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolyLR,
    StepLR,
    build_param_schedulers,
    build_scheduler_from_cfg,
)

MakeOptimizer = Callable[..., torch.optim.Optimizer]
BASES = (0.1, 0.02)


def run(schedulers: list[Any], optimizer: Any, steps: int, key: str = "lr") -> list[list[float]]:
    """The value of every group before each of ``steps`` steps of all ``schedulers``."""
    seen = []
    for _ in range(steps):
        seen.append([group[key] for group in optimizer.param_groups])
        for scheduler in schedulers:
            scheduler.step()
    return seen


def assert_rows_close(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for step, (row, expected) in enumerate(zip(got, want, strict=True)):
        assert row == pytest.approx(expected, rel=1e-9, abs=1e-15), f"step {step}"


def test_a_scheduler_acts_only_inside_its_window(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    seen = run([StepLR(optimizer, step_size=2, gamma=0.5, begin=3, end=10)], optimizer, 14)
    # last_step counts from begin: decays at global steps 5, 7, 9; nothing after end.
    halvings = [0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3]
    assert_rows_close(seen, [[b * 0.5**h for b in BASES] for h in halvings])


def test_warmup_then_cosine_matches_the_hand_computed_schedule(
    make_optimizer: MakeOptimizer,
) -> None:
    optimizer = make_optimizer()
    schedulers = build_param_schedulers(
        optimizer,
        [
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5),
            dict(type="CosineAnnealingLR", by_epoch=False, begin=5, end=100),
        ],
    )
    assert isinstance(schedulers, list)
    seen = run(schedulers, optimizer, 110)

    def factor(t: int) -> float:
        if t < 5:  # linear from 0.1 to 1.0 over steps 0..4
            return 0.1 + 0.9 * t / 4
        t = min(t, 99)  # frozen after the window; T_max defaults to end - begin = 95
        return (1 + math.cos(math.pi * (t - 5) / 95)) / 2

    assert_rows_close(seen, [[b * factor(t) for b in BASES] for t in range(110)])


def test_overlapping_windows_multiply(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    schedulers = [ConstantLR(optimizer, factor=0.5), ExponentialLR(optimizer, 0.9, begin=2, end=6)]
    seen = run(schedulers, optimizer, 9)
    expected = [[b * 0.5 * 0.9 ** min(max(t - 2, 0), 3) for b in BASES] for t in range(9)]
    assert_rows_close(seen, expected)


def test_cosine_restart_follows_each_period(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    scheduler = CosineRestartLR(optimizer, periods=[4, 6], restart_weights=[1, 0.5], eta_min=0.01)
    seen = run([scheduler], optimizer, 13)

    def value(base: float, t: int) -> float:
        start, period, weight = (0, 4, 1.0) if t < 4 else (4, 6, 0.5)
        s = min(t, 9) - start
        return 0.01 + (weight * base - 0.01) * (1 + math.cos(math.pi * s / period)) / 2

    assert_rows_close(seen, [[value(b, t) for b in BASES] for t in range(13)])


# (epoch-based cfg, the iteration-based scheduler it must equal) with epoch_length = 5.
CONVERSIONS: dict[str, tuple[dict[str, Any], Callable[[Any], Any]]] = {
    "StepLR": (
        dict(type="StepLR", step_size=2, begin=1, end=8),
        lambda o: StepLR(o, step_size=10, begin=5, end=40, by_epoch=False),
    ),
    "MultiStepLR": (
        dict(type="MultiStepLR", milestones=[2, 5], end=8),
        lambda o: MultiStepLR(o, milestones=[10, 25], end=40, by_epoch=False),
    ),
    "CosineAnnealingLR": (
        dict(type="CosineAnnealingLR", T_max=6, begin=1, end=7, eta_min=0.001),
        lambda o: CosineAnnealingLR(o, T_max=30, begin=5, end=35, eta_min=0.001, by_epoch=False),
    ),
    "CosineAnnealingLR-default-T_max": (
        dict(type="CosineAnnealingLR", begin=1, end=7),
        lambda o: CosineAnnealingLR(o, T_max=30, begin=5, end=35, by_epoch=False),
    ),
    "CosineRestartLR": (
        dict(type="CosineRestartLR", periods=[2, 3], restart_weights=[1, 0.5], eta_min=0.0),
        lambda o: CosineRestartLR(
            o, periods=[10, 15], restart_weights=[1, 0.5], eta_min=0.0, by_epoch=False
        ),
    ),
    "OneCycleLR": (
        dict(type="OneCycleLR", eta_max=0.3, total_steps=9),
        lambda o: OneCycleLR(o, eta_max=0.3, total_steps=45, by_epoch=False),
    ),
    "LinearLR-fractional-begin": (
        dict(type="LinearLR", start_factor=0.2, begin=0.4, end=3),
        lambda o: LinearLR(o, start_factor=0.2, begin=2, end=15, by_epoch=False),
    ),
    "PolyLR": (
        dict(type="PolyLR", power=2.0, end=6),
        lambda o: PolyLR(o, power=2.0, end=30, by_epoch=False),
    ),
    "ConstantLR": (
        dict(type="ConstantLR", factor=0.25, end=3),
        lambda o: ConstantLR(o, factor=0.25, end=15, by_epoch=False),
    ),
    "ExponentialLR": (
        dict(type="ExponentialLR", gamma=0.5),
        lambda o: ExponentialLR(o, gamma=0.5 ** (1 / 5), by_epoch=False),
    ),
}


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_convert_to_iter_based_equals_the_scaled_iteration_schedule(
    name: str, make_optimizer: MakeOptimizer
) -> None:
    cfg, build_iter = CONVERSIONS[name]
    converted_opt, reference_opt = make_optimizer(), make_optimizer()
    (converted,) = build_param_schedulers(
        converted_opt, [dict(cfg, convert_to_iter_based=True)], epoch_length=5
    )
    assert converted.by_epoch is False
    assert_rows_close(
        run([converted], converted_opt, 45), run([build_iter(reference_opt)], reference_opt, 45)
    )


@pytest.mark.parametrize(
    ("cfg", "per_epoch"),
    [
        (dict(type="StepLR", step_size=2, gamma=0.5), lambda e: 0.5 ** (e // 2)),
        (
            dict(type="MultiStepLR", milestones=[1, 3], gamma=0.1),
            lambda e: 0.1 ** sum(e >= m for m in (1, 3)),
        ),
        (dict(type="ExponentialLR", gamma=0.8), lambda e: 0.8**e),
    ],
)
def test_converted_schedule_agrees_with_the_epoch_schedule_at_epoch_starts(
    cfg: dict[str, Any], per_epoch: Callable[[int], float], make_optimizer: MakeOptimizer
) -> None:
    optimizer = make_optimizer()
    schedulers = build_param_schedulers(
        optimizer, dict(cfg, convert_to_iter_based=True), epoch_length=7
    )
    seen = run(schedulers, optimizer, 7 * 5)
    for epoch in range(5):
        assert seen[7 * epoch] == pytest.approx([b * per_epoch(epoch) for b in BASES])


def test_build_iter_from_epoch_checks_its_arguments(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    with pytest.raises(ValueError, match="epoch_length"):
        StepLR.build_iter_from_epoch(optimizer, step_size=2, epoch_length=0)
    with pytest.raises(ValueError, match="by_epoch=True"):
        StepLR.build_iter_from_epoch(optimizer, step_size=2, by_epoch=False, epoch_length=3)
    with pytest.raises(TypeError, match="by keyword"):
        StepLR.build_iter_from_epoch(optimizer, 2, epoch_length=3)
    built = StepLR.build_iter_from_epoch(optimizer, step_size=2, end=INF, epoch_length=3)
    assert (built.step_size, built.end, built.by_epoch) == (6, INF, False)


def test_missing_end_defaults_to_the_length_of_training(make_optimizer: MakeOptimizer) -> None:
    cfgs = [
        dict(type="CosineAnnealingLR", by_epoch=True),
        dict(type="LinearLR", by_epoch=False),
        dict(type="CosineAnnealingLR", convert_to_iter_based=True),
    ]
    original = copy.deepcopy(cfgs)
    schedulers = build_param_schedulers(
        make_optimizer(), cfgs, epoch_length=10, max_epochs=12, max_iters=300
    )
    assert isinstance(schedulers, list)
    assert [s.end for s in schedulers] == [12, 300, 120]
    assert schedulers[0].T_max == 12
    assert cfgs == original  # the caller's configs are untouched


def test_build_accepts_one_dict_none_classes_and_built_schedulers(
    make_optimizer: MakeOptimizer,
) -> None:
    optimizer = make_optimizer()
    assert build_param_schedulers(optimizer, None) == []
    (one,) = build_param_schedulers(optimizer, dict(type=StepLR, step_size=3))
    assert isinstance(one, StepLR)
    built = ExponentialLR(optimizer, gamma=0.9)
    assert build_param_schedulers(optimizer, [built])[0] is built


@pytest.mark.parametrize("convert", [False, True])
def test_an_unknown_type_suggests_the_closest_names(
    convert: bool, make_optimizer: MakeOptimizer
) -> None:
    cfg = dict(type="CosineAnealingLR", convert_to_iter_based=convert)
    with pytest.raises(RegistryError, match="'CosineAnnealingLR'"):
        build_param_schedulers(make_optimizer(), [cfg], epoch_length=4)


def test_bad_configs_are_named(make_optimizer: MakeOptimizer) -> None:
    optimizer = make_optimizer()
    with pytest.raises(ValueError, match="epoch_length"):
        build_param_schedulers(
            optimizer, [dict(type="StepLR", step_size=1, convert_to_iter_based=True)]
        )
    with pytest.raises(BuildError, match="epoch-based"):
        build_param_schedulers(
            optimizer,
            [dict(type="StepLR", step_size=1, by_epoch=False, convert_to_iter_based=True)],
            epoch_length=4,
        )
    with pytest.raises(TypeError, match=r"param_scheduler\[1\]"):
        build_param_schedulers(optimizer, [dict(type="StepLR", step_size=1), "StepLR"])
    with pytest.raises(TypeError, match="convert_to_iter_based"):
        build_param_schedulers(
            optimizer, [dict(type="StepLR", step_size=1, convert_to_iter_based="yes")]
        )


def test_registry_build_func_passes_epoch_length_only_to_conversions(
    make_optimizer: MakeOptimizer,
) -> None:
    optimizer = make_optimizer()
    defaults = dict(optimizer=optimizer, epoch_length=4)
    plain = build_scheduler_from_cfg(dict(type="StepLR", step_size=2), PARAM_SCHEDULERS, defaults)
    converted = build_scheduler_from_cfg(
        dict(type="StepLR", step_size=2, convert_to_iter_based=True), PARAM_SCHEDULERS, defaults
    )
    assert (plain.step_size, converted.step_size) == (2, 8)
    assert defaults == dict(optimizer=optimizer, epoch_length=4)


def test_one_cycle_refuses_to_run_past_its_cycle(make_optimizer: MakeOptimizer) -> None:
    scheduler = OneCycleLR(make_optimizer(), eta_max=0.5, total_steps=5)
    for _ in range(5):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps=5"):
        scheduler.step()


def _two_wrappers() -> Any:
    from camshaft.runner.optim import OptimWrapper, OptimWrapperDict

    def wrapper(lr: float) -> OptimWrapper:
        return OptimWrapper(torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=lr))

    return OptimWrapperDict(generator=wrapper(0.1), discriminator=wrapper(0.4))


def test_an_optim_wrapper_dict_gets_one_list_per_wrapper() -> None:
    wrappers = _two_wrappers()
    shared = build_param_schedulers(wrappers, [dict(type="StepLR", step_size=1, gamma=0.5)])
    assert isinstance(shared, dict)
    assert sorted(shared) == ["discriminator", "generator"]
    for name in shared:
        shared[name][0].step()
    assert wrappers["generator"].param_groups[0]["lr"] == pytest.approx(0.05)
    assert wrappers["discriminator"].param_groups[0]["lr"] == pytest.approx(0.2)

    wrappers = _two_wrappers()
    per_name = build_param_schedulers(
        wrappers, dict(generator=[dict(type="ExponentialLR", gamma=0.9)])
    )
    assert isinstance(per_name, dict)
    assert [type(s).__name__ for s in per_name["generator"]] == ["ExponentialLR"]
    assert per_name["discriminator"] == []


def test_an_optim_wrapper_dict_config_must_name_its_wrappers() -> None:
    wrappers = _two_wrappers()
    with pytest.raises(ValueError, match="critic"):
        build_param_schedulers(wrappers, dict(critic=[dict(type="StepLR", step_size=1)]))
    built = StepLR(wrappers["generator"], step_size=1)
    with pytest.raises(TypeError, match="one optimizer"):
        build_param_schedulers(wrappers, [built])
