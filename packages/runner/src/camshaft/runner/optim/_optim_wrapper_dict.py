"""``OptimWrapperDict``: one optimizer wrapper per sub-model, for models with several optimizers.

A GAN updates its generator and its discriminator with their own optimizers, in
turns, inside its own ``train_step``::

    with optim_wrapper['discriminator'].optim_context(self.discriminator):
        loss_d = ...
    optim_wrapper['discriminator'].update_params(loss_d)

The runner still needs to treat the set as one thing: save and load its state, zero
all gradients, log every learning rate. That is this class: a read-only mapping from
names to :class:`OptimWrapper` with those collective operations. The per-loss
operations (``update_params``, ``backward``, ``step``, ``optim_context``) would be
ambiguous on the set, so they raise an error that names the wrapper call to make.

Unlike MMEngine's class of the same name, it is a ``Mapping``, not an ``OptimWrapper``
subclass: it has no optimizer of its own, so it does not pretend to.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import torch
from torch import nn

from camshaft.runner.optim._optim_wrapper import OptimWrapper

__all__ = ["OptimWrapperDict"]


class OptimWrapperDict(Mapping[str, OptimWrapper]):
    """A named set of optimizer wrappers, one per trainable sub-model.

    Args:
        **optim_wrappers: The wrappers, by name (usually the sub-model's attribute
            name: ``generator=..., discriminator=...``).

    Raises:
        TypeError: a value is not an :class:`OptimWrapper`.

    Example:
        >>> import torch
        >>> gen, disc = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        >>> wrappers = OptimWrapperDict(
        ...     generator=OptimWrapper(torch.optim.SGD(gen.parameters(), lr=0.1)),
        ...     discriminator=OptimWrapper(torch.optim.SGD(disc.parameters(), lr=0.2)))
        >>> wrappers.get_lr()
        {'generator.lr': [0.1], 'discriminator.lr': [0.2]}
        >>> wrappers['generator'].update_params(gen(torch.ones(1, 2)).sum())
    """

    def __init__(self, **optim_wrappers: OptimWrapper) -> None:
        for name, wrapper in optim_wrappers.items():
            if not isinstance(wrapper, OptimWrapper):
                raise TypeError(
                    f"OptimWrapperDict values must be OptimWrapper instances, got "
                    f"{name}={type(wrapper).__name__}. HINT: wrap the optimizer first, "
                    f"{name}=OptimWrapper(optimizer)."
                )
        self.optim_wrappers: dict[str, OptimWrapper] = dict(optim_wrappers)

    # --- mapping ----------------------------------------------------------------------

    def __getitem__(self, key: str) -> OptimWrapper:
        try:
            return self.optim_wrappers[key]
        except KeyError:
            raise KeyError(
                f"OptimWrapperDict has no wrapper {key!r}; it has {list(self.optim_wrappers)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.optim_wrappers)

    def __len__(self) -> int:
        return len(self.optim_wrappers)

    def __repr__(self) -> str:
        body = "\n".join(f"  {name}: {wrapper!r}" for name, wrapper in self.items())
        return f"OptimWrapperDict(\n{body}\n)"

    # --- per-loss operations: call them on one wrapper ------------------------------

    def _refuse(self, call: str) -> NoReturn:
        name = next(iter(self.optim_wrappers), "generator")
        raise NotImplementedError(
            f"OptimWrapperDict.{call} is ambiguous: the dict holds {list(self.optim_wrappers)} "
            f"and cannot tell which one this is for. HINT: call it on one wrapper, e.g. "
            f"optim_wrapper[{name!r}].{call}."
        )

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Refused: call ``update_params`` on one wrapper.

        Raises:
            NotImplementedError: always, naming the call to make instead.
        """
        self._refuse("update_params(loss)")

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Refused: call ``backward`` on one wrapper.

        Raises:
            NotImplementedError: always, naming the call to make instead.
        """
        self._refuse("backward(loss)")

    def step(self, **kwargs: Any) -> None:
        """Refused: call ``step`` on one wrapper.

        Raises:
            NotImplementedError: always, naming the call to make instead.
        """
        self._refuse("step()")

    def optim_context(self, model: nn.Module) -> AbstractContextManager[None]:
        """Refused: enter ``optim_context`` of one wrapper.

        Raises:
            NotImplementedError: always, naming the call to make instead.
        """
        self._refuse("optim_context(model)")

    # --- collective operations ------------------------------------------------------

    def zero_grad(self, **kwargs: Any) -> None:
        """Zero the gradients of every wrapper.

        Args:
            **kwargs: Passed to each optimizer's ``zero_grad``.
        """
        for wrapper in self.optim_wrappers.values():
            wrapper.zero_grad(**kwargs)

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Do nothing: each wrapper counts its own micro-steps.

        The dict cannot know how often each wrapper is updated per iteration (a
        generator may step once per five discriminator steps), so accumulation
        counts are left to the model, which calls ``initialize_count_status`` on the
        wrappers it accumulates with.
        """

    @property
    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """Each wrapper's ``param_groups``, by name."""
        return {name: wrapper.param_groups for name, wrapper in self.items()}

    def get_lr(self) -> dict[str, list[float]]:
        """Return ``{'<name>.lr': [lr of each param group], ...}``."""
        return {f"{name}.lr": wrapper.get_lr()["lr"] for name, wrapper in self.items()}

    def get_momentum(self) -> dict[str, list[float]]:
        """Return ``{'<name>.momentum': [...], ...}`` (see ``OptimWrapper.get_momentum``)."""
        return {
            f"{name}.momentum": wrapper.get_momentum()["momentum"] for name, wrapper in self.items()
        }

    def state_dict(self) -> dict[str, Any]:
        """Return ``{name: wrapper.state_dict()}``."""
        return {name: wrapper.state_dict() for name, wrapper in self.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load each wrapper's state from ``state_dict[name]``.

        Args:
            state_dict: What :meth:`state_dict` returned. Not modified.

        Raises:
            KeyError: it holds a name this dict has no wrapper for (nothing is
                loaded then). A wrapper without an entry keeps its state, with a
                warning.
        """
        unexpected = [name for name in state_dict if name not in self.optim_wrappers]
        if unexpected:
            raise KeyError(
                f"the state dict has entries {unexpected} for which OptimWrapperDict has no "
                f"wrapper (it has {list(self.optim_wrappers)}); check that the checkpoint "
                "was saved by the same model."
            )
        missing = [name for name in self.optim_wrappers if name not in state_dict]
        if missing:
            warnings.warn(
                f"the state dict has no entry for wrappers {missing}; they keep their state.",
                stacklevel=2,
            )
        for name, wrapper_state in state_dict.items():
            self.optim_wrappers[name].load_state_dict(wrapper_state)
