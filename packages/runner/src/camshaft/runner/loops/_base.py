"""What every loop shares: the runner it serves, its dataloader, RNG-neutral iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

__all__ = ["BaseLoop", "iterate_without_rng", "resumable_sampler", "train_iteration_callers"]


class BaseLoop:
    """Base of the training, validation and test loops.

    Args:
        runner: The :class:`~camshaft.runner.Runner` that owns the loop.
        dataloader: A ``DataLoader`` or a dataloader config dict, built through
            ``runner.build_dataloader``.
    """

    def __init__(self, runner: Any, dataloader: DataLoader | Mapping[str, Any]) -> None:
        self._runner = runner
        if isinstance(dataloader, DataLoader):
            self.dataloader = dataloader
        else:
            self.dataloader = runner.build_dataloader(dataloader)

    @property
    def runner(self) -> Any:
        """The runner this loop belongs to."""
        return self._runner

    def run(self) -> Any:
        """Run the loop."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")


def iterate_without_rng(loader: DataLoader) -> Iterator[Any]:
    """``iter(loader)`` without advancing torch's global generator.

    A DataLoader iterator draws a base seed from torch's default generator when it
    is created. A resumed run creates one more iterator than an uninterrupted run
    (mid-epoch), so that draw would shift every later random number; keeping the
    generator's state around the call makes training randomness independent of
    where the run was restarted.
    """
    state = torch.get_rng_state()
    try:
        return iter(loader)
    finally:
        torch.set_rng_state(state)


def resumable_sampler(loader: DataLoader) -> Any | None:
    """The loader's sampler when it keeps a resumable position (camshaft's samplers)."""
    sampler: Any = loader.sampler
    if not hasattr(sampler, "advance"):
        sampler = getattr(loader.batch_sampler, "sampler", None)
    if hasattr(sampler, "advance") and hasattr(sampler, "state_dict"):
        return sampler
    return None


def train_iteration_callers(runner: Any) -> tuple[Callable[..., None], Callable[..., None]]:
    """How a training loop calls its two per-iteration stages.

    Returns:
        ``(before, after)``: ``before(batch_idx, data_batch)`` calls
        ``before_train_iter``, ``after(batch_idx, data_batch, outputs)`` calls
        ``after_train_iter``, each hook with those keywords. A camshaft Runner that
        does not override ``call_hook`` hands back its dispatcher's positional callers
        (no keyword dict built and unpacked per hook); any other runner, a subclass
        overriding ``call_hook`` included, is called through ``call_hook``.
    """
    direct = getattr(runner, "_direct_iteration_callers", None)
    callers = None if direct is None else direct()
    if callers is not None:
        return callers
    call_hook = runner.call_hook

    def before(batch_idx: int, data_batch: Any) -> None:
        call_hook("before_train_iter", batch_idx=batch_idx, data_batch=data_batch)

    def after(batch_idx: int, data_batch: Any, outputs: Any) -> None:
        call_hook("after_train_iter", batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)

    return before, after
