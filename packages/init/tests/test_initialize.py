"""``initialize``: the ``init_cfg`` semantics of the seeds' ToyNet examples, and bad input."""

# dict(type=...) is the init_cfg vocabulary under test, so C408 is off here.

from __future__ import annotations

import copy
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from camshaft.init import InitCfgWarning, KaimingInit, initialize, record_init
from camshaft.registry import BuildError, ConfigError, RegistryError

KAIMING = "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0"
XAVIER = "XavierInit: gain=1, distribution=normal, bias=0"


class LinearConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.conv = nn.Conv2d(1, 1, 1)


class TwoConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1)
        self.conv2 = nn.Conv2d(1, 1, 1)


class ToyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.custom_weight = nn.Parameter(torch.full((1, 1, 1, 1), 5.0))
        self.custom_bias = nn.Parameter(torch.full((1,), 5.0))


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 1)
        self.head = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2), nn.Linear(2, 2))
        self.scale = nn.Parameter(torch.ones(1))


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()


def _log(net: nn.Module, init_cfg: Any) -> dict[str, str | None]:
    with record_init() as record:
        initialize(net, init_cfg)
    return {name: record.describe(param) for name, param in net.named_parameters()}


def _value(param: torch.Tensor) -> float:
    return float(param.detach().flatten()[0])


# --- the seeds' ToyNet examples ----------------------------------------------


def test_list_of_cfgs_by_layer() -> None:
    log = _log(
        LinearConvNet(),
        [dict(type="Kaiming", layer="Conv2d"), dict(type="Xavier", layer="Linear")],
    )
    assert log == {
        "linear.weight": XAVIER,
        "linear.bias": XAVIER,
        "conv.weight": KAIMING,
        "conv.bias": KAIMING,
    }


def test_layer_list_in_one_cfg() -> None:
    log = _log(LinearConvNet(), [dict(type="Kaiming", layer=["Conv2d", "Linear"])])
    assert set(log.values()) == {KAIMING}


def test_override_with_type_wins_for_its_child() -> None:
    net = TwoConvNet()
    cfg = [dict(type="Kaiming", layer=["Conv2d"], override=dict(name="conv2", type="Xavier"))]
    log = _log(net, cfg)
    assert log["conv1.weight"] == KAIMING
    assert log["conv1.bias"] == KAIMING
    # Everything the override wrote is attributed to it. (MMEngine's log keeps
    # "KaimingInit" for conv2.bias because its value, 0, did not change.)
    assert log["conv2.weight"] == XAVIER
    assert log["conv2.bias"] == XAVIER


def test_override_values() -> None:
    net = TwoConvNet()
    initialize(
        net,
        dict(
            type="Constant",
            val=1,
            bias=2,
            layer="Conv2d",
            override=dict(name="conv2", type="Constant", val=3),
        ),
    )
    assert (_value(net.conv1.weight), _value(net.conv1.bias)) == (1, 2)
    assert (_value(net.conv2.weight), _value(net.conv2.bias)) == (3, 0)


def test_override_with_only_name_reuses_the_outer_cfg_without_layer() -> None:
    net = LinearConvNet()
    initialize(
        net, dict(type="Constant", val=3, bias=1, layer="Linear", override=dict(name="conv"))
    )
    # conv is not a Linear, yet the override initialised it with the outer arguments.
    assert (_value(net.conv.weight), _value(net.conv.bias)) == (3, 1)
    assert (_value(net.linear.weight), _value(net.linear.bias)) == (3, 1)


def test_override_list() -> None:
    net = TwoConvNet()
    log = _log(
        net,
        dict(
            type="Kaiming",
            layer="Conv2d",
            override=[
                dict(name="conv1", type="Xavier"),
                dict(name="conv2", type="Constant", val=4),
            ],
        ),
    )
    assert log["conv1.weight"] == XAVIER
    assert log["conv2.weight"] == "ConstantInit: val=4, bias=0"
    assert _value(net.conv2.weight) == 4


def test_override_without_layer_touches_only_its_child() -> None:
    net = TwoConvNet()
    before = net.conv1.weight.detach().clone()
    initialize(net, dict(type="Constant", val=6, override=dict(name="conv2")))
    assert torch.equal(net.conv1.weight, before)
    assert _value(net.conv2.weight) == 6


def test_later_cfg_wins() -> None:
    net = TwoConvNet()
    log = _log(
        net,
        [
            dict(type="Constant", val=1, layer="Conv2d"),
            dict(type="Constant", val=2, layer="Conv2d"),
        ],
    )
    assert _value(net.conv1.weight) == 2
    assert log["conv1.weight"] == "ConstantInit: val=2, bias=0"


def test_custom_module_is_not_matched() -> None:
    net = TwoConvNet()
    net.custom_conv = ToyConv()
    log = _log(
        net, dict(type="Kaiming", layer="Conv2d", override=dict(name="conv2", type="Xavier"))
    )
    assert log["custom_conv.custom_weight"] is None
    assert _value(net.custom_conv.custom_weight) == 5


def test_override_initialises_every_weight_inside_the_child_whatever_its_class() -> None:
    net = Backbone()
    initialize(
        net,
        dict(
            type="Constant",
            val=0,
            layer="Conv2d",
            override=dict(name="head", type="Constant", val=2),
        ),
    )
    for layer in net.head:
        assert torch.equal(layer.weight, torch.full_like(layer.weight, 2))
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert torch.equal(net.scale, torch.ones(1))  # neither weight nor bias


def test_dotted_override_name_reaches_nested_children() -> None:
    net = Outer()
    initialize(
        net,
        dict(type="Constant", val=0, override=dict(name="backbone.conv1", type="Constant", val=9)),
    )
    assert _value(net.backbone.conv1.weight) == 9
    assert _value(net.backbone.head[0].weight) != 9  # a sibling keeps its random value
    initialize(net, dict(type="Constant", val=8, override=dict(name="backbone.head.0")))
    assert _value(net.backbone.head[0].weight) == 8


def test_type_may_be_the_class_itself() -> None:
    net = TwoConvNet()
    log = _log(net, dict(type=KaimingInit, layer="Conv2d"))
    assert log["conv1.weight"] == KAIMING


class WholeModule:
    """A stand-in for PretrainedInit: acts on the module it is given, needs no layer."""

    matches_whole_module = True
    seen: ClassVar[list[nn.Module]] = []

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, module: nn.Module) -> None:
        WholeModule.seen.append(module)
        with torch.no_grad():
            for param in module.parameters():
                param.fill_(self.value)


def test_whole_module_initializers_need_no_layer_and_warn_of_nothing(
    recwarn: pytest.WarningsRecorder,
) -> None:
    WholeModule.seen.clear()
    net = TwoConvNet()
    initialize(net, dict(type=WholeModule, value=1.5))
    assert WholeModule.seen == [net]
    assert _value(net.conv1.weight) == 1.5
    initialize(
        net,
        dict(
            type="Kaiming", layer="Conv2d", override=dict(name="conv2", type=WholeModule, value=2)
        ),
    )
    assert WholeModule.seen[-1] is net.conv2
    assert _value(net.conv2.weight) == 2
    assert not [w for w in recwarn if issubclass(w.category, InitCfgWarning)]


def test_cfg_without_layer_or_override_warns_and_does_nothing() -> None:
    net = TwoConvNet()
    before = net.conv1.weight.detach().clone()
    with pytest.warns(InitCfgWarning, match=r"`init_cfg\[0\]` = \{'type': 'Kaiming'\}.*neither"):
        initialize(net, [dict(type="Kaiming")])
    assert torch.equal(net.conv1.weight, before)


def test_caller_cfg_is_not_mutated() -> None:
    cfg = [
        dict(
            type="Kaiming",
            layer=["Conv2d"],
            override=[dict(name="conv2"), dict(name="conv1", type="Xavier")],
        ),
        dict(type="Constant", val=1, layer="Linear", override=dict(name="conv1")),
    ]
    snapshot = copy.deepcopy(cfg)
    initialize(TwoConvNet(), cfg)
    assert cfg == snapshot


# --- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("init_cfg", ["Kaiming", ("a",), None, 3])
def test_init_cfg_must_be_dict_or_list(init_cfg: object) -> None:
    with pytest.raises(TypeError, match="`init_cfg` must be a dict or a list of dicts") as info:
        initialize(TwoConvNet(), init_cfg)  # type: ignore[arg-type]
    assert repr(init_cfg) in str(info.value)


def test_list_entries_must_be_dicts() -> None:
    with pytest.raises(TypeError, match=r"`init_cfg\[1\]` must be a dict, got str: 'Xavier'"):
        initialize(TwoConvNet(), [dict(type="Kaiming", layer="Conv2d"), "Xavier"])  # type: ignore[list-item]


def test_module_must_be_a_module() -> None:
    with pytest.raises(TypeError, match=r"`module` must be an nn\.Module, got dict"):
        initialize({}, dict(type="Kaiming", layer="Conv2d"))  # type: ignore[arg-type]


def test_unknown_type_lists_the_closest_names() -> None:
    with pytest.raises(RegistryError, match="'Kaimin'") as info:
        initialize(TwoConvNet(), dict(type="Kaimin", layer="Conv2d"))
    assert "'Kaiming'" in str(info.value)


def test_bad_initializer_argument_names_it() -> None:
    with pytest.raises(BuildError, match="bias_prob") as info:
        initialize(TwoConvNet(), dict(type="Kaiming", layer="Conv2d", bias_prob=2))
    assert isinstance(info.value.__cause__, ValueError)
    assert "got 2" in str(info.value)


def test_override_needs_a_name() -> None:
    with pytest.raises(ConfigError, match=r"`init_cfg\['override'\]`.*needs `name`"):
        initialize(TwoConvNet(), dict(type="Kaiming", layer="Conv2d", override=dict(type="Xavier")))


def test_override_with_arguments_needs_a_type() -> None:
    cfg = dict(type="Kaiming", layer="Conv2d", override=[dict(name="conv2", gain=2)])
    with pytest.raises(
        ConfigError, match=r"`init_cfg\['override'\]\[0\]`.*\['gain'\] but no `type`"
    ) as info:
        initialize(TwoConvNet(), cfg)
    assert "'name': 'conv2'" in str(info.value)


def test_override_name_that_does_not_exist_lists_the_children() -> None:
    with pytest.raises(ConfigError, match="name='conv3'") as info:
        initialize(TwoConvNet(), dict(type="Kaiming", layer="Conv2d", override=dict(name="conv3")))
    assert "['conv1', 'conv2']" in str(info.value)


def test_dotted_override_name_that_does_not_exist_lists_the_children_there() -> None:
    with pytest.raises(ConfigError, match="backbone \\(Backbone\\) has no child 'conv9'") as info:
        initialize(Outer(), dict(type="Constant", val=1, override=dict(name="backbone.conv9")))
    assert "['conv1', 'head']" in str(info.value)


def test_override_name_of_a_parameter_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"backbone\.scale is a Parameter, not an nn\.Module"):
        initialize(Outer(), dict(type="Constant", val=1, override=dict(name="backbone.scale")))


def test_override_entries_must_be_dicts() -> None:
    with pytest.raises(TypeError, match=r"`init_cfg\['override'\]\[0\]` must be a dict"):
        initialize(TwoConvNet(), dict(type="Constant", val=1, override=["conv1"]))
