"""The non-finite loss guard: stop (or skip the step) before a NaN/inf touches the weights.

The Runner installs one :class:`NonFiniteGuard` on each optimizer wrapper
(``OptimWrapper.loss_guard``); ``update_params`` asks it about the loss before
``backward``. The check costs one host synchronisation, and that transfer is shared
with logging: when the model is a ``camshaft.model.BaseModel`` the guard copies the
total *and every logged term* to the host at once and puts the host copies back into
the model's ``log_vars`` (as 0-d CPU tensors), so the log line later needs no further
device transfer. On CPU the copy is free, so only the total is read.

Under a process group the finite flag is all-reduced, so every rank takes the same
decision (skipping on one rank only would desynchronise DDP's collectives).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["NonFiniteGuard", "NonFiniteLossError", "NONFINITE_POLICIES"]

NONFINITE_POLICIES = ("error", "skip", "off")


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or inf total loss; the weights were not updated."""


class NonFiniteGuard:
    """Check each loss before backward; raise or ask the wrapper to skip the step.

    Args:
        policy: ``'error'`` raises :class:`NonFiniteLossError`; ``'skip'`` makes the
            wrapper drop this step (gradients zeroed, weights untouched) and calls
            ``on_skip``; ``'off'`` is accepted by :meth:`create` only.
        terms_source: The model whose ``last_loss_terms(loss)`` gives the loss terms
            (a ``BaseModel``); None or a model without it reports the total only.
        position: Returns where training is (``'iteration 12 (epoch 2)'``) for messages.
        distributed: All-reduce the finite flag so all ranks agree.
        on_skip: Called with the message when a step is skipped.

    Example:
        >>> guard = NonFiniteGuard('skip')
        >>> guard(torch.tensor(1.5)), guard(torch.tensor(float('nan')))
        (True, False)
        >>> guard.skipped
        1
    """

    def __init__(
        self,
        policy: str = "error",
        *,
        terms_source: Any = None,
        position: Callable[[], str] | None = None,
        distributed: bool = False,
        on_skip: Callable[[str], None] | None = None,
    ) -> None:
        if policy not in ("error", "skip"):
            raise ValueError(f"`policy` must be 'error' or 'skip', got {policy!r}")
        self.policy = policy
        self._terms_of = getattr(terms_source, "last_loss_terms", None)
        self._position = position
        self._distributed = distributed
        self._on_skip = on_skip
        self.skipped = 0

    @classmethod
    def create(cls, policy: object, **kwargs: Any) -> NonFiniteGuard | None:
        """Build a guard from the ``nonfinite`` config value; ``'off'`` gives None.

        Raises:
            ValueError: ``policy`` is not one of ``'error'``, ``'skip'``, ``'off'``.
        """
        if policy not in NONFINITE_POLICIES:
            raise ValueError(
                f"`nonfinite` must be one of {', '.join(map(repr, NONFINITE_POLICIES))}, "
                f"got {policy!r}"
            )
        return None if policy == "off" else cls(str(policy), **kwargs)

    def __call__(self, loss: torch.Tensor) -> bool:
        """Return True when ``loss`` is finite; else raise or return False (skip).

        Raises:
            NonFiniteLossError: the loss is NaN/inf and the policy is ``'error'``.
        """
        # ``is_cpu`` is a flag read; ``device.type`` builds a device object and a str.
        if loss.is_cpu and not self._distributed:
            # Reading a CPU total is free: the terms are looked up only to name them.
            value = loss.item()
            if value - value == 0.0:  # false for NaN and ±inf; no call, unlike isfinite
                return True
            terms = None if self._terms_of is None else self._terms_of(loss)
        else:
            terms = None if self._terms_of is None else self._terms_of(loss)
            finite = self._finite_total(loss) if terms is None else self._finite_terms(terms)
            if finite:
                return True
        message = self._describe(loss, terms)
        if self.policy == "error":
            raise NonFiniteLossError(
                f"{message}; training stopped before the optimizer step. Set "
                "cfg.nonfinite='skip' to skip such steps instead, or look for the "
                "cause (learning rate too high, log of zero, AMP overflow)."
            )
        self.skipped += 1
        if self._on_skip is not None:
            self._on_skip(f"{message}; step skipped ({self.skipped} so far)")
        return False

    def _finite_total(self, loss: torch.Tensor) -> bool:
        if not self._distributed:
            return math.isfinite(loss.item())
        flag = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1)
        return self._agree(flag)

    def _finite_terms(self, terms: dict[str, torch.Tensor]) -> bool:
        # One device->host copy for the flag and every term; the host copies replace
        # the device tensors in log_vars so logging reads them without another sync.
        keys = list(terms)
        values = torch.stack([terms[k].detach().float().reshape(()) for k in keys])
        flag = torch.isfinite(values).all().to(values.dtype).reshape(1)
        if self._distributed:
            from camshaft.dist import all_reduce

            all_reduce(flag, op="min")
        host = torch.cat([flag, values]).cpu()
        for index, key in enumerate(keys, start=1):
            terms[key] = host[index]
        return bool(host[0].item() > 0)

    def _agree(self, flag: torch.Tensor) -> bool:
        from camshaft.dist import all_reduce, get_comm_device

        flag = flag.to(get_comm_device())
        all_reduce(flag, op="min")
        return bool(flag.item() > 0)

    def _describe(self, loss: torch.Tensor, terms: dict[str, torch.Tensor] | None) -> str:
        where = self._position() if self._position is not None else "this step"
        if terms:
            shown = ", ".join(f"{key}={float(value):.6g}" for key, value in terms.items())
        else:
            shown = f"loss={float(loss.detach().float().mean()):.6g}"
        if math.isfinite(float(loss.detach().float().mean())):
            return f"non-finite loss on another rank at {where} (this rank: {shown})"
        return f"non-finite loss at {where}: {shown}"
