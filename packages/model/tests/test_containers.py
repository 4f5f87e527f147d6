"""Sequential, ModuleList and ModuleDict: torch's containers with an ``init_cfg``."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.model import BaseModule, ModuleDict, ModuleList, Sequential


def const(val: float, layer: str = "Linear") -> dict[str, Any]:
    return dict(type="Constant", layer=layer, val=val, bias=0)


class Leaf(BaseModule):
    def __init__(self, init_cfg: Any = None) -> None:
        super().__init__(init_cfg)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_sequential_applies_its_cfg_and_inner_cfg_wins() -> None:
    seq = Sequential(nn.Linear(2, 2), Leaf(const(2)), nn.ReLU(), init_cfg=const(1))
    seq.init_weights()
    assert torch.all(seq[0].weight == 1)
    assert torch.all(seq[1].fc.weight == 2)
    assert seq.is_init
    assert seq[1].is_init
    assert seq(torch.ones(1, 2)).shape == (1, 2)
    assert isinstance(seq, nn.Sequential)
    report = {e.name: e.description for e in seq.init_report()}
    assert report["1.fc.weight"] == "ConstantInit: val=2, bias=0"


def test_sequential_takes_an_ordered_dict_and_slices() -> None:
    seq = Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.Linear(2, 2)), init_cfg=const(3))
    assert list(seq._modules) == ["a", "b"]
    head = seq[:1]
    assert isinstance(head, Sequential)
    assert head.init_cfg is None
    seq.init_weights()
    assert torch.all(seq.b.weight == 3)


def test_module_list_applies_its_cfg_and_inner_cfg_wins() -> None:
    layers = ModuleList([nn.Linear(2, 2), Leaf(const(2))], init_cfg=const(1))
    layers.append(nn.Linear(2, 2))
    layers.init_weights()
    assert torch.all(layers[0].weight == 1)
    assert torch.all(layers[1].fc.weight == 2)
    assert torch.all(layers[2].weight == 1)
    assert isinstance(layers, nn.ModuleList)
    assert isinstance(layers[:2], ModuleList)


def test_module_dict_applies_its_cfg_and_inner_cfg_wins() -> None:
    heads = ModuleDict({"cls": nn.Linear(2, 3), "reg": Leaf(const(2))}, init_cfg=const(1))
    heads.init_weights()
    assert torch.all(heads["cls"].weight == 1)
    assert torch.all(heads["reg"].fc.weight == 2)
    assert isinstance(heads, nn.ModuleDict)
    assert list(heads.keys()) == ["cls", "reg"]


def test_empty_containers() -> None:
    for container in (Sequential(), ModuleList(), ModuleDict()):
        assert container.init_cfg is None
        assert container.is_init is False
        container.init_weights()
        assert container.is_init
        assert container.init_report() == []


def test_nested_containers_inside_a_base_module() -> None:
    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__(const(1))
            self.stages = ModuleList(
                [Sequential(nn.Linear(2, 2), init_cfg=const(2)), Sequential(nn.Linear(2, 2))]
            )
            self.heads = ModuleDict({"a": nn.Linear(2, 2)}, init_cfg=const(3))

    net = Net()
    net.init_weights()
    assert torch.all(net.stages[0][0].weight == 2)
    assert torch.all(net.stages[1][0].weight == 1)
    assert torch.all(net.heads["a"].weight == 3)


def test_container_with_plain_init_weights_child() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def init_weights(self) -> None:
            with torch.no_grad():
                self.w.fill_(5)

    seq = Sequential(Custom(), init_cfg=dict(type="Constant", val=1, override=dict(name="0")))
    seq.init_weights()
    assert seq[0].w.item() == 5
    assert seq.init_report()[0].source == "Custom.init_weights"


def test_meta_built_container() -> None:
    with torch.device("meta"):
        seq = Sequential(
            nn.Linear(2, 2),
            nn.LayerNorm(2),
            init_cfg=[
                dict(type="Kaiming", layer="Linear"),
                dict(type="Constant", layer="LayerNorm", val=1, bias=0),
            ],
        )
    seq.init_weights(device="cpu")
    assert torch.all(seq[1].weight == 1)
    assert seq[0].weight.device.type == "cpu"


def test_repr_shows_init_cfg() -> None:
    text = repr(ModuleList([nn.ReLU()], init_cfg=const(1)))
    assert text.startswith("ModuleList(")
    assert "init_cfg={'type': 'Constant'" in text


@pytest.mark.parametrize(
    "build",
    [
        lambda cfg: Sequential(nn.ReLU(), init_cfg=cfg),
        lambda cfg: ModuleList([nn.ReLU()], init_cfg=cfg),
        lambda cfg: ModuleDict({"a": nn.ReLU()}, cfg),
    ],
    ids=["Sequential", "ModuleList", "ModuleDict"],
)
@pytest.mark.parametrize("bad", ["Kaiming", 1, [dict(type="Kaiming"), None]])
def test_bad_init_cfg_is_a_type_error(build: Any, bad: object) -> None:
    with pytest.raises(TypeError, match=r"`init_cfg(\[1\])?` must be a dict"):
        build(bad)


def test_module_list_rejects_non_modules_as_torch_does() -> None:
    with pytest.raises(TypeError):
        ModuleList([1])  # type: ignore[list-item]
