"""The outermost ``init_weights`` call: recording, materialising, checking, reporting.

``BaseModule.init_weights`` calls nest (a parent initialises its children). The
outermost call, the one no other ``init_weights`` encloses, does the work that must
happen once per initialisation, in this order:

1. open :func:`camshaft.init.record_init`, so every initializer reports what it wrote;
2. if the model has tensors on the ``meta`` device (or a ``device`` was given):
   load the module's own ``Pretrained`` entries into the meta model by assignment
   (when it has any), then :func:`~._materialize.materialize` the rest onto the device;
3. remember every parameter object by name, run the module's own ``init_weights``
   body (its ``init_cfg`` and its children's ``init_weights``), and check that no
   parameter was added, removed or replaced by a new object (optimizers and the
   report hold parameters by identity, so ``init_weights`` must write in place);
   while the body runs, a :class:`~._prefault.PageWarmer` maps the pages of freshly
   materialised CPU parameters on another core, so the initializers do not stall on
   page faults;
4. put the parked checkpoint tensors back, give materialised parameters that nothing
   initialised their module's ``reset_parameters()``, and warn, by name, about what
   still holds no set value;
5. build the per-parameter report and log it (see :mod:`._init_report`).

The session is kept in a ``ContextVar``, so nested calls can tell they are nested and
threads do not see each other's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import nn

from camshaft.init import InitRecord, record_init
from camshaft.model import _materialize as mat
from camshaft.model._init_cfg import LabelledCfg
from camshaft.model._init_report import (
    UNINITIALIZED,
    InitReportEntry,
    log_report,
    source_of,
    unchanged,
)
from camshaft.model._prefault import PageWarmer

__all__ = ["InitSession", "current_session", "run_outermost"]

_SHOWN = 30  # names listed in a warning before "... and N more"


@dataclass
class InitSession:
    """What the outermost ``init_weights`` call shares with the nested ones.

    Attributes:
        record: The active init record.
        pending_buffers: Zero-filled buffers from the meta device that nothing has set.
    """

    record: InitRecord
    pending_buffers: mat.PendingBuffers = field(default_factory=dict)

    def covered_by_user(self, module: nn.Module) -> None:
        """A user-defined ``init_weights`` ran on ``module``: its buffers count as set."""
        if self.pending_buffers:
            for sub in module.modules():
                self.pending_buffers.pop(id(sub), None)


_SESSION: ContextVar[InitSession | None] = ContextVar("camshaft_init_session", default=None)


def current_session() -> InitSession | None:
    """The session of the enclosing ``init_weights`` call, or None when there is none."""
    return _SESSION.get()


def run_outermost(
    module: nn.Module,
    device: torch.device | None,
    pretrained: list[LabelledCfg],
    body: Callable[[bool], None],
) -> list[InitReportEntry]:
    """Run an outermost ``init_weights``: ``body(preloaded)`` does the module's own part.

    Args:
        module: The module ``init_weights`` was called on.
        device: Where to materialise meta tensors (and move the others), or None.
        pretrained: The module's own ``Pretrained`` entries, loaded early into a meta
            model; ``body`` is told (``preloaded=True``) not to apply them again.
        body: Applies ``init_cfg`` and initialises the children.

    Returns:
        The init report.
    """
    with record_init() as record:
        session = InitSession(record)
        token = _SESSION.set(session)
        try:
            return _run(module, device, pretrained, body, session)
        finally:
            _SESSION.reset(token)


def _run(
    module: nn.Module,
    device: torch.device | None,
    pretrained: list[LabelledCfg],
    body: Callable[[bool], None],
    session: InitSession,
) -> list[InitReportEntry]:
    owner = type(module).__name__
    on_meta = mat.has_meta(module)
    if on_meta and device is None:
        device = mat.default_device()
    loaded: list[mat.Slot] = []
    parked: set[int] = set()
    if on_meta and pretrained:
        loaded, parked = mat.preload(module, pretrained)
    fresh: set[int] = set()
    hooks = []
    try:
        if device is not None:
            fresh, session.pending_buffers = mat.materialize(module, device, parked)
            hooks = mat.watch_buffer_loads(session.pending_buffers)
        before = dict(module.named_parameters(remove_duplicate=False))
        fresh_params = {id(p): p for p in before.values() if id(p) in fresh}
        with PageWarmer(list(fresh_params.values()), device or torch.device("cpu")):
            body(bool(loaded))
        _check_same_parameters(owner, before, dict(module.named_parameters(remove_duplicate=False)))
    finally:
        for hook in hooks:
            hook.remove()
        if loaded and device is not None:
            mat.restore(loaded, device, session.record)
    reset, left = mat.fill_uncovered(module, fresh, session.record)
    _warn_uncovered(module, owner, reset, [name for name, _ in left], session.pending_buffers)
    entries = _entries(module, owner, session.record, {id(p) for _, p in left})
    log_report(owner, entries)
    return entries


def _check_same_parameters(
    owner: str, before: dict[str, nn.Parameter], after: dict[str, nn.Parameter]
) -> None:
    """Raise if ``init_weights`` added, removed or swapped a parameter object.

    Allowed: filling a parameter in place (``self.w = self.w.fill_(1)`` re-assigns the
    same object), tying a name to another parameter that already existed, and
    replacing a ``meta`` parameter (a checkpoint assigns into those).
    """
    known = {id(param) for param in before.values()}
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    replaced = [
        name
        for name, param in after.items()
        if name in before
        and param is not before[name]
        and not before[name].is_meta
        and id(param) not in known
    ]
    if not (added or removed or replaced):
        return
    problems = []
    if added:
        problems.append(f"added {added}")
    if replaced:
        problems.append(f"replaced {replaced} with new Parameter objects")
    if removed:
        problems.append(f"removed {removed}")
    raise RuntimeError(
        f"init_weights of {owner} {'; '.join(problems)}. init_weights must write into the "
        "parameters the model was built with, because optimizers and the init report hold "
        "them by identity. Fix: create parameters in __init__, and fill them in place under "
        "torch.no_grad(), e.g. `self.weight.fill_(1)` or `self.weight.copy_(value)`."
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"[{shown}, ... and {more} more]" if more > 0 else f"[{shown}]"


def _warn_uncovered(
    module: nn.Module,
    owner: str,
    reset: list[str],
    left: list[str],
    pending: mat.PendingBuffers,
) -> None:
    """One warning naming what was materialised and then set by nothing of ours."""
    if not (reset or left or pending):
        return
    buffers = [
        f"{prefix}.{name}" if prefix else name
        for prefix, sub in module.named_modules()
        if id(sub) in pending
        for name in sorted(pending[id(sub)][1])
    ]
    if not (reset or left or buffers):
        return
    parts = [
        f"init_weights({owner}) materialised tensors from the meta device that no "
        "init_cfg entry, user-defined `init_weights` or checkpoint set."
    ]
    if reset:
        parts.append(
            f"{len(reset)} parameter(s) got PyTorch's default init from their module's "
            f"reset_parameters(): {_listing(reset)}."
        )
    if left:
        parts.append(
            f"{len(left)} parameter(s) still hold uninitialized memory (their module has no "
            f"reset_parameters()): {_listing(left)}."
        )
    if buffers:
        parts.append(
            f"{len(buffers)} buffer(s) were zero-filled: {_listing(buffers)}; buffers "
            "computed in __init__ (position tables, masks) must come from a checkpoint, or "
            "build their module outside the meta device."
        )
    parts.append(
        "Fix: add init_cfg entries that cover them, e.g. dict(type='Normal', "
        "layer='Embedding', std=0.02), or give their module an init_weights method."
    )
    warnings.warn(" ".join(parts), UserWarning, stacklevel=5)


def _entries(
    module: nn.Module, owner: str, record: InitRecord, uninitialized: set[int]
) -> list[InitReportEntry]:
    entries = []
    kept = unchanged(owner)
    for name, param in module.named_parameters():
        description = record.describe(param)
        if description is not None:
            source = source_of(description)
        elif id(param) in uninitialized:
            description, source = UNINITIALIZED, "uninitialized"
        else:
            description, source = kept, "unchanged"
        entries.append(InitReportEntry(name, param.shape, description, source))
    return entries
