"""``is_model_wrapper``, and the checks every camshaft wrapper makes alike.

Hooks and checkpointing unwrap a model before they read its attributes or state:
:func:`is_model_wrapper` tells them when the real model is ``model.module``. A class
counts as a wrapper when it is registered in ``MODEL_WRAPPERS`` or in any registry
below it (a downstream library's ``Registry(..., parent=MODEL_WRAPPERS)``), or
subclasses one that is.

The private helpers below keep the wrappers' refusals worded the same: a model that
is wrapped already, no process group, a model without ``BaseModel``'s methods, an
optimizer where an optimizer wrapper belongs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch.distributed as dist
from torch import nn

from camshaft.dist._registry import MODEL_WRAPPERS
from camshaft.model import OptimWrapperProtocol
from camshaft.registry import Registry

__all__ = [
    "is_model_wrapper",
    "check_wrappable",
    "base_model_of",
    "check_optim_wrapper",
    "run_forward",
]


def is_model_wrapper(model: nn.Module, registry: Registry = MODEL_WRAPPERS) -> bool:
    """Return whether ``model`` is an instance of a class registered as a model wrapper.

    Args:
        model: The model to test.
        registry: The registry whose classes, and whose child registries' classes,
            count as wrappers.

    Returns:
        True for ``MMDistributedDataParallel``, torch's ``DistributedDataParallel``
        and every other registered wrapper (subclasses included).

    Raises:
        TypeError: ``registry`` is not a Registry.

    Example:
        >>> from torch import nn
        >>> is_model_wrapper(nn.Linear(2, 2))
        False
    """
    if not isinstance(registry, Registry):
        raise TypeError(f"`registry` must be a Registry, got {type(registry).__name__}")
    if registry is MODEL_WRAPPERS and "torch.distributed.fsdp" in sys.modules:
        # An FSDP1 instance implies torch's FSDP is imported; registering it is free then.
        MODEL_WRAPPERS.import_from_location()
    pending = [registry]
    while pending:
        current = pending.pop()
        classes = tuple(obj for obj in current.module_dict.values() if isinstance(obj, type))
        if classes and isinstance(model, classes):
            return True
        pending.extend(current.children.values())
    return False


def check_wrappable(module: object, wrapper: str) -> None:
    """Refuse what ``wrapper`` cannot wrap: a non-module, or a model wrapped already."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"{wrapper}: `module` must be an nn.Module, got {type(module).__name__}")
    if is_model_wrapper(module):
        raise TypeError(
            f"{wrapper}: `module` is already wrapped in {type(module).__name__}; wrapping "
            "twice would synchronise gradients twice. Pass the model itself (`model.module`)"
        )
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"{wrapper} needs a default process group, and none exists; call "
            "camshaft.dist.init_dist(launcher) (or torch.distributed.init_process_group) first"
        )


def base_model_of(module: nn.Module, wrapper: str) -> Any:
    """Return ``module`` typed as ``Any`` once it has what the step methods call."""
    missing = [name for name in ("data_preprocessor", "parse_losses") if not hasattr(module, name)]
    if missing:
        raise TypeError(
            f"{wrapper}.train_step needs a model like camshaft.model.BaseModel, but "
            f"{type(module).__name__} has no {' or '.join(missing)}; derive the model "
            "from BaseModel, or call the wrapper's forward yourself"
        )
    return module


def check_optim_wrapper(optim_wrapper: object, wrapper: str) -> None:
    """Refuse an optimizer wrapper without ``update_params`` and ``optim_context``."""
    if not isinstance(optim_wrapper, OptimWrapperProtocol):
        raise TypeError(
            f"{wrapper}.train_step: `optim_wrapper` must have `update_params(loss)` and "
            f"`optim_context(model)`, got {type(optim_wrapper).__name__}. HINT: wrap the "
            "optimizer as OptimWrapper(optimizer=...) from camshaft.runner"
        )


def run_forward(model: nn.Module, data: Any, mode: str) -> Any:
    """Call ``model`` with ``data`` unpacked: ``**`` for a dict, ``*`` for a list/tuple."""
    if isinstance(data, Mapping):
        return model(**data, mode=mode)
    if isinstance(data, (list, tuple)):
        return model(*data, mode=mode)
    raise TypeError(
        f"the preprocessed batch must be a dict (passed to forward as **kwargs) or a "
        f"list/tuple (passed as *args), got {type(data).__name__}"
    )
