"""Materialising a model built on the ``meta`` device, for ``init_weights(device=...)``.

A model built under ``with torch.device("meta"):`` has tensors with shapes and no
storage. :func:`materialize` gives each of them uninitialised storage on the target
device, once; ``init_weights`` then writes every parameter. Nothing runs PyTorch's
default initialisation first, so a parameter is written once, not twice.

Why not ``nn.Module.to_empty``: it replaces *every* tensor, so a partly loaded model
would lose its data, and it replaces a shared (tied) parameter once per module that
holds it, untying it. :func:`materialize` touches only what needs it and keeps ties.

The rest of this module handles what ``to_empty`` leaves behind:

* buffers: modules with ``reset_running_stats()`` (batch norms) get it called; other
  buffers are zero-filled and watched, and those that nothing sets later (a checkpoint,
  a user-defined ``init_weights``) are named in a warning;
* parameters that nothing initialised: :func:`fill_uncovered` runs their module's
  ``reset_parameters()`` (PyTorch's default init) where there is one;
* the top-level checkpoint: :func:`preload` loads a module's own ``Pretrained``
  entries into the meta model *before* materialising, so the checkpoint's tensors
  (memory-mapped) are assigned without allocating storage for those parameters at all.
  They are parked (meta placeholders stand in for them while the rest of
  ``init_weights`` runs, so no initializer writes them) and put back by :func:`restore`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from camshaft.init import InitRecord
from camshaft.model._init_cfg import LabelledCfg, apply_cfgs
from camshaft.model._init_report import reset_by_default

__all__ = [
    "default_device",
    "fill_uncovered",
    "has_meta",
    "materialize",
    "parse_device",
    "preload",
    "restore",
    "watch_buffer_loads",
]

Slot = tuple[nn.Module, str, torch.Tensor]
"""A tensor held by a module under a name (a parameter or a buffer)."""

PendingBuffers = dict[int, tuple[nn.Module, set[str]]]
"""Zero-filled buffers nothing has set yet: ``id(module) -> (module, buffer names)``."""


def parse_device(device: object) -> torch.device | None:
    """Check ``init_weights``'s ``device`` argument.

    Raises:
        TypeError: ``device`` is not None, a str or a ``torch.device``.
        ValueError: torch does not know it, it is ``meta``, or it is CUDA without CUDA.
    """
    if device is None:
        return None
    if not isinstance(device, str | torch.device):
        raise TypeError(
            "`device` must be a torch.device, a str such as 'cpu' or 'cuda:0', or None, got "
            f"{type(device).__name__}: {device!r}"
        )
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"`device`={device!r} is not a device torch knows ({exc}); expected e.g. 'cpu', "
            "'cuda' or 'cuda:1'"
        ) from None
    if parsed.type == "meta":
        raise ValueError(
            "`device`='meta': init_weights allocates the model's storage, so it needs a real "
            "device. Pass device='cpu' or device='cuda'."
        )
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"`device`={device!r}, but CUDA is not available here. Pass device='cpu', or run "
            "on a machine with a CUDA device."
        )
    return parsed


def default_device() -> torch.device:
    """Where meta tensors go when ``init_weights`` gets no ``device``: torch's default."""
    device = torch.get_default_device()
    if device.type == "meta":
        raise ValueError(
            "the model has tensors on the meta device and `device` was not given, but torch's "
            "default device is 'meta' too (init_weights was called inside "
            "`with torch.device('meta')`). Pass device='cpu' or device='cuda'."
        )
    return device


def _slots(module: nn.Module) -> Iterator[tuple[Slot, bool]]:
    """Every (module, name, tensor) in the tree, with True for parameters."""
    for sub in module.modules():
        params = sub.named_parameters(recurse=False, remove_duplicate=False)
        buffers = sub.named_buffers(recurse=False, remove_duplicate=False)
        for name, param in list(params):
            yield (sub, name, param), True
        for name, buffer in list(buffers):
            yield (sub, name, buffer), False


def has_meta(module: nn.Module) -> bool:
    """Whether any parameter or buffer of ``module`` is on the meta device."""
    # One walk over the modules, reading their tensor dicts: parameters() and buffers()
    # would walk the tree twice, with a generator step per tensor.
    for sub in module.modules():
        for param in sub._parameters.values():
            if param is not None and param.is_meta:
                return True
        for buffer in sub._buffers.values():
            if buffer is not None and buffer.is_meta:
                return True
    return False


def _empty(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Uninitialised storage shaped like ``tensor`` on ``device``.

    Not ``torch.empty_like``: from a meta tensor it runs torch's Python reference
    implementation, whose first call imports ``torch._refs`` (~0.7 s).
    """
    channels_last = tensor.dim() == 4 and not tensor.is_contiguous()
    if channels_last and tensor.is_contiguous(memory_format=torch.channels_last):
        layout = torch.channels_last
    else:
        layout = torch.contiguous_format
    return torch.empty(tensor.shape, dtype=tensor.dtype, device=device, memory_format=layout)


def _placeholder(tensor: torch.Tensor, is_param: bool) -> torch.Tensor:
    meta = _empty(tensor, "meta")
    return nn.Parameter(meta, requires_grad=tensor.requires_grad) if is_param else meta


def preload(module: nn.Module, cfgs: list[LabelledCfg]) -> tuple[list[Slot], set[int]]:
    """Load checkpoint entries into a meta model by assignment, then park what loaded.

    Returns:
        The loaded tensors, each with the place it belongs, and the ids of the meta
        placeholders that hold those places until :func:`restore`.
    """
    was_meta = {(id(sub), name) for (sub, name, t), _ in _slots(module) if t.is_meta}
    apply_cfgs(module, cfgs)
    loaded: list[Slot] = []
    stand_ins: dict[int, torch.Tensor] = {}
    for (sub, name, tensor), is_param in _slots(module):
        if tensor.is_meta or (id(sub), name) not in was_meta:
            continue
        stand_in = stand_ins.get(id(tensor))
        if stand_in is None:
            stand_in = stand_ins[id(tensor)] = _placeholder(tensor, is_param)
        setattr(sub, name, stand_in)
        loaded.append((sub, name, tensor))
    return loaded, {id(t) for t in stand_ins.values()}


def restore(loaded: list[Slot], device: torch.device, record: InitRecord) -> None:
    """Put the tensors :func:`preload` parked back, moved to ``device`` if elsewhere."""
    moved: dict[int, torch.Tensor] = {}
    for sub, name, tensor in loaded:
        target = moved.get(id(tensor))
        if target is None:
            target = tensor.to(device)
            if target is not tensor and isinstance(tensor, nn.Parameter):
                target = nn.Parameter(target, requires_grad=tensor.requires_grad)
                description = record.describe(tensor)
                if description is not None:
                    record.mark(target, description)
            moved[id(tensor)] = target
        setattr(sub, name, target)


def materialize(
    module: nn.Module, device: torch.device, parked: set[int]
) -> tuple[set[int], PendingBuffers]:
    """Allocate every meta tensor on ``device`` (uninitialised) and move the others there.

    Tied tensors stay tied; the placeholders in ``parked`` stay on meta. Batch-norm-like
    modules get ``reset_running_stats()``; other materialised buffers are zero-filled
    and returned as pending. Tensors with no elements need no value and are neither.

    Returns:
        The ids of the parameters given fresh storage, and the pending buffers.
    """
    replaced: dict[int, torch.Tensor] = {}
    fresh: set[int] = set()
    new_buffers: dict[int, tuple[nn.Module, set[str]]] = {}
    for (sub, name, tensor), is_param in _slots(module):
        if id(tensor) in parked:
            continue
        target = replaced.get(id(tensor))
        if target is None:
            target = _empty(tensor, device) if tensor.is_meta else tensor.to(device)
            if target is not tensor and is_param:
                target = nn.Parameter(target, requires_grad=tensor.requires_grad)
            replaced[id(tensor)] = target
            if not tensor.is_meta or tensor.numel() == 0:  # holds data, or needs none
                pass
            elif is_param:
                fresh.add(id(target))
            else:
                new_buffers.setdefault(id(sub), (sub, set()))[1].add(name)
        if target is not tensor:
            setattr(sub, name, target)
    pending: PendingBuffers = {}
    with torch.no_grad():
        for key, (sub, names) in new_buffers.items():
            reset = getattr(sub, "reset_running_stats", None)
            if callable(reset):
                reset()
                continue
            for name in names:
                getattr(sub, name).zero_()
            pending[key] = (sub, names)
    return fresh, pending


def watch_buffer_loads(pending: PendingBuffers) -> list[RemovableHandle]:
    """Load hooks that take a pending buffer off the list when a checkpoint sets it."""

    def hook(sub: nn.Module, state_dict: dict[str, object], prefix: str, *_: object) -> None:
        entry = pending.get(id(sub))
        if entry is not None:
            entry[1].difference_update({n for n in entry[1] if prefix + n in state_dict})

    return [sub.register_load_state_dict_pre_hook(hook) for sub, _ in pending.values()]


def fill_uncovered(
    module: nn.Module, fresh: set[int], record: InitRecord
) -> tuple[list[str], list[tuple[str, nn.Parameter]]]:
    """Give materialised parameters that nothing initialised their module's default init.

    A parameter counts as initialised when the init record describes it. For each
    module owning uninitialised ones, ``reset_parameters()`` is called; the module's
    other tensors (set by an init_cfg entry or a checkpoint) are kept as they were.

    Returns:
        The names reset this way (marked as such in ``record``), and the
        ``(name, parameter)`` pairs left uninitialised because their module has no
        ``reset_parameters()``.
    """
    reset_names: list[str] = []
    left: list[tuple[str, nn.Parameter]] = []
    if not fresh:  # nothing was materialised (the model was built on a real device)
        return reset_names, left
    for prefix, sub in module.named_modules():
        own = list(sub.named_parameters(recurse=False))
        bare = [(n, p) for n, p in own if id(p) in fresh and record.describe(p) is None]
        if not bare:
            continue
        names = [f"{prefix}.{n}" if prefix else n for n, _ in bare]
        reset = getattr(sub, "reset_parameters", None)
        if not callable(reset):
            left += [(name, p) for name, (_, p) in zip(names, bare, strict=True)]
            continue
        bare_ids = {id(p) for _, p in bare}
        keep = [
            t for t in chain(sub.parameters(False), sub.buffers(False)) if id(t) not in bare_ids
        ]
        with torch.no_grad():
            saved = [t.detach().clone() for t in keep]
            reset()
            for tensor, value in zip(keep, saved, strict=True):
                tensor.copy_(value)
        for _, param in bare:
            record.mark(param, reset_by_default(type(sub).__name__))
        reset_names += names
    return reset_names, left
