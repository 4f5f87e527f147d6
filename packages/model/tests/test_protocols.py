"""OptimWrapperProtocol: structural, runtime-checkable, no optimizer code imported."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from camshaft.model import OptimWrapperProtocol


def test_the_test_double_satisfies_the_protocol(
    make_optim_wrapper: Callable[[nn.Module], Any],
) -> None:
    assert isinstance(make_optim_wrapper(nn.Linear(2, 1)), OptimWrapperProtocol)


def test_a_bare_optimizer_does_not() -> None:
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    assert not isinstance(optimizer, OptimWrapperProtocol)


def test_both_methods_are_required() -> None:
    class OnlyUpdate:
        def update_params(self, loss: torch.Tensor) -> None: ...

    class OnlyContext:
        def optim_context(self, model: nn.Module) -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

    assert not isinstance(OnlyUpdate(), OptimWrapperProtocol)
    assert not isinstance(OnlyContext(), OptimWrapperProtocol)


def test_a_wrapper_written_without_inheriting_anything_matches() -> None:
    # MMEngine-style wrappers are plain classes; nothing needs to subclass the protocol.
    class ThirdPartyWrapper:
        def update_params(
            self,
            loss: torch.Tensor,
            step_kwargs: dict[str, Any] | None = None,
            zero_kwargs: dict[str, Any] | None = None,
        ) -> None: ...

        def optim_context(self, model: nn.Module) -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

    assert isinstance(ThirdPartyWrapper(), OptimWrapperProtocol)


def test_the_model_package_imports_no_optimizer_or_distributed_code() -> None:
    code = (
        "import sys, camshaft.model; "
        "bad = sorted(m for m in sys.modules if m.startswith(('camshaft.runner', "
        "'camshaft.dist', 'camshaft.preprocess'))); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_no_module_of_the_package_imports_forbidden_code() -> None:
    # The layering rule: camshaft.model imports camshaft.init, camshaft.registry and torch,
    # never optimizer or distributed code, nor a package above it.
    import ast
    from pathlib import Path

    import camshaft.model

    forbidden = (
        "torch.distributed",
        "torch.optim",
        "camshaft.runner",
        "camshaft.dist",
        "camshaft.preprocess",
    )
    package_dir = Path(camshaft.model.__file__).parent
    offenders = []
    for path in sorted(package_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == []
