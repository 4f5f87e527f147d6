"""``MMDistributedDataParallel``: torch's DDP with the model's three step methods.

The runner's loops call ``model.train_step(data, optim_wrapper)``,
``model.val_step(data)`` and ``model.test_step(data)``, whether the model is wrapped
or not. DDP synchronises gradients only for a forward pass that goes through the
DDP object, so :meth:`MMDistributedDataParallel.train_step` runs the ``'loss'``
forward through ``self`` (not ``self.module``), inside
``optim_wrapper.optim_context(self)``: there the optimizer wrapper enters
``self.no_sync()`` on the micro-steps of a gradient-accumulation window that do not
update, and DDP skips their all-reduce. Validation and testing need no gradients, so
they go straight to the wrapped model.

The wrapped model must look like ``camshaft.model.BaseModel`` (a
``data_preprocessor`` and ``parse_losses``); this is checked when ``train_step`` is
first called, so a plain module can still be wrapped for its forward alone.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from camshaft.dist._registry import MODEL_WRAPPERS
from camshaft.dist._wrapper_utils import (
    base_model_of,
    check_optim_wrapper,
    check_wrappable,
    run_forward,
)
from camshaft.model import OptimWrapperProtocol

__all__ = ["MMDistributedDataParallel", "unused_parameters"]

_logger = logging.getLogger("camshaft.dist")


def unused_parameters(loss: torch.Tensor, model: nn.Module) -> list[str]:
    """Names of ``model``'s trainable parameters that ``loss`` does not depend on.

    Walks the autograd graph from ``loss`` and collects the leaf tensors it reaches.
    """
    reached: set[int] = set()
    pending = [loss.grad_fn]
    seen: set[int] = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf
        if isinstance(variable, torch.Tensor):
            reached.add(id(variable))
        pending.extend(next_node for next_node, _ in node.next_functions)
    return [
        name
        for name, param in model.named_parameters()
        if param.requires_grad and id(param) not in reached
    ]


@MODEL_WRAPPERS.register_module()
class MMDistributedDataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that the runner's loops can drive.

    Args:
        module: The model to replicate, usually a ``camshaft.model.BaseModel``,
            already on this process's device. It must not be wrapped already.
        detect_anomalous_params: After each forward in :meth:`train_step`, log (at
            ERROR, on the ``camshaft.dist`` logger) the names of trainable parameters
            the loss does not depend on. DDP fails on them unless
            ``find_unused_parameters=True``. A debugging aid: it walks the autograd
            graph every step.
        **kwargs: Passed to ``torch.nn.parallel.DistributedDataParallel``
            (``device_ids``, ``broadcast_buffers``, ``find_unused_parameters``, ...).

    Raises:
        TypeError: ``module`` is not an ``nn.Module``, is already a model wrapper, or
            ``detect_anomalous_params`` is not a bool.
        RuntimeError: no default process group exists.

    Example:
        >>> # after init_dist('pytorch'), in every process:
        >>> ddp = MMDistributedDataParallel(model)  # doctest: +SKIP
        >>> log_vars = ddp.train_step(batch, optim_wrapper)  # doctest: +SKIP
    """

    def __init__(
        self, module: nn.Module, detect_anomalous_params: bool = False, **kwargs: Any
    ) -> None:
        check_wrappable(module, type(self).__name__)
        if not isinstance(detect_anomalous_params, bool):
            raise TypeError(
                f"`detect_anomalous_params` must be a bool, got {detect_anomalous_params!r}"
            )
        super().__init__(module=module, **kwargs)
        self.detect_anomalous_params = detect_anomalous_params

    def train_step(self, data: Any, optim_wrapper: OptimWrapperProtocol) -> dict[str, torch.Tensor]:
        """Preprocess, forward through DDP, reduce the losses and update the parameters.

        Args:
            data: The batch from the DataLoader: a dict or a list/tuple.
            optim_wrapper: Updates the parameters (see ``OptimWrapperProtocol``);
                its ``optim_context(self)`` surrounds preprocessing and the forward.

        Returns:
            The log variables from the model's ``parse_losses``.

        Raises:
            TypeError: the wrapped model lacks ``data_preprocessor`` or
                ``parse_losses``, ``optim_wrapper`` lacks the wrapper methods, or
                the preprocessed batch is neither a dict nor a list/tuple.
        """
        model = base_model_of(self.module, type(self).__name__)
        check_optim_wrapper(optim_wrapper, type(self).__name__)
        with optim_wrapper.optim_context(self):
            data = model.data_preprocessor(data, True)
            losses = run_forward(self, data, mode="loss")
        parsed_loss, log_vars = model.parse_losses(losses)
        if self.detect_anomalous_params:
            self._report_unused(parsed_loss)
        optim_wrapper.update_params(parsed_loss)
        result: dict[str, torch.Tensor] = log_vars
        return result

    def val_step(self, data: Any) -> Any:
        """Return the wrapped model's ``val_step(data)`` (no gradients to synchronise)."""
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        """Return the wrapped model's ``test_step(data)`` (no gradients to synchronise)."""
        return self.module.test_step(data)

    def _run_forward(self, data: Any, mode: str) -> Any:
        """Call the DDP forward with ``data`` unpacked, as ``BaseModel._run_forward`` does."""
        return run_forward(self, data, mode)

    def _report_unused(self, loss: torch.Tensor) -> None:
        names = unused_parameters(loss, self.module)
        if names:
            _logger.error(
                "%s: %d trainable parameter(s) got no gradient from the loss: %s. DDP "
                "fails on the next step unless find_unused_parameters=True; use them in "
                "the loss, freeze them (requires_grad=False), or pass "
                "find_unused_parameters=True",
                type(self).__name__,
                len(names),
                ", ".join(names),
            )
