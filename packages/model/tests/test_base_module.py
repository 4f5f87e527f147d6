"""BaseModule: the tutorials' examples, init order, is_init, overrides, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from camshaft.model import BaseModule
from camshaft.registry import RegistryError

KAIMING = "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0"
XAVIER = "XavierInit: gain=1, distribution=normal, bias=0"


def described(module: BaseModule) -> dict[str, str]:
    return {entry.name: entry.description for entry in module.init_report()}


# --- the tutorials' examples, imports changed only ---------------------------------
# fmt: off


def test_seed_pretrained_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example writes ./pretrained.pth

    class ToyNet(BaseModule):

        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Linear(1, 1)

    # 保存预训练权重
    toy_net = ToyNet()
    torch.save(toy_net.state_dict(), './pretrained.pth')
    pretrained = './pretrained.pth'

    # 配置加载预训练权重的初始化方式
    toy_net = ToyNet(init_cfg=dict(type='Pretrained', checkpoint=pretrained))
    # 加载权重
    toy_net.init_weights()

    saved = torch.load(tmp_path / "pretrained.pth", weights_only=True)
    assert torch.equal(toy_net.conv1.weight, saved["conv1.weight"])
    assert described(toy_net)["conv1.bias"] == "PretrainedInit: load from ./pretrained.pth"


def test_seed_layer_example() -> None:
    class ToyNet(BaseModule):

        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.linear = nn.Linear(1, 1)
            self.conv = nn.Conv2d(1, 1, 1)


    toy_net = ToyNet(
        init_cfg=[
            dict(type='Kaiming', layer='Conv2d'),
            dict(type='Xavier', layer='Linear')
        ], )
    toy_net.init_weights()

    assert described(toy_net) == {
        "linear.weight": XAVIER,
        "linear.bias": XAVIER,
        "conv.weight": KAIMING,
        "conv.bias": KAIMING,
    }

    toy_net = ToyNet(init_cfg=[dict(type='Kaiming', layer=['Conv2d', 'Linear'])], )
    toy_net.init_weights()

    assert set(described(toy_net).values()) == {KAIMING}


def test_seed_override_example() -> None:
    class ToyNet(BaseModule):

        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Conv2d(1, 1, 1)
            self.conv2 = nn.Conv2d(1, 1, 1)


    toy_net = ToyNet(
        init_cfg=[
            dict(
                type='Kaiming',
                layer=['Conv2d'],
                override=dict(name='conv2', type='Xavier')),
        ], )
    toy_net.init_weights()

    # The tutorial's log says KaimingInit for conv2.bias, but the Xavier override wrote
    # that bias last (it fills weight and bias of conv2); camshaft.init records what was
    # actually written, so the report names XavierInit.
    assert described(toy_net) == {
        "conv1.weight": KAIMING,
        "conv1.bias": KAIMING,
        "conv2.weight": XAVIER,
        "conv2.bias": XAVIER,
    }


def test_seed_custom_init_weights_example() -> None:
    class ToyConv(nn.Module):

        def __init__(self):
            super().__init__()
            self.custom_weight = nn.Parameter(torch.empty(1, 1, 1, 1))
            self.custom_bias = nn.Parameter(torch.empty(1))

        def init_weights(self):
            with torch.no_grad():
                self.custom_weight = self.custom_weight.fill_(1)
                self.custom_bias = self.custom_bias.fill_(0)


    class ToyNet(BaseModule):

        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Conv2d(1, 1, 1)
            self.conv2 = nn.Conv2d(1, 1, 1)
            self.custom_conv = ToyConv()


    toy_net = ToyNet(
        init_cfg=[
            dict(
                type='Kaiming',
                layer=['Conv2d'],
                override=dict(name='conv2', type='Xavier')),
        ], )
    toy_net.init_weights()

    assert toy_net.custom_conv.custom_weight.item() == 1
    assert toy_net.custom_conv.custom_bias.item() == 0
    report = described(toy_net)
    assert report["custom_conv.custom_weight"] == (
        "Initialized by user-defined `init_weights` in ToyConv"
    )
    assert report["custom_conv.custom_bias"] == (
        "Initialized by user-defined `init_weights` in ToyConv"
    )
    assert report["conv1.weight"] == KAIMING


def test_early_seed_with_plain_object_toyconv_runs() -> None:
    # The early tutorial's ToyConv forgot nn.Module (see seeds/README.md). It must still
    # run: the object is a plain attribute, not a child, so nothing calls its init_weights.
    class ToyConv:
        def __init__(self):
            super().__init__()
            self.custom_weight = nn.Parameter(torch.empty(1, 1, 1, 1))
            self.custom_bias = nn.Parameter(torch.empty(1))

        def init_weights(self):
            with torch.no_grad():
                self.custom_weight = self.custom_weight.fill_(1)
                self.custom_bias = self.custom_bias.fill_(0)


    class ToyNet(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv1 = nn.Conv2d(1, 1, 1)
            self.conv2 = nn.Conv2d(1, 1, 1)
            self.custom_conv = ToyConv()


    toy_net = ToyNet(
        init_cfg=[
            dict(type='Kaiming', layer=['Conv2d'],
                 override=dict(name='conv2', type='Xavier')),
        ],
    )
    toy_net.init_weights()

    assert [entry.name for entry in toy_net.init_report()] == [
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"
    ]


# fmt: on
# --- test modules ------------------------------------------------------------------


class Leaf(BaseModule):
    def __init__(self, init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        self.fc = nn.Linear(2, 2)


class Tree(BaseModule):
    def __init__(self, init_cfg: dict | list | None = None, leaf_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.own = nn.Linear(2, 2)
        self.leaf = Leaf(leaf_cfg)


class Counting(nn.Module):
    """A plain module with its own init_weights that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.calls = 0

    def init_weights(self) -> None:
        self.calls += 1
        with torch.no_grad():
            self.weight.fill_(7)


def const(val: float, layer: str = "Linear") -> dict:
    return dict(type="Constant", layer=layer, val=val, bias=0)


# --- init_cfg storage and is_init --------------------------------------------------


def test_init_cfg_is_deep_copied() -> None:
    cfg = [dict(type="Constant", layer=["Linear"], val=1)]
    leaf = Leaf(cfg)
    cfg[0]["layer"].append("Conv2d")
    cfg.append(const(2))
    assert leaf.init_cfg == [dict(type="Constant", layer=["Linear"], val=1)]


def test_is_init_and_second_call_warns_and_does_nothing() -> None:
    leaf = Leaf(const(1))
    assert leaf.is_init is False
    leaf.init_weights()
    assert leaf.is_init is True
    with torch.no_grad():
        leaf.fc.weight.fill_(5)
    with pytest.warns(UserWarning, match=r"Leaf\.init_weights\(\) was already called"):
        leaf.init_weights()
    assert torch.all(leaf.fc.weight == 5)


def test_init_cfg_may_be_reassigned_before_init_weights() -> None:
    leaf = Leaf()
    leaf.init_cfg = const(3)
    leaf.init_weights()
    assert torch.all(leaf.fc.weight == 3)


def test_no_init_cfg_leaves_weights_alone() -> None:
    leaf = Leaf()
    before = leaf.fc.weight.detach().clone()
    leaf.init_weights()
    assert torch.equal(leaf.fc.weight, before)
    assert leaf.is_init


# --- order: own cfg, children, checkpoint ------------------------------------------


def test_child_own_cfg_wins_over_parent_cfg() -> None:
    tree = Tree(const(1), leaf_cfg=const(2))
    tree.init_weights()
    assert torch.all(tree.own.weight == 1)
    assert torch.all(tree.leaf.fc.weight == 2)
    assert tree.leaf.is_init


def test_child_without_cfg_keeps_parent_cfg() -> None:
    tree = Tree(const(1))
    tree.init_weights()
    assert torch.all(tree.leaf.fc.weight == 1)
    assert described(tree)["leaf.fc.weight"] == "ConstantInit: val=1, bias=0"


def test_plain_child_init_weights_wins_over_parent_cfg() -> None:
    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Constant", val=3, override=dict(name="counting")))
            self.counting = Counting()

    net = Net()
    net.init_weights()
    assert net.counting.calls == 1
    assert torch.all(net.counting.weight == 7)
    assert described(net)["counting.weight"] == (
        "Initialized by user-defined `init_weights` in Counting"
    )


def test_grandchildren_are_reached_through_plain_containers() -> None:
    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__(const(1))
            self.blocks = nn.Sequential(Leaf(const(2)), nn.ReLU(), nn.Sequential(Leaf(const(3))))
            self.plain = nn.ModuleList([Counting()])

    net = Net()
    net.init_weights()
    assert torch.all(net.blocks[0].fc.weight == 2)
    assert torch.all(net.blocks[2][0].fc.weight == 3)
    assert net.blocks[0].is_init
    assert net.blocks[2][0].is_init
    assert net.plain[0].calls == 1


def test_initialised_child_is_not_initialised_again() -> None:
    tree = Tree(leaf_cfg=const(2))
    tree.leaf.init_weights()
    with torch.no_grad():
        tree.leaf.fc.weight.fill_(9)
    tree.init_weights()  # no warning: the parent skips children already initialised
    assert torch.all(tree.leaf.fc.weight == 9)


def test_pretrained_is_applied_last_wherever_it_is_listed(tmp_path: Path) -> None:
    source = Tree()
    torch.save(source.state_dict(), tmp_path / "tree.pth")
    cfg = [dict(type="Pretrained", checkpoint=str(tmp_path / "tree.pth")), const(1)]
    tree = Tree(cfg, leaf_cfg=const(2))
    tree.init_weights()
    for name, param in tree.named_parameters():
        assert torch.equal(param, source.state_dict()[name]), name
    assert {entry.source for entry in tree.init_report()} == {"PretrainedInit"}


def test_child_pretrained_loads_into_the_child(tmp_path: Path) -> None:
    source = Leaf()
    torch.save(source.state_dict(), tmp_path / "leaf.pth")
    tree = Tree(const(1), leaf_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "leaf.pth")))
    tree.init_weights()
    assert torch.equal(tree.leaf.fc.weight, source.fc.weight)
    assert torch.all(tree.own.weight == 1)


# --- BaseModule subclasses that override init_weights ------------------------------


def test_override_without_super_is_credited_and_marks_initialised() -> None:
    class Custom(BaseModule):
        def __init__(self) -> None:
            super().__init__(const(5))  # ignored: the override does not call super
            self.fc = nn.Linear(2, 2)

        def init_weights(self) -> None:
            with torch.no_grad():
                self.fc.weight.fill_(4)

    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__(const(1))
            self.custom = Custom()

    net = Net()
    net.init_weights()
    assert torch.all(net.custom.fc.weight == 4)
    assert net.custom.is_init
    report = described(net)
    assert report["custom.fc.weight"] == "Initialized by user-defined `init_weights` in Custom"
    assert report["custom.fc.bias"] == "Initialized by user-defined `init_weights` in Custom"


def test_override_with_super_keeps_cfg_credit_and_credits_the_rest() -> None:
    class Scaled(BaseModule):
        def __init__(self) -> None:
            super().__init__(const(2))
            self.fc = nn.Linear(2, 2)
            self.scale = nn.Parameter(torch.empty(2))

        def init_weights(self) -> None:
            super().init_weights()
            with torch.no_grad():
                self.scale.fill_(0.5)

    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.scaled = Scaled()

    net = Net()
    net.init_weights()
    report = described(net)
    assert report["scaled.fc.weight"] == "ConstantInit: val=2, bias=0"
    assert report["scaled.scale"] == "Initialized by user-defined `init_weights` in Scaled"
    assert torch.all(net.scaled.scale == 0.5)


# --- parameters must be written in place -------------------------------------------


class Rebinding(nn.Module):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.other = nn.Parameter(torch.zeros(2))
        self.action = action

    def init_weights(self) -> None:
        if self.action == "add":
            self.extra = nn.Parameter(torch.ones(1))
        elif self.action == "replace":
            self.weight = nn.Parameter(torch.ones(2))
        elif self.action == "remove":
            del self.weight
        elif self.action == "tie":
            self.weight = self.other


class Holder(BaseModule):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.child = Rebinding(action)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("add", r"added \['child\.extra'\]"),
        ("replace", r"replaced \['child\.weight'\] with new Parameter objects"),
        ("remove", r"removed \['child\.weight'\]"),
    ],
)
def test_init_weights_that_swaps_parameters_is_an_error(action: str, message: str) -> None:
    holder = Holder(action)
    with pytest.raises(RuntimeError, match=message) as info:
        holder.init_weights()
    assert "in place" in str(info.value)


def test_tying_to_an_existing_parameter_is_allowed() -> None:
    holder = Holder("tie")
    holder.init_weights()
    assert holder.child.weight is holder.child.other


# --- repr and bad input ------------------------------------------------------------


def test_repr_shows_init_cfg() -> None:
    assert "init_cfg={'type': 'Constant'" in repr(Leaf(const(1)))
    assert "init_cfg" not in repr(Leaf())


@pytest.mark.parametrize("bad", ["Kaiming", 3, (dict(type="Kaiming"),)])
def test_bad_init_cfg_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match=rf"`init_cfg` must be a dict.*got {type(bad).__name__}"):
        Leaf(bad)  # type: ignore[arg-type]


def test_bad_init_cfg_entry_is_named() -> None:
    with pytest.raises(TypeError, match=r"`init_cfg\[1\]` must be a dict.*got str"):
        Leaf([const(1), "Xavier"])  # type: ignore[list-item]


def test_bad_init_cfg_assigned_later_fails_at_init_weights() -> None:
    leaf = Leaf()
    leaf.init_cfg = "Kaiming"  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"`Leaf\.init_cfg` must be a dict"):
        leaf.init_weights()
    assert leaf.is_init is False


def test_unknown_initializer_type_names_close_matches() -> None:
    leaf = Leaf(dict(type="Kaimin", layer="Linear"))
    with pytest.raises(RegistryError, match="Kaiming"):
        leaf.init_weights()
    assert leaf.is_init is False


@pytest.mark.parametrize("bad", [0, 1.5, ["cpu"]])
def test_device_of_wrong_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match=r"`device` must be a torch.device, a str"):
        Leaf().init_weights(device=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [("nonsense", r"not a device torch knows"), ("meta", r"needs a real device")],
)
def test_bad_device_value_is_a_value_error(bad: str, message: str) -> None:
    leaf = Leaf()
    with pytest.raises(ValueError, match=message):
        leaf.init_weights(device=bad)
    assert leaf.is_init is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"CUDA is not available"):
        Leaf().init_weights(device="cuda")


def test_device_moves_an_eager_model() -> None:
    leaf = Leaf(const(1)).double()
    leaf.init_weights(device=torch.device("cpu"))
    assert leaf.fc.weight.device.type == "cpu"
    assert torch.all(leaf.fc.weight == 1)
