"""Shared fixtures for the camshaft.runner tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch


def _register_helper_module(name: str) -> None:
    """Make ``import <name>`` work for a helper module beside this file.

    pytest's importlib mode puts no test directory on sys.path. The helpers are modules
    of their own: ``runner_toys`` also runs as a script (the resume tests), and
    ``_fake_runner`` is shared by the default-hook tests.
    """
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register_helper_module("runner_toys")
_register_helper_module("_fake_runner")

# --- parameter schedulers ----------------------------------------------------------


def _scheduler_optimizer(
    kind: str = "sgd", lrs: tuple[float, ...] = (0.1, 0.02)
) -> torch.optim.Optimizer:
    """An optimizer with one param group per learning rate (SGD with momentum, or Adam)."""
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lrs[0], betas=(0.9, 0.999))
    if kind == "adagrad":
        return torch.optim.Adagrad(groups, lr=lrs[0])
    raise ValueError(f"unknown optimizer kind {kind!r}")


@pytest.fixture
def make_optimizer() -> Callable[..., torch.optim.Optimizer]:
    """Factory: ``make_optimizer('sgd' | 'adam' | 'adagrad', lrs=(0.1, 0.02))``."""
    return _scheduler_optimizer


# --- optimizer wrappers --------------------------------------------------------------


class RecordingNoSyncModel(torch.nn.Module):
    """A linear model with a DDP-like ``no_sync()`` that records which forwards ran inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.in_no_sync = False
        self.forwards_in_no_sync: list[bool] = []

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.in_no_sync = True
        try:
            yield
        finally:
            self.in_no_sync = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards_in_no_sync.append(self.in_no_sync)
        return self.linear(x)


@pytest.fixture
def no_sync_model() -> RecordingNoSyncModel:
    """A fresh :class:`RecordingNoSyncModel` (seeded)."""
    torch.manual_seed(0)
    return RecordingNoSyncModel()


@pytest.fixture
def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    """20 seeded samples of a noisy linear target: inputs (20, 3), targets (20, 1)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(20, 3, generator=generator)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(
        20, 1, generator=generator
    )
    return inputs, targets


# --- logging and evaluation (message hubs, loggers) ------------------------------------


@pytest.fixture(autouse=True)
def _fresh_named_instances() -> Iterator[None]:
    """Every test starts and ends without named MessageHubs, MMLoggers or Visualizers.

    ``get_instance``/``get_current_instance`` keep instances per class; resetting them
    also closes log files and removes the console handler from the ``camshaft`` logger.
    """
    from camshaft.runner.logging import MessageHub, MMLogger
    from camshaft.runner.visualization import Visualizer

    for cls in (MessageHub, MMLogger, Visualizer):
        cls._reset_instances()
    yield
    for cls in (MessageHub, MMLogger, Visualizer):
        cls._reset_instances()
