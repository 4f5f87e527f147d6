"""The initializer classes: descriptions, registry names, layer matching, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from camshaft.init import (
    WEIGHT_INITIALIZERS,
    BaseInit,
    Caffe2XavierInit,
    ConstantInit,
    KaimingInit,
    NormalInit,
    TruncNormalInit,
    UniformInit,
    XavierInit,
    bias_init_with_prob,
)


class MyConv(nn.Conv2d):
    """A direct subclass: matches 'Conv2d'."""


class Deeper(MyConv):
    """A grandchild of Conv2d: matches 'MyConv', not 'Conv2d'."""


# The exact lines the seeds' init logs print.
DESCRIPTIONS = [
    (
        KaimingInit(),
        "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0",
    ),
    (XavierInit(), "XavierInit: gain=1, distribution=normal, bias=0"),
    (ConstantInit(val=1), "ConstantInit: val=1, bias=0"),
    (NormalInit(), "NormalInit: mean=0, std=1, bias=0"),
    (TruncNormalInit(), "TruncNormalInit: a=-2, b=2, mean=0, std=1, bias=0"),
    (UniformInit(), "UniformInit: a=0, b=1, bias=0"),
    (
        Caffe2XavierInit(),
        "Caffe2XavierInit: a=1, mode=fan_in, nonlinearity=leaky_relu, "
        "distribution =uniform, bias=0",
    ),
]


@pytest.mark.parametrize(("initializer", "expected"), DESCRIPTIONS, ids=lambda x: str(x)[:12])
def test_describe_matches_the_seed_log_lines(initializer: BaseInit, expected: str) -> None:
    assert initializer.describe() == expected
    assert str(initializer) == expected


@pytest.mark.parametrize(
    ("short", "cls"),
    [
        ("Constant", ConstantInit),
        ("Xavier", XavierInit),
        ("Normal", NormalInit),
        ("TruncNormal", TruncNormalInit),
        ("Uniform", UniformInit),
        ("Kaiming", KaimingInit),
        ("Caffe2Xavier", Caffe2XavierInit),
    ],
)
def test_registered_under_short_and_long_names(short: str, cls: type) -> None:
    assert WEIGHT_INITIALIZERS.get(short) is cls
    assert WEIGHT_INITIALIZERS.get(cls.__name__) is cls


def test_bias_prob_overrides_bias() -> None:
    init = ConstantInit(val=0, bias=5, bias_prob=0.01, layer="Linear")
    assert init.bias == bias_init_with_prob(0.01)
    layer = nn.Linear(3, 3)
    init(layer)
    assert torch.equal(layer.bias, torch.full((3,), bias_init_with_prob(0.01)))
    assert "bias=-4.59" in init.describe()


def test_layer_matches_class_and_direct_base_only() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), MyConv(1, 1, 1), Deeper(1, 1, 1))
    ConstantInit(val=0, layer="Conv2d")(net)
    ConstantInit(val=1, layer="MyConv")(net)
    weights = [float(net[i].weight.item()) for i in range(3)]
    assert weights == [0.0, 1.0, 1.0]  # MyConv itself, and Deeper via its direct base
    init = ConstantInit(val=0, layer="Conv2d")
    assert init.matches(MyConv(1, 1, 1))
    assert not init.matches(Deeper(1, 1, 1))


def test_layer_list_and_the_root_module_itself() -> None:
    conv = nn.Conv2d(1, 1, 1)
    ConstantInit(val=2, layer=["Linear", "Conv2d"])(conv)
    assert conv.weight.item() == 2
    linear = nn.Linear(1, 1)
    ConstantInit(val=3, layer=("Linear",))(linear)
    assert linear.weight.item() == 3


def test_no_layer_initialises_nothing_but_init_module_does() -> None:
    linear = nn.Linear(2, 2)
    before = linear.weight.detach().clone()
    ConstantInit(val=7)(linear)
    assert torch.equal(linear.weight, before)
    ConstantInit(val=7).init_module(nn.ReLU())  # no weight, no bias: nothing to do
    ConstantInit(val=7).init_module(linear)
    assert torch.equal(linear.weight, torch.full((2, 2), 7.0))


def test_init_module_ignores_layer_and_children() -> None:
    block = nn.Sequential(nn.Linear(2, 2))
    ConstantInit(val=1, layer="Conv2d").init_module(block[0])
    assert torch.equal(block[0].weight, torch.ones(2, 2))
    ConstantInit(val=5, layer="Linear").init_module(block)  # Sequential has no weight itself
    assert torch.equal(block[0].weight, torch.ones(2, 2))


def test_matched_modules_without_weight_or_bias_are_untouched() -> None:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    KaimingInit(layer=["Linear", "ReLU"])(net)
    assert net[0].bias is None


def test_caffe2_xavier_is_a_kaiming_with_fixed_arguments() -> None:
    init = Caffe2XavierInit(bias=1, layer="Linear")
    assert isinstance(init, KaimingInit)
    assert (init.a, init.mode, init.nonlinearity, init.distribution) == (
        1,
        "fan_in",
        "leaky_relu",
        "uniform",
    )
    with pytest.raises(TypeError):
        Caffe2XavierInit(mode="fan_out")  # type: ignore[call-arg]


def test_kaiming_init_statistics_through_the_class() -> None:
    linear = nn.Linear(512, 1024)
    KaimingInit(layer="Linear")(linear)
    assert linear.weight.double().std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.05)
    assert torch.equal(linear.bias, torch.zeros(1024))


ALL = [
    lambda: ConstantInit(val=1, layer="Linear"),
    lambda: XavierInit(layer="Linear"),
    lambda: NormalInit(std=0.02, layer="Linear"),
    lambda: TruncNormalInit(std=0.02, layer="Linear"),
    lambda: UniformInit(layer="Linear"),
    lambda: KaimingInit(layer="Linear"),
    lambda: Caffe2XavierInit(layer="Linear"),
]


@pytest.mark.parametrize("make", ALL)
def test_every_initializer_on_every_dtype_and_device(
    make: object, dtype: torch.dtype, device: torch.device
) -> None:
    linear = nn.Linear(64, 32).to(device=device, dtype=dtype)
    nn.init.constant_(linear.bias, 9.0)
    make()(linear)  # type: ignore[operator]
    assert linear.weight.dtype == dtype
    assert torch.isfinite(linear.weight).all()
    assert torch.equal(linear.bias, torch.zeros_like(linear.bias))


def test_matches_whole_module_defaults_to_false() -> None:
    assert BaseInit.matches_whole_module is False
    assert KaimingInit().matches_whole_module is False


# --- bad input ---------------------------------------------------------------


@pytest.mark.parametrize("bias_prob", [0, 1, 1.5, -0.2, "0.1", True])
def test_bias_prob_outside_open_unit_interval(bias_prob: object) -> None:
    with pytest.raises(ValueError, match="`bias_prob`") as info:
        KaimingInit(bias_prob=bias_prob)  # type: ignore[arg-type]
    assert repr(bias_prob) in str(info.value)
    assert "(0, 1)" in str(info.value)


@pytest.mark.parametrize("bias", ["0", None, True, [0]])
def test_bias_must_be_a_number(bias: object) -> None:
    with pytest.raises(TypeError, match="`bias` must be a real number") as info:
        XavierInit(bias=bias)  # type: ignore[arg-type]
    assert repr(bias) in str(info.value)


@pytest.mark.parametrize(("layer", "type_name"), [(3, "int"), ({"Conv2d"}, "set")])
def test_layer_of_wrong_type(layer: object, type_name: str) -> None:
    with pytest.raises(TypeError, match="`layer`") as info:
        NormalInit(layer=layer)  # type: ignore[arg-type]
    assert type_name in str(info.value)


def test_layer_list_with_a_non_string() -> None:
    with pytest.raises(TypeError, match="`layer` must hold class names") as info:
        NormalInit(layer=["Linear", nn.Conv2d])  # type: ignore[list-item]
    assert "Conv2d" in str(info.value)
    assert "(type)" in str(info.value)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: XavierInit(distribution="gauss"), "`distribution`.*'gauss'"),
        (lambda: KaimingInit(distribution="gauss"), "`distribution`.*'gauss'"),
        (lambda: KaimingInit(mode="fan_avg"), "`mode`.*'fan_avg'"),
        (lambda: KaimingInit(nonlinearity="swish"), "`nonlinearity` 'swish'"),
        (lambda: NormalInit(std=-1), "`std` must be >= 0, got -1"),
        (lambda: TruncNormalInit(a=1, b=1), "a=1 and b=1"),
        (lambda: UniformInit(a=2, b=1), "a=2 and b=1"),
    ],
)
def test_bad_values_fail_at_construction(make: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ConstantInit(val="1"), "val"),
        (lambda: XavierInit(gain=None), "gain"),
        (lambda: NormalInit(mean="0"), "mean"),
        (lambda: UniformInit(b="1"), "b"),
    ],
)
def test_non_numbers_fail_at_construction(make: object, name: str) -> None:
    with pytest.raises(TypeError, match=f"`{name}` must be a real number"):
        make()  # type: ignore[operator]


def test_base_init_without_init_module_says_what_to_implement() -> None:
    class Half(BaseInit):
        pass

    with pytest.raises(NotImplementedError, match="Half must implement init_module"):
        Half(layer="Linear")(nn.Linear(1, 1))
