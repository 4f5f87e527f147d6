"""``OptimWrapper``: backward, step and zero_grad behind one call, with accumulation and clipping.

A model's ``train_step`` runs its forward pass inside ``optim_wrapper.optim_context(model)``
and hands the loss to ``optim_wrapper.update_params(loss)``; it never sees gradient
accumulation, clipping or mixed precision. Those are the wrapper's, configured once in
``optim_wrapper=dict(...)``.

Accumulation windows, exactly. ``inner_count`` counts the micro-steps (``backward``
calls) so far; ``initialize_count_status`` sets it on resume. With
``accumulative_counts=a`` the micro-steps fall into windows ``[0, a), [a, 2a), ...`` and
the optimizer steps when a window closes. If ``initialize_count_status`` gave
``max_counts=m`` and ``a`` does not divide ``m``, the last window ``[m - m % a, m)`` is
shorter: its losses are divided by its own length ``m % a``, every other loss by ``a``,
so each update applies the mean gradient of the micro-steps it consumed (with
``a=3, m=10``: divisors 3 for micro-steps 1-9 and 1 for the 10th; steps after 3, 6, 9
and 10). Without ``max_counts`` every window is full; beyond ``max_counts`` the windows
are full again. On the micro-steps that will not step, ``optim_context`` enters
``model.no_sync()`` when the model has one (DDP, FSDP), so gradients are all-reduced
once per window instead of once per micro-step.

Clipping happens just before the step, on the accumulated gradients; the total norm
before and after it is kept as tensors (:attr:`OptimWrapper.grad_norm`,
:attr:`OptimWrapper.clipped_grad_norm`) for the logger to read, without a device sync.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from camshaft.runner._registry import OPTIM_WRAPPERS
from camshaft.runner.optim._clip import GradClipper

__all__ = ["OptimWrapper"]


_NO_CONTEXT: AbstractContextManager[Any] = nullcontext()


def _check_count(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return value


@OPTIM_WRAPPERS.register_module()
class OptimWrapper:
    """Update a model's parameters from a loss: scale, backward, clip, step, zero_grad.

    Satisfies ``camshaft.model.OptimWrapperProtocol``, so ``BaseModel.train_step``
    drives it. The module docstring gives the exact accumulation rule.

    Args:
        optimizer: The optimizer whose parameters are updated.
        accumulative_counts: Micro-steps whose gradients are accumulated into one
            optimizer step. Defaults to 1 (step on every call).
        clip_grad: ``None`` (no clipping), ``dict(max_norm=..., norm_type=2)`` or
            ``dict(type='value', clip_value=...)``. Copied, never modified.

    Raises:
        TypeError: ``optimizer`` is not a ``torch.optim.Optimizer``, or ``clip_grad``
            is not a dict.
        ValueError: ``accumulative_counts`` is not an int >= 1, or ``clip_grad`` has
            an unknown type or key.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> optim_wrapper = OptimWrapper(
        ...     torch.optim.SGD(model.parameters(), lr=0.1),
        ...     accumulative_counts=2, clip_grad=dict(max_norm=1.0))
        >>> for _ in range(4):
        ...     with optim_wrapper.optim_context(model):
        ...         loss = model(torch.ones(4, 2)).pow(2).mean()
        ...     optim_wrapper.update_params(loss)  # steps after the 2nd and 4th call
        >>> optim_wrapper.get_lr()
        {'lr': [0.1]}
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accumulative_counts: int = 1,
        clip_grad: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"`optimizer` must be a torch.optim.Optimizer, got "
                f"{type(optimizer).__name__}: {optimizer!r:.200}. HINT: to build one from a "
                "config, call build_optim_wrapper(model, dict(optimizer=dict(type='SGD', "
                "lr=0.01)))."
            )
        self.optimizer = optimizer
        self._accumulative_counts = _check_count(accumulative_counts, "accumulative_counts", 1)
        self._clipper = None if clip_grad is None else GradClipper(clip_grad)
        self._inner_count = 0
        self._max_counts = -1
        self._last_window_start = -1
        self._grad_norm: torch.Tensor | None = None
        self._clipped_grad_norm: torch.Tensor | None = None
        self.loss_guard: Callable[[torch.Tensor], bool] | None = None
        """Asked about each loss before backward (the Runner installs a
        :class:`~camshaft.runner.optim.NonFiniteGuard`); False skips the step."""

    # --- the training step ------------------------------------------------------------

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Scale ``loss`` for accumulation, backpropagate it, and step if the window closes.

        Args:
            loss: The scalar loss of this micro-step.
            step_kwargs: Keyword arguments for :meth:`step` (the optimizer's ``step``).
            zero_kwargs: Keyword arguments for :meth:`zero_grad`.

        When :attr:`loss_guard` is set and returns False (a NaN/inf loss under the
        ``'skip'`` policy), the micro-step is counted but nothing is backpropagated
        and the gradients of the window are dropped.

        Raises:
            TypeError: ``loss`` is not a tensor.
            NonFiniteLossError: the guard found a NaN/inf loss (policy ``'error'``).
        """
        if loss.__class__ is not torch.Tensor and not isinstance(loss, torch.Tensor):
            raise TypeError(
                f"`loss` must be a scalar torch.Tensor, got {type(loss).__name__}. "
                "HINT: reduce a dict of losses first, e.g. with BaseModel.parse_losses."
            )
        if self.loss_guard is not None and not self.loss_guard(loss):
            self._inner_count += 1
            self.zero_grad(**(zero_kwargs or {}))
            return
        cls = type(self)
        if (
            self._accumulative_counts == 1
            and cls.scale_loss is OptimWrapper.scale_loss
            and cls.should_update is OptimWrapper.should_update
        ):
            # Without accumulation every micro-step is a whole window: no scaling, and
            # always a step. When backward/step/zero_grad are this class's own, their
            # bodies are run inline: five calls saved on every iteration.
            if (
                cls.backward is OptimWrapper.backward
                and cls.step is OptimWrapper.step
                and cls.zero_grad is OptimWrapper.zero_grad
                and self._clipper is None
            ):
                loss.backward()
                self._inner_count += 1
                optimizer = self.optimizer
                if step_kwargs:
                    optimizer.step(**step_kwargs)
                else:
                    optimizer.step()
                if zero_kwargs:
                    optimizer.zero_grad(**zero_kwargs)
                else:
                    optimizer.zero_grad()
                return
            self.backward(loss)
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
            return
        self.backward(self.scale_loss(loss))
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Divide ``loss`` by the length of the accumulation window it belongs to.

        Args:
            loss: The loss of the micro-step about to be backpropagated.

        Returns:
            ``loss / window_length`` (``loss`` itself without accumulation).
        """
        count = self._inner_count
        if self._accumulative_counts == 1:
            return loss
        if self._last_window_start <= count < self._max_counts:
            return loss / (self._max_counts - self._last_window_start)
        return loss / self._accumulative_counts

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Backpropagate ``loss`` and count one micro-step.

        Subclasses that override it must increment ``_inner_count`` too.

        Args:
            loss: The (already scaled) loss.
            **kwargs: Passed to ``loss.backward``.
        """
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs: Any) -> None:
        """Clip the gradients (if ``clip_grad`` was given), then step the optimizer.

        Args:
            **kwargs: Passed to the optimizer's ``step``.
        """
        if self._clipper is not None:
            self._clip_grad()
        self.optimizer.step(**kwargs)

    def zero_grad(self, **kwargs: Any) -> None:
        """Zero the gradients.

        Args:
            **kwargs: Passed to the optimizer's ``zero_grad`` (``set_to_none``).
        """
        self.optimizer.zero_grad(**kwargs)

    def _clip_grad(self) -> None:
        """Clip the gradients now and record the norms (nothing without ``clip_grad``)."""
        clipper = self._clipper
        if clipper is None:
            return
        params = [
            param
            for group in self.optimizer.param_groups
            for param in group["params"]
            if param.requires_grad and param.grad is not None
        ]
        if not params:
            self._grad_norm = self._clipped_grad_norm = None
            return
        self._grad_norm, self._clipped_grad_norm = clipper(params)

    def optim_context(self, model: nn.Module) -> AbstractContextManager[Any]:
        """Return the context to run the forward pass of one micro-step in.

        On a micro-step that will not step the optimizer, it is ``model.no_sync()``
        if the model has one, so DDP and FSDP skip the gradient all-reduce until the
        window's last micro-step; otherwise a shared no-op context (this runs every
        iteration, so it builds nothing).

        Args:
            model: The model being trained (a DDP wrapper, or any module).

        Returns:
            A context manager.
        """
        if (
            self._accumulative_counts == 1 and type(self).should_sync is OptimWrapper.should_sync
        ) or self.should_sync():
            return _NO_CONTEXT
        no_sync = getattr(model, "no_sync", None)
        return _NO_CONTEXT if no_sync is None else no_sync()

    # --- accumulation state -------------------------------------------------------------

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Tell the wrapper where training starts and ends, so the last window is exact.

        Args:
            model: The model being trained; a warning is issued if it has BatchNorm
                layers and gradients are accumulated (their statistics see
                micro-batches, not the accumulated batch).
            init_counts: Micro-steps already done (the resumed iteration).
            max_counts: Micro-steps in the whole run (the loop's ``max_iters``).

        Raises:
            ValueError: a count is not an int, ``init_counts < 0`` or
                ``max_counts < init_counts``.
        """
        _check_count(init_counts, "init_counts", 0)
        _check_count(max_counts, "max_counts", max(init_counts, 1))
        counts = self._accumulative_counts
        self._inner_count = init_counts
        self._max_counts = max_counts
        self._last_window_start = max_counts // counts * counts
        if init_counts % counts != 0:
            warnings.warn(
                f"resuming at micro-step {init_counts}, which is not a multiple of "
                f"accumulative_counts={counts}: the gradients accumulated before the "
                "checkpoint are lost, so the first update averages fewer micro-batches.",
                stacklevel=2,
            )
        if counts > 1 and any(isinstance(module, _BatchNorm) for module in model.modules()):
            warnings.warn(
                f"the model has BatchNorm layers and accumulative_counts={counts}: their "
                "statistics are computed per micro-batch, so accumulation is not exactly "
                "equivalent to a larger batch.",
                stacklevel=2,
            )

    def should_update(self) -> bool:
        """Whether the micro-step just backpropagated closes its window (so the optimizer steps)."""
        count = self._inner_count
        return count % self._accumulative_counts == 0 or count == self._max_counts

    def should_sync(self) -> bool:
        """Whether the next micro-step closes its window (so its gradients must be synced)."""
        count = self._inner_count + 1
        return count % self._accumulative_counts == 0 or count == self._max_counts

    @property
    def inner_count(self) -> int:
        """Micro-steps (``backward`` calls) so far, including ``init_counts``."""
        return self._inner_count

    @property
    def accumulative_counts(self) -> int:
        """Micro-steps accumulated into one optimizer step."""
        return self._accumulative_counts

    # --- clipping results -----------------------------------------------------------------

    @property
    def clip_grad_kwargs(self) -> dict[str, Any] | None:
        """The keyword arguments passed to torch's clip function (``type`` removed), or None."""
        return None if self._clipper is None else dict(self._clipper.kwargs)

    @property
    def grad_norm(self) -> torch.Tensor | None:
        """Total gradient norm before the last clipping, as a 0-d tensor (None before any)."""
        return self._grad_norm

    @property
    def clipped_grad_norm(self) -> torch.Tensor | None:
        """Total gradient norm after the last clipping, as a 0-d tensor (None before any)."""
        return self._clipped_grad_norm

    # --- the optimizer's state and hyper-parameters ----------------------------------

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's ``param_groups`` (the same list, so schedulers can edit it)."""
        return self.optimizer.param_groups

    @property
    def defaults(self) -> dict[str, Any]:
        """The optimizer's ``defaults``."""
        return self.optimizer.defaults

    def get_lr(self) -> dict[str, list[float]]:
        """Return ``{'lr': [lr of each param group]}``."""
        return {"lr": [group["lr"] for group in self.optimizer.param_groups]}

    def get_momentum(self) -> dict[str, list[float]]:
        """Return ``{'momentum': [...]}``: each group's ``momentum``, else ``betas[0]``, else 0."""
        momentum: list[float] = []
        for group in self.optimizer.param_groups:
            if "momentum" in group:
                momentum.append(group["momentum"])
            elif "betas" in group:
                momentum.append(group["betas"][0])
            else:
                momentum.append(0)
        return {"momentum": momentum}

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer's state dict."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load an optimizer state dict (the argument is not modified).

        Args:
            state_dict: What :meth:`state_dict` returned.
        """
        self.optimizer.load_state_dict(state_dict)

    def __repr__(self) -> str:
        clip = "None" if self._clipper is None else f"{self._clipper.kind}: {self._clipper.kwargs}"
        return (
            f"{type(self).__name__}(accumulative_counts={self._accumulative_counts}, "
            f"clip_grad={clip}, optimizer=\n{self.optimizer!r})"
        )
