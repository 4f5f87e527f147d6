"""Gradient clipping for the optimizer wrappers: the ``clip_grad`` dict, checked once.

``clip_grad=dict(max_norm=35, norm_type=2)`` rescales all gradients together so that
their total norm is at most ``max_norm`` (``torch.nn.utils.clip_grad_norm_``);
``clip_grad=dict(type='value', clip_value=0.5)`` clamps every element to
``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``). These are
MMEngine's keys; ``type`` defaults to ``'norm'``.

What this module promises:

* The dict is validated when the wrapper is built, so a typo fails at start-up, not at
  the first optimizer step; the caller's dict is copied and never modified.
* Every clip reports the total gradient norm before and after clipping as 0-d tensors
  on the gradients' device. Nothing here calls ``.item()``: clipping never waits for
  the device (unless the user asks for ``error_if_nonfinite=True``, which must).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["GradClipper"]

# Keys each kind accepts (beyond ``type``), and the one each requires.
_ALLOWED = {
    "norm": ("max_norm", "norm_type", "error_if_nonfinite", "foreach"),
    "value": ("clip_value", "foreach"),
}
_REQUIRED = {"norm": "max_norm", "value": "clip_value"}
_EXAMPLE = "clip_grad=dict(max_norm=35, norm_type=2) or clip_grad=dict(type='value', clip_value=1)"
# torch's clip_grad_norm_ divides by (total_norm + 1e-6); the reported clipped norm
# uses the same coefficient so that it is the norm of the gradients the step sees.
_EPS = 1e-6


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class GradClipper:
    """A validated ``clip_grad`` config that clips a list of parameters' gradients.

    Args:
        clip_grad: ``dict(max_norm=..., norm_type=2, error_if_nonfinite=False,
            foreach=None)`` for norm clipping (``type='norm'`` optional), or
            ``dict(type='value', clip_value=..., foreach=None)``. Not modified.

    Raises:
        TypeError: ``clip_grad`` is not a mapping, or a value has the wrong type.
        ValueError: ``clip_grad`` is empty, names an unknown ``type`` or key, lacks
            ``max_norm``/``clip_value``, or a bound is not positive.
    """

    def __init__(self, clip_grad: Mapping[str, Any]) -> None:
        if not isinstance(clip_grad, Mapping):
            raise TypeError(
                f"`clip_grad` must be a dict or None, got {type(clip_grad).__name__}: "
                f"{clip_grad!r}. Use {_EXAMPLE}."
            )
        kwargs = dict(clip_grad)
        kind = kwargs.pop("type", "norm")
        if kind not in _ALLOWED:
            raise ValueError(
                f"`clip_grad['type']` must be 'norm' or 'value', got {kind!r}. Use {_EXAMPLE}."
            )
        unknown = sorted(str(key) for key in kwargs if key not in _ALLOWED[kind])
        if unknown:
            raise ValueError(
                f"`clip_grad` has keys {unknown} that {kind!r} clipping does not take; "
                f"it accepts {list(_ALLOWED[kind])} (and 'type'). Use {_EXAMPLE}."
            )
        required = _REQUIRED[kind]
        if required not in kwargs:
            raise ValueError(
                f"`clip_grad` for {kind!r} clipping needs {required!r}, got {dict(clip_grad)!r}. "
                f"Use {_EXAMPLE}."
            )
        bound = kwargs[required]
        if not _is_real(bound) or not bound > 0:
            raise ValueError(f"`clip_grad[{required!r}]` must be a positive number, got {bound!r}.")
        norm_type = kwargs.get("norm_type", 2.0)
        if norm_type != "inf" and (not _is_real(norm_type) or not norm_type > 0):
            raise ValueError(
                f"`clip_grad['norm_type']` must be a positive number or 'inf', got {norm_type!r}."
            )
        for flag in ("error_if_nonfinite", "foreach"):
            value = kwargs.get(flag)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"`clip_grad[{flag!r}]` must be a bool, got {value!r}.")
        self.kind: str = kind
        self.kwargs: dict[str, Any] = kwargs
        self._norm_type = math.inf if norm_type == "inf" else float(norm_type)

    def __call__(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip the gradients of ``params`` in place.

        Args:
            params: Parameters whose ``.grad`` is set (at least one).

        Returns:
            The total gradient norm before clipping and after it, as 0-d tensors.
            Value clipping reports the 2-norm.
        """
        if self.kind == "norm":
            before = torch.nn.utils.clip_grad_norm_(params, **self.kwargs)
            coef = torch.clamp(self.kwargs["max_norm"] / (before + _EPS), max=1.0)
            # A non-finite norm makes the coefficient 0 (or NaN); report it unchanged.
            after = torch.where(torch.isfinite(before), before * coef, before)
            return before.detach(), after.detach()
        grads = [param.grad for param in params if param.grad is not None]
        before = _total_norm(grads)
        torch.nn.utils.clip_grad_value_(params, **self.kwargs)
        return before, _total_norm(grads)


def _total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together, on the first gradient's device."""
    device = grads[0].device
    norms = [torch.linalg.vector_norm(grad.detach()).to(device) for grad in grads]
    return torch.linalg.vector_norm(torch.stack(norms))
