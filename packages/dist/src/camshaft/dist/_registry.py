"""The registry of model wrappers: what ``model_wrapper_cfg=dict(type=...)`` names.

The runner builds the wrapper with ``MODEL_WRAPPERS.build(cfg, default_args=dict(module=model))``.
Besides camshaft's own wrappers it holds torch's ``DistributedDataParallel`` and
``DataParallel`` (registered here), and torch's ``FullyShardedDataParallel``. The
last is registered by ``camshaft.dist._torch_fsdp``, a *location* imported only
when a lookup misses, because importing ``torch.distributed.fsdp`` costs close to a
second.
"""

from __future__ import annotations

from torch.nn.parallel import DataParallel, DistributedDataParallel

from camshaft.registry import Registry

__all__ = ["MODEL_WRAPPERS"]

MODEL_WRAPPERS = Registry(
    "model wrapper",
    scope="camshaft",
    locations=["camshaft.dist._torch_fsdp"],
)
"""Model wrappers by name: ``MMDistributedDataParallel``, ``MMSeparateDistributedDataParallel``,
``MMFullyShardedDataParallel`` and torch's ``DistributedDataParallel``, ``DataParallel`` and
``FullyShardedDataParallel``.

Example:
    >>> from camshaft.dist import MODEL_WRAPPERS
    >>> MODEL_WRAPPERS.get('MMDistributedDataParallel').__name__
    'MMDistributedDataParallel'
"""

MODEL_WRAPPERS.register_module(module=DistributedDataParallel)
MODEL_WRAPPERS.register_module(module=DataParallel)
