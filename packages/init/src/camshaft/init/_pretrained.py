"""``PretrainedInit``: initialise a module from a checkpoint, as an ``init_cfg`` entry.

``dict(type='Pretrained', checkpoint='resnet50.pth')`` loads the whole checkpoint
into the module it is applied to; ``prefix='backbone'`` loads only the entries under
``backbone.`` (with the prefix stripped), so a detector's checkpoint can initialise a
bare backbone. Loading is :func:`~camshaft.init.load_checkpoint`'s: safe by default,
memory-mapped, non-strict with one report of what did not fit.

Only the parameters actually loaded are attributed to this initializer in the init
log; those the checkpoint lacks keep the attribution of whatever set them before.
"""

from __future__ import annotations

import os
from typing import ClassVar

from torch import nn

from camshaft.init._checkpoint import _DEFAULT_REVISE_KEYS, _load_checkpoint
from camshaft.init._checkpoint_io import MapLocation, _check_map_location
from camshaft.init._init_info import _active_record, _record
from camshaft.init._registry import WEIGHT_INITIALIZERS

__all__ = ["PretrainedInit"]


@WEIGHT_INITIALIZERS.register_module(name=["Pretrained", "PretrainedInit"])
class PretrainedInit:
    """Load pretrained weights into the module an ``init_cfg`` is applied to.

    Args:
        checkpoint: A local path, ``file://`` URL or ``http(s)://`` URL (downloaded
            once into the cache).
        prefix: Load only the keys starting with ``f"{prefix}."``, with that prefix
            stripped. None loads every key (after stripping DDP's ``module.``).
        map_location: Where tensors are loaded, as for ``torch.load``.
        allow_unsafe: Unpickle with ``weights_only=False`` (runs code from the file);
            only for files you trust. Not in MMEngine, which always unpickles unsafely.

    Raises:
        TypeError: ``checkpoint`` is not a str/path, ``prefix`` not a str, or
            ``allow_unsafe`` not a bool.
        ValueError: ``checkpoint`` or ``prefix`` is empty.

    Example:
        >>> from camshaft.init import initialize
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3))
        >>> initialize(  # doctest: +SKIP
        ...     backbone, dict(type="Pretrained", checkpoint="detector.pth", prefix="backbone")
        ... )
    """

    matches_whole_module: ClassVar[bool] = True
    """``initialize`` applies this to the whole module, so the cfg needs no ``layer``."""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        prefix: str | None = None,
        map_location: MapLocation = "cpu",
        *,
        allow_unsafe: bool = False,
    ) -> None:
        if not isinstance(checkpoint, str | os.PathLike):
            raise TypeError(
                "`checkpoint` must be a path or URL (str or os.PathLike), got "
                f"{type(checkpoint).__name__}: {checkpoint!r}"
            )
        if not os.fspath(checkpoint):
            raise ValueError("`checkpoint` is empty; expected a path or URL of a checkpoint")
        if prefix is not None:
            if not isinstance(prefix, str):
                raise TypeError(
                    f"`prefix` must be a str or None, got {type(prefix).__name__}: {prefix!r}"
                )
            if not prefix.strip("."):
                raise ValueError(
                    f"`prefix` must name a submodule such as 'backbone', got {prefix!r}; "
                    "use prefix=None to load the whole checkpoint"
                )
        _check_map_location(map_location)
        if not isinstance(allow_unsafe, bool):
            raise TypeError(f"`allow_unsafe` must be a bool, got {allow_unsafe!r}")
        self.allow_unsafe = allow_unsafe
        self.checkpoint = checkpoint
        self.prefix = prefix.strip(".") if prefix is not None else None
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        """Load the checkpoint (or its ``prefix`` part) into ``module``, non-strictly.

        Args:
            module: The module to load into.

        Raises:
            TypeError: ``module`` is not an ``nn.Module``.
            CheckpointError: The checkpoint cannot be read (or needs unsafe
                unpickling: :class:`UnsafeCheckpointError`), or no key is under
                ``prefix`` (the message lists keys that exist).
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
        _, result = _load_checkpoint(
            module,
            self.checkpoint,
            self.map_location,
            strict=False,
            revise_keys=None if self.prefix is not None else _DEFAULT_REVISE_KEYS,
            logger="current",
            allow_unsafe=self.allow_unsafe,
            prefix=self.prefix,
        )
        if _active_record() is None:
            return
        params = dict(module.named_parameters(remove_duplicate=False))
        info = self.describe()
        for key in result.loaded_keys:
            param = params.get(key)
            if param is not None:
                _record(param, info)

    def describe(self) -> str:
        """One line for the init log: ``PretrainedInit: load from <checkpoint>``."""
        return f"{type(self).__name__}: load from {os.fspath(self.checkpoint)}"

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(checkpoint={self.checkpoint!r}, prefix={self.prefix!r}, "
            f"map_location={self.map_location!r})"
        )
