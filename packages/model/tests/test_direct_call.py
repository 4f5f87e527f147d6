"""direct_forward: ``forward`` called straight only when ``__call__`` would add nothing."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as torch_module

from camshaft.model import BaseDataPreprocessor, BaseModel
from camshaft.model._direct_call import HOOK_ATTRIBUTES, HOOK_TABLES, direct_forward


def _no_op_hook(*args: Any) -> None:
    return None


# --- torch's own shortcut, pinned ----------------------------------------------------


def _shortcut_condition() -> ast.expr:
    """The test of the ``if`` in ``nn.Module._call_impl`` that returns ``forward_call``."""
    source = textwrap.dedent(inspect.getsource(nn.Module._call_impl))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and any(
            isinstance(stmt, ast.Return)
            and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id == "forward_call"
            for stmt in node.body
        ):
            return node.test
    raise AssertionError("nn.Module._call_impl has no `if ...: return forward_call(...)`")


def test_the_hooks_checked_are_those_torch_checks_before_its_own_shortcut() -> None:
    """A torch that adds a kind of hook fails here rather than silently skipping it."""
    condition = _shortcut_condition()
    attributes = {
        node.attr
        for node in ast.walk(condition)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }
    tables = {node.id for node in ast.walk(condition) if isinstance(node, ast.Name)} - {"self"}
    assert attributes == set(HOOK_ATTRIBUTES)
    assert tables == set(HOOK_TABLES)


def test_torch_calls_the_compiled_call_or_call_impl_only() -> None:
    names = set(nn.Module._wrapped_call_impl.__code__.co_names)
    assert names == {"_compiled_call_impl", "_call_impl"}


# --- when the shortcut is taken ----------------------------------------------------------


def test_a_plain_module_gives_its_bound_forward() -> None:
    layer = nn.Linear(2, 3)
    forward = direct_forward(layer)
    assert forward == layer.forward
    inputs = torch.randn(4, 2)
    assert forward is not None
    assert torch.equal(forward(inputs), layer(inputs))


def test_an_instance_forward_is_the_one_returned() -> None:
    """cfg.compile sets ``model.forward``; torch's __call__ would call that one too."""
    layer = nn.Linear(2, 2)
    replacement = lambda x: x * 2  # noqa: E731
    layer.forward = replacement  # type: ignore[method-assign]
    assert direct_forward(layer) is replacement


# --- when it is not ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "register",
    [
        lambda m: m.register_forward_hook(_no_op_hook),
        lambda m: m.register_forward_pre_hook(_no_op_hook),
        lambda m: m.register_full_backward_hook(_no_op_hook),
        lambda m: m.register_full_backward_pre_hook(_no_op_hook),
        lambda m: m.register_forward_hook(_no_op_hook, always_call=True),
    ],
    ids=["forward", "forward_pre", "full_backward", "full_backward_pre", "always_call"],
)
def test_a_module_hook_forces_the_usual_call(register: Callable[[nn.Module], Any]) -> None:
    layer = nn.Linear(2, 2)
    handle = register(layer)
    assert direct_forward(layer) is None
    handle.remove()
    assert direct_forward(layer) == layer.forward


@pytest.fixture
def global_hook(request: pytest.FixtureRequest) -> Iterator[None]:
    register = request.param
    handle = register(_no_op_hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.parametrize(
    "global_hook",
    [
        nn.modules.module.register_module_forward_hook,
        nn.modules.module.register_module_forward_pre_hook,
        nn.modules.module.register_module_full_backward_hook,
        nn.modules.module.register_module_full_backward_pre_hook,
    ],
    indirect=True,
    ids=["forward", "forward_pre", "full_backward", "full_backward_pre"],
)
def test_a_global_hook_forces_the_usual_call(global_hook: None) -> None:
    assert direct_forward(nn.Linear(2, 2)) is None


def test_a_rebound_global_table_is_read_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_module, "_global_forward_hooks", {0: _no_op_hook})
    assert direct_forward(nn.Linear(2, 2)) is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile imports torch.jit
def test_a_module_compiled_in_place_forces_the_usual_call() -> None:
    layer = nn.Linear(2, 2)
    layer.compile()  # sets _compiled_call_impl; nothing is compiled until a call
    assert direct_forward(layer) is None


def test_a_class_with_its_own_call_forces_the_usual_call() -> None:
    class Counting(nn.Linear):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return super().__call__(*args, **kwargs)

    assert direct_forward(Counting(2, 2)) is None


def test_a_patched_module_call_forces_the_usual_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.fx's tracer patches nn.Module.__call__ while it traces."""
    original = nn.Module.__call__

    def patched(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__call__", patched)
    assert direct_forward(nn.Linear(2, 2)) is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_under_jit_trace_the_usual_call_is_taken() -> None:
    seen: list[object] = []

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(2, 2)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            seen.append(direct_forward(self.inner))
            return self.inner(inputs)

    outer = Outer()
    seen.append(direct_forward(outer.inner))
    torch.jit.trace(outer, torch.ones(1, 2), check_trace=False)  # no untraced re-run
    assert seen[0] is not None
    assert seen[1:]
    assert all(entry is None for entry in seen[1:])


def test_a_module_without_the_hook_dicts_takes_the_usual_call() -> None:
    layer = nn.Linear(2, 2)
    del layer.__dict__["_forward_pre_hooks"]
    assert direct_forward(layer) is None


# --- BaseModel's steps keep every hook ---------------------------------------------------


class _Regressor(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor, targets: Any = None, mode: str = "tensor") -> Any:
        out = self.linear(inputs)
        if mode == "loss":
            return {"loss": F.mse_loss(out, targets)}
        return out


class _NoContextWrapper:
    def __init__(self, model: nn.Module) -> None:
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def optim_context(self, model: nn.Module) -> Any:
        return nullcontext()

    def update_params(
        self, loss: torch.Tensor, step_kwargs: Any = None, zero_kwargs: Any = None
    ) -> None:
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


@pytest.mark.parametrize("batch_kind", ["tuple", "dict"])
def test_hooks_on_the_model_and_preprocessor_run_in_every_step(batch_kind: str) -> None:
    model = _Regressor()
    calls: list[str] = []
    model.register_forward_hook(lambda module, args, output: calls.append("model"))
    model.data_preprocessor.register_forward_pre_hook(
        lambda module, args: calls.append("preprocessor")
    )
    inputs, targets = torch.randn(4, 3), torch.randn(4, 1)
    batch: Any = (inputs, targets)
    if batch_kind == "dict":
        batch = {"inputs": inputs, "targets": targets}
    model.train_step(batch, _NoContextWrapper(model))
    model.val_step(batch)
    model.test_step(batch)
    assert calls == ["preprocessor", "model"] * 3


def test_a_forward_pre_hook_that_replaces_the_batch_is_honoured() -> None:
    model = _Regressor()
    doubled = (torch.ones(2, 3) * 2, torch.zeros(2, 1))
    model.data_preprocessor.register_forward_pre_hook(lambda module, args: (doubled, args[1]))
    out = model.val_step((torch.ones(2, 3), torch.zeros(2, 1)))
    assert torch.equal(out, model.linear(doubled[0]))


def test_steps_without_hooks_give_what_the_usual_call_gives() -> None:
    """The shortcut and ``__call__`` train to the same weights, bit for bit."""
    torch.manual_seed(0)
    plain, hooked = _Regressor(), _Regressor()
    hooked.load_state_dict(plain.state_dict())
    hooked.register_forward_hook(_no_op_hook)  # forces the usual call
    hooked.data_preprocessor.register_forward_hook(_no_op_hook)
    assert isinstance(plain.data_preprocessor, BaseDataPreprocessor)
    wrappers = _NoContextWrapper(plain), _NoContextWrapper(hooked)
    for _ in range(3):
        batch = (torch.randn(4, 3), torch.randn(4, 1))
        plain.train_step(batch, wrappers[0])
        hooked.train_step(batch, wrappers[1])
    assert torch.equal(plain.linear.weight, hooked.linear.weight)
    assert torch.equal(plain.linear.bias, hooked.linear.bias)
