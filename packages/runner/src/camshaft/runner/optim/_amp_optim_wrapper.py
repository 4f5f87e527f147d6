"""``AmpOptimWrapper``: mixed precision behind the same ``update_params``/``optim_context``.

What it adds to :class:`OptimWrapper`:

* ``optim_context(model)`` also enters ``torch.autocast`` on the model's device type
  (``cuda``, ``cpu``, ...) with the wrapper's ``dtype``;
* with ``float16`` a ``GradScaler`` scales the loss before backward, unscales before
  clipping, skips steps whose gradients overflowed and adapts the scale; its state is
  saved under ``state_dict()['loss_scaler']`` and restored by ``load_state_dict``.
  ``bfloat16`` has float32's range and needs no scaler, so it gets none.

Unlike MMEngine's class it works on CPU: ``bfloat16`` there is the common case, and
``float16`` is allowed too (torch autocasts to float16 on CPU and has a CPU
``GradScaler``; whether it is fast depends on the CPU). The dtype and the scaler's
device are decided when the wrapper is built, from the device of the optimizer's
parameters, so build the wrapper after moving the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from camshaft.runner._autocast import autocast, onednn_off_if_broken
from camshaft.runner._registry import OPTIM_WRAPPERS
from camshaft.runner.optim._optim_wrapper import OptimWrapper

__all__ = ["AmpOptimWrapper"]

_DTYPES = {
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_SCALER_KEYS = ("init_scale", "growth_factor", "backoff_factor", "growth_interval", "enabled")


def _resolve_dtype(dtype: object, device_type: str) -> torch.dtype:
    """Map ``dtype`` to torch.float16 or torch.bfloat16; None picks the device's default."""
    if dtype is None:
        # torch's autocast defaults: bfloat16 on CPU, float16 on accelerators.
        return torch.bfloat16 if device_type == "cpu" else torch.float16
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in (torch.float16, torch.bfloat16):
        return dtype
    raise ValueError(
        f"`dtype` must be 'float16', 'bfloat16', torch.float16, torch.bfloat16 or None "
        f"(the device's default), got {dtype!r}."
    )


def _check_loss_scale(loss_scale: object) -> None:
    if loss_scale == "dynamic":
        return
    if isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
        if not loss_scale > 0:
            raise ValueError(f"`loss_scale` must be positive, got {loss_scale!r}.")
        return
    if isinstance(loss_scale, Mapping):
        unknown = sorted(str(key) for key in loss_scale if key not in _SCALER_KEYS)
        if unknown:
            raise ValueError(
                f"`loss_scale` has keys {unknown} that GradScaler does not take; it "
                f"accepts {list(_SCALER_KEYS)}."
            )
        return
    raise TypeError(
        f"`loss_scale` must be 'dynamic', a positive number (a static scale) or a dict "
        f"of GradScaler arguments, got {type(loss_scale).__name__}: {loss_scale!r}."
    )


def _device_type_of(module: nn.Module, default: str) -> str:
    for param in module.parameters():
        return param.device.type
    for buffer in module.buffers():
        return buffer.device.type
    return default


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(OptimWrapper):
    """An :class:`OptimWrapper` that trains in automatic mixed precision.

    Args:
        loss_scale: For float16 only. ``'dynamic'`` (default): a ``GradScaler`` that
            adapts the scale; a number: a static scale; a dict: ``GradScaler``
            arguments (``init_scale``, ``growth_factor``, ``backoff_factor``,
            ``growth_interval``, ``enabled``). Ignored, with a warning, for bfloat16.
        dtype: ``'float16'``, ``'bfloat16'`` (or the torch dtypes). ``None`` picks
            autocast's default for the parameters' device: bfloat16 on CPU, float16
            elsewhere.
        use_fsdp: Use FSDP's ``ShardedGradScaler`` (for sharded gradients).
        **kwargs: :class:`OptimWrapper`'s arguments (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).

    Raises:
        TypeError: ``loss_scale`` has the wrong type, or an :class:`OptimWrapper`
            argument is wrong.
        ValueError: ``dtype`` is not a half-precision type, or ``loss_scale`` is not
            positive or has unknown keys.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> optim_wrapper = AmpOptimWrapper(
        ...     optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype='bfloat16')
        >>> with optim_wrapper.optim_context(model):
        ...     out = model(torch.ones(4, 2))
        >>> out.dtype
        torch.bfloat16
        >>> optim_wrapper.update_params(out.float().pow(2).mean())
    """

    def __init__(
        self,
        loss_scale: str | float | Mapping[str, Any] = "dynamic",
        dtype: str | torch.dtype | None = None,
        use_fsdp: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_loss_scale(loss_scale)
        self._device_type = next(
            (param.device.type for group in self.param_groups for param in group["params"]),
            "cpu",
        )
        self.cast_dtype: torch.dtype = _resolve_dtype(dtype, self._device_type)
        self._scale_update_param: float | None = None
        self.loss_scaler: torch.amp.GradScaler | None = None
        if self.cast_dtype != torch.float16:
            if loss_scale != "dynamic":
                warnings.warn(
                    f"`loss_scale={loss_scale!r}` is ignored: bfloat16 needs no loss scaling.",
                    stacklevel=2,
                )
            return
        scaler_kwargs: dict[str, Any]
        if isinstance(loss_scale, Mapping):
            scaler_kwargs = dict(loss_scale)
        elif loss_scale == "dynamic":
            scaler_kwargs = {}
        else:
            # A static scale: GradScaler.update(new_scale) puts it back after every step.
            self._scale_update_param = float(loss_scale)
            scaler_kwargs = {"init_scale": self._scale_update_param}
        if use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            self.loss_scaler = ShardedGradScaler(device=self._device_type, **scaler_kwargs)
        else:
            self.loss_scaler = torch.amp.GradScaler(self._device_type, **scaler_kwargs)

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Backpropagate ``loss`` (scaled by the GradScaler for float16) and count it.

        Args:
            loss: The (accumulation-scaled) loss.
            **kwargs: Passed to ``loss.backward``.
        """
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        with onednn_off_if_broken(self._device_type, self.cast_dtype):
            super().backward(loss, **kwargs)

    def step(self, **kwargs: Any) -> None:
        """Unscale and clip the gradients, then step (skipped on overflow) and update the scale.

        Args:
            **kwargs: Passed to the optimizer's ``step``.
        """
        scaler = self.loss_scaler
        if scaler is None:
            super().step(**kwargs)
            return
        if self._clipper is not None:
            scaler.unscale_(self.optimizer)
            self._clip_grad()
        scaler.step(self.optimizer, **kwargs)
        scaler.update(self._scale_update_param)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Run the forward pass under autocast (and ``no_sync`` on non-final micro-steps).

        Args:
            model: The model being trained; autocast uses its device type.

        Yields:
            None.
        """
        device_type = _device_type_of(model, self._device_type)
        with super().optim_context(model), autocast(device_type, self.cast_dtype):
            yield

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer's state dict, plus ``'loss_scaler'`` when float16 uses one."""
        state = self.optimizer.state_dict()
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the optimizer's state and, if present, the loss scaler's.

        The argument is not modified. A ``'loss_scaler'`` entry is ignored when this
        wrapper has no scaler (bfloat16); a float16 wrapper given none keeps its
        initial scale and warns.

        Args:
            state_dict: What :meth:`state_dict` returned.
        """
        state = dict(state_dict)
        scaler_state = state.pop("loss_scaler", None)
        if self.loss_scaler is not None:
            if scaler_state is not None:
                self.loss_scaler.load_state_dict(scaler_state)
            else:
                warnings.warn(
                    "the state dict has no 'loss_scaler' entry (saved without float16 AMP?); "
                    "the loss scaler keeps its initial scale.",
                    stacklevel=2,
                )
        self.optimizer.load_state_dict(state)
