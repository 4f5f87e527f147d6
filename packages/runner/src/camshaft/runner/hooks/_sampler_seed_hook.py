"""DistSamplerSeedHook: tell the training sampler which epoch starts, so it reshuffles.

A sampler that shuffles per epoch (``DefaultSampler``, torch's
``DistributedSampler``) draws its order from ``seed + epoch``; unless ``set_epoch``
is called before each epoch, every epoch repeats the first one's order.
"""

from __future__ import annotations

from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook

__all__ = ["DistSamplerSeedHook"]


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Call ``set_epoch(runner.epoch)`` on the training sampler before each epoch.

    The sampler is the train dataloader's ``sampler`` when it has ``set_epoch``,
    otherwise its ``batch_sampler.sampler`` (a DataLoader built with a batch
    sampler); a dataloader with neither is left alone. ``DefaultSampler`` keeps its
    position when the epoch is already the current one, so this is safe after a
    mid-epoch resume. Takes no arguments (priority ``NORMAL``).

    Example:
        >>> from torch.utils.data import DataLoader
        >>> from types import SimpleNamespace
        >>> from camshaft.runner.data import DefaultSampler
        >>> sampler = DefaultSampler(range(8), seed=0, rank=0, world_size=1)
        >>> loader = DataLoader(range(8), batch_size=2, sampler=sampler)
        >>> runner = SimpleNamespace(epoch=3, train_loop=SimpleNamespace(dataloader=loader))
        >>> DistSamplerSeedHook().before_train_epoch(runner)
        >>> sampler.epoch
        3
    """

    priority = "NORMAL"

    def before_train_epoch(self, runner: Any) -> None:
        """Set the epoch of the train dataloader's sampler, when it has ``set_epoch``."""
        loop = getattr(runner, "train_loop", None)
        loader = getattr(loop, "dataloader", None)
        if loader is None:
            loader = getattr(runner, "train_dataloader", None)
        sampler = getattr(loader, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if set_epoch is None:
            batch_sampler = getattr(loader, "batch_sampler", None)
            set_epoch = getattr(getattr(batch_sampler, "sampler", None), "set_epoch", None)
        if callable(set_epoch):
            set_epoch(runner.epoch)
