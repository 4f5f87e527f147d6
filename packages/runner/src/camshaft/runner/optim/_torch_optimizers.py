"""torch's own optimizers, registered in ``OPTIMIZERS`` when this module is imported.

Nobody imports this module up front: it is the ``location`` of ``OPTIMIZERS``, so the
registry imports it the first time a name is missing there. ``import camshaft.runner``
therefore registers nothing, and ``dict(type='AdamW', ...)`` still finds
``torch.optim.AdamW``.

Every ``torch.optim.Optimizer`` subclass exposed by ``torch.optim`` is registered under
its class name (the abstract base ``Optimizer`` itself is not). A name that is already
registered — a user's own ``'SGD'``, say — is left alone. ``torch.optim.Adafactor`` is
also registered as ``'TorchAdafactor'``, the name MMEngine gives it.
"""

from __future__ import annotations

import inspect

import torch

from camshaft.runner._registry import OPTIMIZERS

__all__ = ["register_torch_optimizers"]


def register_torch_optimizers() -> list[str]:
    """Register the optimizers of ``torch.optim`` in ``OPTIMIZERS`` (idempotent).

    Returns:
        The names registered by this call.
    """
    registered: list[str] = []
    for name in sorted(dir(torch.optim)):
        obj = getattr(torch.optim, name)
        if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)):
            continue
        if obj is torch.optim.Optimizer:
            continue
        aliases = [name, "TorchAdafactor"] if name == "Adafactor" else [name]
        for alias in aliases:
            if alias not in OPTIMIZERS.module_dict:
                OPTIMIZERS.register_module(name=alias, module=obj)
                registered.append(alias)
    return registered


TORCH_OPTIMIZERS = register_torch_optimizers()
"""The names this module registered when it was imported."""
