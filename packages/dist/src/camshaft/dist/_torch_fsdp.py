"""Registers torch's ``FullyShardedDataParallel`` (FSDP1) in ``MODEL_WRAPPERS``.

Kept apart so that ``import camshaft.dist`` does not import ``torch.distributed.fsdp``;
the registry imports this module the first time a lookup misses, and
:func:`~camshaft.dist.is_model_wrapper` once torch's FSDP has been imported anyway.
"""

from __future__ import annotations

from torch.distributed.fsdp import FullyShardedDataParallel

from camshaft.dist._registry import MODEL_WRAPPERS

__all__: list[str] = []

MODEL_WRAPPERS.register_module(module=FullyShardedDataParallel)
