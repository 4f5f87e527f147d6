"""Calling a module's ``forward`` directly when ``module(...)`` would do nothing more.

``nn.Module.__call__`` costs two Python frames and an argument repack before it
reaches ``forward``; on a small model that is a visible share of a training step,
and ``train_step`` makes two such calls per batch (the preprocessor, the model).
When a module has no hooks, is not compiled with ``module.compile()`` and nothing is
being traced, torch's own ``_call_impl`` does exactly ``self.forward(*args,
**kwargs)``: :func:`direct_forward` answers whether that holds and, if so, returns
the ``forward`` to call. Anything it does not recognise (a class that overrides
``__call__``, a patched ``nn.Module.__call__`` as ``torch.fx`` installs while tracing,
a torch without one of the attributes it reads) answers None, and the caller goes
through ``__call__`` as usual.

The hook tables read here are the ones torch's ``_call_impl`` tests before its own
shortcut; ``tests/test_direct_call.py`` checks that list against torch's source, so
a torch that adds a new kind of hook fails that test instead of losing the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _torch_module

__all__ = ["HOOK_ATTRIBUTES", "HOOK_TABLES", "direct_forward"]

#: Per-module hook dicts that ``nn.Module._call_impl`` tests.
HOOK_ATTRIBUTES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
#: Module-level hook dicts of ``torch.nn.modules.module`` that ``_call_impl`` tests.
HOOK_TABLES = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)

_MODULE_CALL = nn.Module.__call__
_MODULE_CALL_IMPL = getattr(nn.Module, "_call_impl", None)
# A torch without one of these has changed its calling code: never shortcut. The class
# default of ``_compiled_call_impl`` lets it be read without ``Module.__getattr__``.
_SUPPORTED = (
    _MODULE_CALL_IMPL is not None
    and "_compiled_call_impl" in vars(nn.Module)
    and all(isinstance(getattr(_torch_module, name, None), dict) for name in HOOK_TABLES)
)
_tracing_state = torch._C._get_tracing_state


def direct_forward(module: nn.Module) -> Callable[..., Any] | None:
    """``module.forward`` when calling it is all that ``module(...)`` would do, else None.

    Args:
        module: The module about to be called.

    Returns:
        The bound ``forward`` (an instance attribute of that name included, as torch
        would call it), or None when the call must go through ``module(...)``.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> direct_forward(layer) == layer.forward
        True
        >>> handle = layer.register_forward_hook(lambda *args: None)
        >>> direct_forward(layer) is None
        True
    """
    cls = module.__class__
    if (
        not _SUPPORTED
        or cls.__call__ is not _MODULE_CALL
        or cls._call_impl is not _MODULE_CALL_IMPL
        # Read from the module each time: a table may be rebound, not only filled.
        or _torch_module._global_forward_hooks
        or _torch_module._global_forward_pre_hooks
        or _torch_module._global_backward_hooks
        or _torch_module._global_backward_pre_hooks
    ):
        return None
    if module._compiled_call_impl is not None:  # module.compile() was called
        return None
    state = module.__dict__
    try:
        if (
            state["_forward_hooks"]
            or state["_forward_pre_hooks"]
            or state["_backward_hooks"]
            or state["_backward_pre_hooks"]
        ):
            return None
    except KeyError:  # a torch that keeps these elsewhere: take the usual path
        return None
    if _tracing_state():  # torch.jit.trace calls _slow_forward instead
        return None
    forward: Callable[..., Any] = module.forward
    return forward
