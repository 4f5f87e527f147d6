"""The shape of an optimizer wrapper, as the model package sees it.

:meth:`BaseModel.train_step` hands the loss to an *optimizer wrapper*, which owns
backward, the optimizer step, gradient accumulation, clipping and mixed precision.
The wrappers themselves (``OptimWrapper``, ``AmpOptimWrapper``, ...) live in
``camshaft.runner.optim``, two floors up; the model package may not import them. So it
types the argument structurally: :class:`OptimWrapperProtocol` lists the two methods
``train_step`` calls, and any object that has them will do — the runner's wrappers,
MMEngine's, or a ten-line test double.

The protocol is ``runtime_checkable``, so ``isinstance(obj, OptimWrapperProtocol)``
checks that both methods exist (not their signatures); ``train_step`` uses it to turn
"passed a bare ``torch.optim.Optimizer``" into an error that says what to pass instead.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["OptimWrapperProtocol"]


@runtime_checkable
class OptimWrapperProtocol(Protocol):
    """What :meth:`BaseModel.train_step` needs from an optimizer wrapper.

    An implementation updates the parameters from a loss (``update_params``) and
    provides a context to run the forward pass in (``optim_context``), where it can
    switch on autocast or skip the gradient all-reduce of a non-final accumulation
    step.

    Example:
        >>> import contextlib
        >>> import torch
        >>> class PlainWrapper:
        ...     def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        ...         self.optimizer = optimizer
        ...     def update_params(self, loss, step_kwargs=None, zero_kwargs=None):
        ...         loss.backward()
        ...         self.optimizer.step(**(step_kwargs or {}))
        ...         self.optimizer.zero_grad(**(zero_kwargs or {}))
        ...     def optim_context(self, model):
        ...         return contextlib.nullcontext()
        >>> net = torch.nn.Linear(2, 1)
        >>> isinstance(PlainWrapper(torch.optim.SGD(net.parameters(), lr=0.1)),
        ...            OptimWrapperProtocol)
        True
        >>> isinstance(torch.optim.SGD(net.parameters(), lr=0.1), OptimWrapperProtocol)
        False
    """

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Backpropagate ``loss``, step the optimizer and zero the gradients.

        Args:
            loss: The scalar loss of this iteration.
            step_kwargs: Keyword arguments for the optimizer's ``step``.
            zero_kwargs: Keyword arguments for the optimizer's ``zero_grad``.
        """
        ...

    def optim_context(self, model: nn.Module) -> AbstractContextManager[Any]:
        """Return the context that ``model``'s forward pass of this iteration runs in.

        Args:
            model: The model being trained (the wrapper may, for example, disable
                its gradient synchronisation on a non-final accumulation step).

        Returns:
            A context manager; what it yields is not used.
        """
        ...
