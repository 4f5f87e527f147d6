"""``BaseModel``: the boundary between a model and the loops that drive it.

A model says *what* it computes in ``forward(..., mode)``; the runner's loops decide
*when*, through three fixed steps:

* ``train_step(data, optim_wrapper)``: preprocess (``training=True``), forward in
  ``'loss'`` mode inside ``optim_wrapper.optim_context(self)``, reduce the loss dict
  with :meth:`BaseModel.parse_losses`, hand the total to
  ``optim_wrapper.update_params``, and return the log variables.
* ``val_step(data)`` / ``test_step(data)``: preprocess (``training=False``), forward
  in ``'predict'`` mode, and return what the metrics consume.

A batch that is a dict reaches ``forward`` as keyword arguments (``**data``); a list
or tuple as positional ones (``*data``).

Rules beyond MMEngine: the log variables stay detached tensors (no ``.item()``, so no
device sync in the training loop; the logger converts them when it writes a line),
``log_vars['loss']`` is always the total that was optimised, and the data
preprocessor's device is read from the module itself, so ``.to()`` / ``.cuda()`` /
``.cpu()`` need no override to keep it current.
"""

from __future__ import annotations

import weakref
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from camshaft.model._base_module import BaseModule
from camshaft.model._data_preprocessor import BaseDataPreprocessor
from camshaft.model._direct_call import direct_forward
from camshaft.model._init_cfg import InitCfg
from camshaft.model._protocols import OptimWrapperProtocol
from camshaft.model._registry import MODELS

__all__ = ["BaseModel"]


class BaseModel(BaseModule, metaclass=ABCMeta):
    """Base class for models that the runner trains, validates and tests.

    Subclasses implement :meth:`forward`; the steps are inherited.

    Args:
        data_preprocessor: The module every batch passes through before
            ``forward``: an ``nn.Module``, a config dict built from ``MODELS``
            (``type`` defaults to ``'BaseDataPreprocessor'``), or None for a plain
            :class:`BaseDataPreprocessor`. Kept as the ``data_preprocessor``
            submodule, so it moves with the model.
        init_cfg: Weight initialisation config, a dict or a list of dicts; see
            ``BaseModule``.

    Raises:
        TypeError: ``data_preprocessor`` is none of the above.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from torch import nn
        >>> class Regressor(BaseModel):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = nn.Linear(2, 1)
        ...     def forward(self, inputs, targets, mode='tensor'):
        ...         out = self.linear(inputs)
        ...         if mode == 'loss':
        ...             return dict(loss_mse=F.mse_loss(out, targets))
        ...         return out
        >>> model = Regressor()
        >>> model.val_step((torch.ones(4, 2), torch.zeros(4, 1))).shape
        torch.Size([4, 1])
    """

    data_preprocessor: nn.Module

    def __init__(
        self,
        data_preprocessor: dict[str, Any] | nn.Module | None = None,
        init_cfg: InitCfg | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if data_preprocessor is None:
            self.data_preprocessor = BaseDataPreprocessor()
        elif isinstance(data_preprocessor, nn.Module):
            self.data_preprocessor = data_preprocessor
        elif isinstance(data_preprocessor, Mapping):
            # `default_args` fills a missing `type` without touching the caller's dict.
            self.data_preprocessor = MODELS.build(
                data_preprocessor, default_args={"type": "BaseDataPreprocessor"}
            )
        else:
            raise TypeError(
                f"`data_preprocessor` must be an nn.Module, a config dict or None, "
                f"got {type(data_preprocessor).__name__}: {data_preprocessor!r}"
            )

    @abstractmethod
    def forward(
        self,
        inputs: Any,
        data_samples: Any = None,
        mode: str = "tensor",
    ) -> Any:
        """Compute the model's output for one preprocessed batch.

        Subclasses may name the arguments as their batches require (a dict batch
        is unpacked into keyword arguments, a tuple batch into positional ones);
        they must accept ``mode``.

        Args:
            inputs: The batch inputs.
            data_samples: Annotations or metadata of the batch, if any.
            mode: ``'loss'`` returns a dict of losses (tensors or lists of
                tensors) for :meth:`parse_losses`; ``'predict'`` returns the
                predictions the metrics take (a list or tuple); ``'tensor'``
                returns the raw output, without post-processing.

        Returns:
            What ``mode`` asks for.
        """

    def train_step(self, data: Any, optim_wrapper: OptimWrapperProtocol) -> dict[str, torch.Tensor]:
        """Run one optimisation step on a batch.

        Args:
            data: The batch from the DataLoader: a dict or a list/tuple.
            optim_wrapper: Updates the parameters from the loss; anything with
                ``update_params`` and ``optim_context`` (see
                :class:`OptimWrapperProtocol`), usually the runner's ``OptimWrapper``.

        Returns:
            The log variables from :meth:`parse_losses`: ``'loss'`` (the total
            that was optimised) first, then every entry of the loss dict, as
            detached tensors.

        Raises:
            TypeError: ``optim_wrapper`` lacks the wrapper methods (for example a
                bare ``torch.optim.Optimizer``), the batch is neither a dict nor a
                list/tuple, or ``forward`` did not return a dict in ``'loss'`` mode.
            ValueError: the loss dict has no key containing ``'loss'``.
        """
        # A runtime Protocol check costs dozens of calls; once per wrapper class is enough.
        if type(optim_wrapper) not in _CHECKED_WRAPPER_TYPES:
            _check_optim_wrapper(optim_wrapper)
            _CHECKED_WRAPPER_TYPES.add(type(optim_wrapper))
        # Straight from ``_modules``: ``self.data_preprocessor`` is a Python call
        # through ``nn.Module.__getattr__``, and this runs on every batch.
        try:
            preprocessor: nn.Module = self._modules["data_preprocessor"]  # type: ignore[assignment]
        except KeyError:  # not a submodule (a property, say): the usual lookup
            preprocessor = self.data_preprocessor
        context = optim_wrapper.optim_context(self)
        # ``forward`` called straight when ``__call__`` would add nothing (no hooks, not
        # compiled, not traced): see ``_direct_call``.
        preprocess = direct_forward(preprocessor) or preprocessor
        if context.__class__ is nullcontext:
            # Entering a no-op context costs two Python calls per step; skip it.
            data = preprocess(data, True)
            cls = data.__class__
            if (cls is list or cls is tuple) and type(self)._run_forward is BaseModel._run_forward:
                # _run_forward's usual case, inline
                losses = (direct_forward(self) or self)(*data, mode="loss")
                if losses.__class__ is not dict:
                    _require_loss_dict(self, losses)
            else:
                losses = self._run_forward(data, mode="loss")
        else:
            with context:
                losses = self._run_forward(preprocess(data, True), mode="loss")
        parsed_losses, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed_losses)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """Predict on a validation batch.

        Args:
            data: The batch from the DataLoader: a dict or a list/tuple.

        Returns:
            What ``forward`` returns in ``'predict'`` mode.

        Raises:
            TypeError: the batch is neither a dict nor a list/tuple.
        """
        preprocessor = self.data_preprocessor
        data = (direct_forward(preprocessor) or preprocessor)(data, False)
        return self._run_forward(data, mode="predict")

    def test_step(self, data: Any) -> Any:
        """Predict on a test batch; the same as :meth:`val_step` unless overridden.

        Args:
            data: The batch from the DataLoader: a dict or a list/tuple.

        Returns:
            What ``forward`` returns in ``'predict'`` mode.

        Raises:
            TypeError: the batch is neither a dict nor a list/tuple.
        """
        preprocessor = self.data_preprocessor
        data = (direct_forward(preprocessor) or preprocessor)(data, False)
        return self._run_forward(data, mode="predict")

    def parse_losses(
        self, losses: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reduce a loss dict to the total to optimise and the values to log.

        Each value is reduced to a scalar: a tensor to its mean, a list or tuple of
        tensors to the sum of their means. The total is the sum of every entry
        whose key contains ``'loss'``; the other entries (an accuracy, say) are
        logged but not optimised.

        Args:
            losses: ``forward``'s output in ``'loss'`` mode.

        Returns:
            ``(loss, log_vars)``: the total, still attached to the graph, and a dict
            with ``'loss'`` (the total) first, then every entry's scalar, in the
            order given, all detached. The pair is also remembered (the total by
            weak reference, so no graph is kept alive) for :meth:`last_loss_terms`.

        Raises:
            TypeError: ``losses`` is not a mapping, a key is not a string, or a
                value is neither a tensor nor a list/tuple of tensors.
            ValueError: a value is an empty list, or no key contains ``'loss'``.
        """
        if losses.__class__ is not dict and not isinstance(losses, Mapping):
            raise TypeError(f"`losses` must be a dict of loss tensors, got {type(losses).__name__}")
        total: torch.Tensor | None = None
        # 'loss' is entered first to come first; its value is the total, set below.
        log_vars: dict[str, Any] = {"loss": None}
        for name in losses:  # not .items(): a call of its own, every iteration
            value = losses[name]
            # A 0-d tensor under a str key, the usual entry, needs no reduction call.
            if value.__class__ is torch.Tensor and not value.ndim and name.__class__ is str:
                scalar = value
            else:
                scalar = _reduce_loss(name, value)
            if name != "loss":
                log_vars[name] = scalar.detach()
            if "loss" in name:
                total = scalar if total is None else total + scalar
        if total is None:
            raise ValueError(
                f"the loss dict must have at least one key containing 'loss' (those "
                f"are summed and optimised), got keys {list(losses)}"
            )
        log_vars["loss"] = total.detach()
        # Bypass nn.Module.__setattr__: this runs every iteration.
        self.__dict__["_last_parsed"] = (weakref.ref(total), log_vars)
        return total, log_vars

    def last_loss_terms(self, loss: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Return the ``log_vars`` that :meth:`parse_losses` returned with ``loss``.

        The runner's non-finite guard uses it to name every loss term when the total
        is NaN or inf, and to read all terms in one host transfer.

        Args:
            loss: A total returned by :meth:`parse_losses`.

        Returns:
            Its ``log_vars`` dict when ``loss`` is the total of the latest
            :meth:`parse_losses` call, else None.
        """
        last = self.__dict__.get("_last_parsed")
        if last is None or last[0]() is not loss:
            return None
        log_vars: dict[str, torch.Tensor] = last[1]
        return log_vars

    def _run_forward(self, data: Any, mode: str) -> Any:
        """Call ``forward`` with ``data`` unpacked: ``**`` for a dict, ``*`` for a list/tuple.

        Raises:
            TypeError: ``data`` is neither, or ``mode`` is ``'loss'`` and
                ``forward`` returned something other than a dict.
        """
        cls = data.__class__
        call = direct_forward(self) or self
        # Exact types first: isinstance against the Mapping ABC alone costs three calls.
        if cls is tuple or cls is list:
            results = call(*data, mode=mode)
        elif cls is dict or isinstance(data, Mapping):
            results = call(**data, mode=mode)
        elif isinstance(data, (list, tuple)):
            results = call(*data, mode=mode)
        else:
            raise TypeError(
                f"the preprocessed batch must be a dict (passed to forward as **kwargs) "
                f"or a list/tuple (passed as *args), got {type(data).__name__}"
            )
        if mode == "loss" and results.__class__ is not dict:
            _require_loss_dict(self, results)
        return results


def _require_loss_dict(model: nn.Module, results: object) -> None:
    """Raise unless ``forward(mode='loss')`` returned a mapping."""
    if not isinstance(results, Mapping):
        raise TypeError(
            f"{type(model).__name__}.forward(mode='loss') must return a dict of "
            f"losses, got {type(results).__name__}"
        )


def _reduce_loss(name: object, value: object) -> torch.Tensor:
    """One entry of a loss dict as a scalar tensor (see ``BaseModel.parse_losses``)."""
    if name.__class__ is not str and not isinstance(name, str):
        raise TypeError(f"loss dict keys must be strings, got {type(name).__name__}: {name!r}")
    if value.__class__ is torch.Tensor or isinstance(value, torch.Tensor):
        # A 0-d loss is its own mean; .mean() would add a node to every backward pass.
        return value if value.ndim == 0 else value.mean()
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"loss {name!r} is an empty {type(value).__name__}")
        if all(isinstance(item, torch.Tensor) for item in value):
            scalar = value[0].mean()
            for item in value[1:]:
                scalar = scalar + item.mean()
            return scalar
    raise TypeError(
        f"loss {name!r} must be a tensor or a list of tensors, got {type(value).__name__}"
    )


_CHECKED_WRAPPER_TYPES: set[type] = set()


def _check_optim_wrapper(optim_wrapper: object) -> None:
    """Refuse an object without the optimizer-wrapper methods (a bare optimizer, say)."""
    if not isinstance(optim_wrapper, OptimWrapperProtocol):
        raise TypeError(
            f"`optim_wrapper` must have `update_params(loss)` and "
            f"`optim_context(model)`, got {type(optim_wrapper).__name__}. "
            f"HINT: wrap an optimizer as OptimWrapper(optimizer=...) from "
            f"camshaft.runner, or override `train_step` to drive it yourself."
        )
