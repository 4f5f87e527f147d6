"""Meta-device models: ``init_weights(device=...)`` materialises once and initialises."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.init import CheckpointNotFoundError
from camshaft.model import BaseModule
from camshaft.model import _materialize as materialize_module

CFG = [
    dict(type="Kaiming", layer="Linear"),
    dict(type="Constant", layer="LayerNorm", val=1, bias=0),
]


class Block(BaseModule):
    def __init__(self, init_cfg: Any = None, width: int = 8) -> None:
        super().__init__(init_cfg)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)
        self.norm = nn.LayerNorm(width)


class Stack(BaseModule):
    def __init__(self, init_cfg: Any = None, depth: int = 3) -> None:
        super().__init__(init_cfg)
        self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
        self.head = nn.Linear(8, 2)


def on_meta(factory: Callable[[], nn.Module]) -> Any:
    with torch.device("meta"):
        return factory()


def assert_same(a: nn.Module, b: nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert x.device == y.device, name
        assert torch.equal(x, y), name


# --- materialise, then initialise -------------------------------------------------------


def test_meta_built_equals_eager_built_under_the_same_seed() -> None:
    eager = Stack(CFG)
    torch.manual_seed(0)  # eager construction consumed RNG: seed right before init
    eager.init_weights()
    meta = on_meta(lambda: Stack(CFG))
    assert meta.head.weight.is_meta
    torch.manual_seed(0)
    meta.init_weights(device="cpu")
    assert_same(eager, meta)
    assert {e.source for e in meta.init_report()} == {"KaimingInit", "ConstantInit"}


def test_no_default_init_runs_when_init_cfg_covers_everything(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    calls: list[nn.Module] = []
    original = nn.Linear.reset_parameters

    def counting(self: nn.Linear) -> None:
        calls.append(self)
        original(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", counting)
    meta = on_meta(lambda: Stack(CFG))
    calls.clear()  # construction on meta calls it (on no data)
    meta.init_weights(device=torch.device("cpu"))
    assert calls == []
    assert not [w for w in recwarn if "meta device" in str(w.message)]


def test_device_none_materialises_on_the_default_device() -> None:
    meta = on_meta(lambda: Stack(CFG))
    meta.init_weights()
    assert all(p.device.type == "cpu" for p in meta.parameters())


def test_device_none_inside_a_meta_context_is_an_error() -> None:
    with torch.device("meta"):
        meta = Stack(CFG)
        with pytest.raises(ValueError, match=r"default device is 'meta'.*Pass device='cpu'"):
            meta.init_weights()
    assert meta.is_init is False


def test_tied_parameters_stay_tied() -> None:
    class Tied(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Normal", layer="Embedding", std=0.02))
            self.embed = nn.Embedding(5, 4)
            self.out = nn.Linear(4, 5, bias=False)
            self.out.weight = self.embed.weight

    tied = on_meta(Tied)
    tied.init_weights(device="cpu")
    assert tied.out.weight is tied.embed.weight
    assert not tied.embed.weight.is_meta


def test_partly_meta_model_keeps_the_data_it_has() -> None:
    stack = on_meta(lambda: Stack(CFG))
    real = nn.Linear(8, 2)
    stack.head = real  # built eagerly: it holds data, which materialising must keep
    stack.init_cfg = [dict(type="Constant", layer="LayerNorm", val=1, bias=0)]
    before = real.weight.detach().clone()
    with pytest.warns(UserWarning, match=r"reset_parameters\(\): \[blocks\.0\.fc1\.weight"):
        stack.init_weights(device="cpu")
    assert torch.equal(stack.head.weight, before)  # to_empty would have dropped it


# --- buffers and uncovered parameters ---------------------------------------------------


def test_batch_norm_running_stats_are_reset() -> None:
    class WithNorm(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Constant", layer="BatchNorm1d", val=1, bias=0))
            self.bn = nn.BatchNorm1d(3)

    net = on_meta(WithNorm)
    net.init_weights(device="cpu")
    assert torch.equal(net.bn.running_mean, torch.zeros(3))
    assert torch.equal(net.bn.running_var, torch.ones(3))
    assert int(net.bn.num_batches_tracked) == 0


def test_uncovered_parameters_get_reset_parameters_and_are_named() -> None:
    class Partly(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Kaiming", layer="Linear"))
            self.fc = nn.Linear(4, 4)
            self.embed = nn.Embedding(3, 4)

    net = on_meta(Partly)
    with pytest.warns(UserWarning, match="meta device") as caught:
        net.init_weights(device="cpu")
    (warning,) = [w for w in caught if "meta device" in str(w.message)]
    message = str(warning.message)
    assert "1 parameter(s) got PyTorch's default init" in message
    assert "[embed.weight]" in message
    assert "fc.weight" not in message
    assert "Fix: add init_cfg entries" in message
    assert torch.isfinite(net.embed.weight).all()
    assert net.embed.weight.std() > 0.5
    report = {e.name: e for e in net.init_report()}
    assert report["embed.weight"].source == "Embedding.reset_parameters"
    assert report["embed.weight"].description.startswith(
        "PyTorch default init by `Embedding.reset_parameters()`"
    )


def test_reset_fallback_keeps_what_was_set_in_the_same_module(tmp_path: Path) -> None:
    source = nn.Linear(3, 3)
    torch.save({"fc.weight": source.weight.detach()}, tmp_path / "w.pth")

    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

    class Outer(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = Net()
            self.net.init_cfg = dict(type="Pretrained", checkpoint=str(tmp_path / "w.pth"))

    outer = on_meta(Outer)
    with pytest.warns(UserWarning, match=r"\[net\.fc\.bias\]"):
        outer.init_weights(device="cpu")
    assert torch.equal(outer.net.fc.weight, source.weight)
    assert outer.net.fc.bias.abs().max() <= 1 / 3**0.5


class Gate(nn.Module):
    """A module without reset_parameters, with a parameter and a computed buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.ones(2))
        self.register_buffer("table", torch.arange(4.0))


def test_parameters_without_reset_parameters_and_buffers_are_named() -> None:
    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.gate = Gate()

    net = on_meta(Net)
    with pytest.warns(UserWarning, match="meta device") as caught:
        net.init_weights(device="cpu")
    (warning,) = [w for w in caught if "meta device" in str(w.message)]
    message = str(warning.message)
    assert "1 parameter(s) still hold uninitialized memory" in message
    assert "[gate.gate]" in message
    assert "1 buffer(s) were zero-filled: [gate.table]" in message
    assert torch.equal(net.gate.table, torch.zeros(4))
    (entry,) = net.init_report()
    assert entry.source == "uninitialized"


def test_empty_tensors_need_no_init(recwarn: pytest.WarningsRecorder) -> None:
    class Anchored(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("anchor", torch.empty(0), persistent=False)
            self.nothing = nn.Parameter(torch.empty(0, 3))

    net = on_meta(Anchored)
    net.init_weights(device="cpu")
    assert net.anchor.device.type == "cpu"
    assert not [w for w in recwarn if "meta device" in str(w.message)]


def test_user_init_weights_covers_its_module(recwarn: pytest.WarningsRecorder) -> None:
    class Covered(Gate):
        def init_weights(self) -> None:
            with torch.no_grad():
                self.gate.fill_(2)
                self.table.copy_(torch.arange(4.0))

    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.gate = Covered()

    net = on_meta(Net)
    net.init_weights(device="cpu")
    assert torch.equal(net.gate.table, torch.arange(4.0))
    assert torch.all(net.gate.gate == 2)
    assert not [w for w in recwarn if "meta device" in str(w.message)]


def test_buffer_loaded_by_a_child_checkpoint_is_not_named(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    torch.save({"inner.gate": torch.ones(2), "inner.table": torch.arange(4.0)}, tmp_path / "c.pth")

    class Child(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Pretrained", checkpoint=str(tmp_path / "c.pth")))
            self.inner = Gate()

    class Net(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.child = Child()

    net = on_meta(Net)
    net.init_weights(device="cpu")  # the child's checkpoint loads into materialised tensors
    assert torch.equal(net.child.inner.table, torch.arange(4.0))
    assert torch.equal(net.child.inner.gate, torch.ones(2))
    assert not [w for w in recwarn if "meta device" in str(w.message)]


# --- checkpoints on meta models ---------------------------------------------------------


@pytest.fixture
def stack_checkpoint(tmp_path: Path) -> tuple[Path, Stack]:
    source = Stack(CFG)
    source.init_weights()
    path = tmp_path / "stack.pth"
    torch.save(source.state_dict(), path)
    return path, source


def spy_materialize(monkeypatch: pytest.MonkeyPatch) -> list[set[int]]:
    fresh_sets: list[set[int]] = []
    original = materialize_module.materialize

    def spy(*args: Any) -> Any:
        fresh, pending = original(*args)
        fresh_sets.append(fresh)
        return fresh, pending

    monkeypatch.setattr(materialize_module, "materialize", spy)
    return fresh_sets


def test_pretrained_on_meta_assigns_without_allocating(
    stack_checkpoint: tuple[Path, Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, source = stack_checkpoint
    fresh_sets = spy_materialize(monkeypatch)
    meta = on_meta(lambda: Stack([*CFG, dict(type="Pretrained", checkpoint=str(path))]))
    meta.init_weights(device="cpu")
    assert fresh_sets == [set()]  # no parameter got new storage: all came from the file
    assert_same(source, meta)
    assert {e.source for e in meta.init_report()} == {"PretrainedInit"}


def test_partial_checkpoint_on_meta(tmp_path: Path, stack_checkpoint: tuple[Path, Stack]) -> None:
    _, source = stack_checkpoint
    partial = {k: v for k, v in source.state_dict().items() if k.startswith("blocks.0.")}
    torch.save(partial, tmp_path / "partial.pth")
    cfg = [dict(type="Pretrained", checkpoint=str(tmp_path / "partial.pth")), *CFG]
    meta = on_meta(lambda: Stack(cfg))
    meta.init_weights(device="cpu")
    report = {e.name: e.source for e in meta.init_report()}
    assert report["blocks.0.fc1.weight"] == "PretrainedInit"
    assert report["blocks.1.fc1.weight"] == "KaimingInit"
    assert report["blocks.1.norm.weight"] == "ConstantInit"
    assert torch.equal(meta.blocks[0].fc1.weight, source.blocks[0].fc1.weight)
    assert not any(t.is_meta for t in meta.state_dict().values())


def test_failed_checkpoint_leaves_the_model_on_meta(tmp_path: Path) -> None:
    meta = on_meta(lambda: Stack(dict(type="Pretrained", checkpoint=str(tmp_path / "none.pth"))))
    with pytest.raises(CheckpointNotFoundError, match=r"none\.pth"):
        meta.init_weights(device="cpu")
    assert meta.head.weight.is_meta
    assert meta.is_init is False


def test_report_is_logged_for_meta_models(camshaft_log: pytest.LogCaptureFixture) -> None:
    on_meta(lambda: Stack(CFG)).init_weights(device="cpu")
    (info,) = [r for r in camshaft_log.records if r.levelno == logging.INFO]
    assert info.getMessage() == (
        "init_weights(Stack): 20 parameters — KaimingInit: 14, ConstantInit: 6"
    )


# --- GPU ---------------------------------------------------------------------------------


@pytest.mark.gpu
def test_materialise_onto_cuda(stack_checkpoint: tuple[Path, Stack]) -> None:
    meta = on_meta(lambda: Stack(CFG))
    meta.init_weights(device="cuda")
    assert all(t.device.type == "cuda" for t in meta.state_dict().values())
    assert torch.all(meta.blocks[0].norm.weight == 1)
    path, source = stack_checkpoint
    loaded = on_meta(lambda: Stack(dict(type="Pretrained", checkpoint=str(path))))
    loaded.init_weights(device="cuda")
    for name, tensor in loaded.state_dict().items():
        assert tensor.device.type == "cuda"
        assert torch.equal(tensor.cpu(), source.state_dict()[name]), name


@pytest.mark.gpu
def test_eager_model_is_moved_and_initialised_on_cuda() -> None:
    stack = Stack(CFG)
    stack.init_weights(device="cuda")
    assert all(p.device.type == "cuda" for p in stack.parameters())
    assert torch.all(stack.blocks[1].norm.weight == 1)
