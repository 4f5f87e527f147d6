"""EmptyCacheHook: release the CUDA caching allocator's unused blocks at chosen points.

``torch.cuda.empty_cache()`` hands cached but unused GPU memory back to the driver,
which helps when other processes share the GPU or memory fragments. It costs time, so
the hook calls it only where asked, and the dispatcher calls the hook only there:
:meth:`EmptyCacheHook.get_triggered_stages` lists just the stages whose flag is set.
Without CUDA in use the calls do nothing.
"""

from __future__ import annotations

from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook, _DataBatch

__all__ = ["EmptyCacheHook"]

_BEFORE_EPOCH = ("before_train_epoch", "before_val_epoch", "before_test_epoch")
_AFTER_EPOCH = ("after_train_epoch", "after_val_epoch", "after_test_epoch")
_AFTER_ITER = ("after_train_iter", "after_val_iter", "after_test_iter")


def _empty_cache() -> None:
    import torch

    # Nothing is cached before CUDA is initialised; this check never initialises it.
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@HOOKS.register_module()
class EmptyCacheHook(Hook):
    """Call ``torch.cuda.empty_cache()`` around epochs and/or after iterations.

    Each flag covers training, validation and test alike.

    Args:
        before_epoch: Empty the cache before each epoch. Defaults to False.
        after_epoch: Empty the cache after each epoch. Defaults to True.
        after_iter: Empty the cache after each iteration (slow; for debugging
            memory). Defaults to False.

    Raises:
        TypeError: A flag is not a bool.

    Example:
        >>> EmptyCacheHook(before_epoch=True, after_epoch=False).get_triggered_stages()
        ['before_train_epoch', 'before_val_epoch', 'before_test_epoch']
    """

    priority = "NORMAL"

    def __init__(
        self, before_epoch: bool = False, after_epoch: bool = True, after_iter: bool = False
    ) -> None:
        flags = {"before_epoch": before_epoch, "after_epoch": after_epoch, "after_iter": after_iter}
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise TypeError(
                    f"EmptyCacheHook: `{name}` must be a bool, got {type(flag).__name__} {flag!r}"
                )
        self._do_before_epoch = before_epoch
        self._do_after_epoch = after_epoch
        self._do_after_iter = after_iter

    def get_triggered_stages(self) -> list[str]:
        """Return the stages this instance acts at: those of the flags that are set.

        Example:
            >>> EmptyCacheHook(after_epoch=False).get_triggered_stages()
            []
        """
        wanted: set[str] = set()
        if self._do_before_epoch:
            wanted.update(_BEFORE_EPOCH)
        if self._do_after_epoch:
            wanted.update(_AFTER_EPOCH)
        if self._do_after_iter:
            wanted.update(_AFTER_ITER)
        return [stage for stage in Hook.stages if stage in wanted]

    def before_train_epoch(self, runner: Any) -> None:
        """Empty the cache when ``before_epoch`` is set."""
        if self._do_before_epoch:
            _empty_cache()

    def before_val_epoch(self, runner: Any) -> None:
        """Empty the cache when ``before_epoch`` is set."""
        if self._do_before_epoch:
            _empty_cache()

    def before_test_epoch(self, runner: Any) -> None:
        """Empty the cache when ``before_epoch`` is set."""
        if self._do_before_epoch:
            _empty_cache()

    def after_train_epoch(self, runner: Any) -> None:
        """Empty the cache when ``after_epoch`` is set."""
        if self._do_after_epoch:
            _empty_cache()

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Empty the cache when ``after_epoch`` is set."""
        if self._do_after_epoch:
            _empty_cache()

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Empty the cache when ``after_epoch`` is set."""
        if self._do_after_epoch:
            _empty_cache()

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Empty the cache when ``after_iter`` is set."""
        if self._do_after_iter:
            _empty_cache()

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Empty the cache when ``after_iter`` is set."""
        if self._do_after_iter:
            _empty_cache()

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Empty the cache when ``after_iter`` is set."""
        if self._do_after_iter:
            _empty_cache()
