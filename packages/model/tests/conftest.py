"""Shared fixtures for the camshaft.model tests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

# --- optimizer wrapper test double (base model, protocols) -------------------------


class SGDWrapperDouble:
    """The least an optimizer wrapper does: backward, step, zero_grad; records calls."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.losses: list[torch.Tensor] = []
        self.contexts: list[nn.Module] = []
        self.inside_context = False

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.losses.append(loss)
        loss.backward()
        self.optimizer.step(**(step_kwargs or {}))
        self.optimizer.zero_grad(**(zero_kwargs or {}))

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        self.contexts.append(model)
        self.inside_context = True
        try:
            yield
        finally:
            self.inside_context = False


@pytest.fixture
def make_optim_wrapper() -> Callable[[nn.Module, float], SGDWrapperDouble]:
    """Build an :class:`SGDWrapperDouble` around ``torch.optim.SGD(model, lr)``."""

    def make(model: nn.Module, lr: float = 0.1) -> SGDWrapperDouble:
        return SGDWrapperDouble(torch.optim.SGD(model.parameters(), lr=lr))

    return make


# --- init report logging (base module, init report, meta init) ----------------------


@pytest.fixture
def camshaft_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` capturing the ``camshaft`` logger from DEBUG up."""
    caplog.set_level(logging.DEBUG, logger="camshaft")
    return caplog
