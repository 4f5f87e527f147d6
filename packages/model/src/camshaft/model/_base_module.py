"""``BaseModule``: an ``nn.Module`` that initialises its weights from ``init_cfg``.

The rules ``init_weights`` obeys (MMEngine's, so migrated models initialise the same):

* A module applies its own ``init_cfg`` entries (see :func:`camshaft.init.initialize`),
  except checkpoint entries (``type='Pretrained'``), to its whole subtree.
* Then every direct child that has an ``init_weights`` runs it: a ``BaseModule`` not yet
  initialised, or a plain ``nn.Module`` with its own ``init_weights`` method. Plain
  children without one are walked through, so the modules inside an ``nn.Sequential``
  or ``nn.ModuleList`` are reached. Running after the parent's entries, a child's own
  initialisation wins.
* Then the module's checkpoint entries load, so loaded weights win over everything.
* ``is_init`` becomes True; a second call warns and does nothing.

A hand-written ``init_weights`` (a plain child's, or a ``BaseModule`` subclass's that
does not call ``super().init_weights()``) is credited in the report with
``Initialized by user-defined `init_weights` in <Class>``. The outermost call also
records and logs what set each parameter, checks that no parameter object was added or
replaced, and materialises ``meta`` models; see :mod:`._init_session`.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from camshaft.init import update_init_info
from camshaft.model._init_cfg import InitCfg, apply_cfgs, check_init_cfg, split_cfgs
from camshaft.model._init_report import InitReportEntry, user_defined
from camshaft.model._init_session import InitSession, current_session, run_outermost
from camshaft.model._materialize import parse_device

__all__ = ["BaseModule"]


class BaseModule(nn.Module):
    """Base class of modules whose weights are initialised by ``init_cfg``.

    Args:
        init_cfg: One initializer config (``dict(type='Kaiming', layer='Conv2d')``),
            a list of them, or None. Stored as a deep copy in :attr:`init_cfg`, which
            may be reassigned before :meth:`init_weights` runs.

    Attributes:
        init_cfg: The initializer config(s) applied by :meth:`init_weights`.
        is_init: False until :meth:`init_weights` has run (on this module or as part
            of a parent's).

    Raises:
        TypeError: ``init_cfg`` is not a dict, a list of dicts or None.

    Example:
        >>> from torch import nn
        >>> class ToyNet(BaseModule):
        ...     def __init__(self, init_cfg=None):
        ...         super().__init__(init_cfg)
        ...         self.conv = nn.Conv2d(1, 1, 1)
        >>> net = ToyNet(init_cfg=dict(type='Constant', layer='Conv2d', val=1))
        >>> net.init_weights()
        >>> net.conv.weight.item(), net.is_init
        (1.0, True)
    """

    def __init__(self, init_cfg: InitCfg | None = None) -> None:
        super().__init__()
        self._set_init_cfg(init_cfg)

    def _set_init_cfg(self, init_cfg: InitCfg | None) -> None:
        """Validate and store ``init_cfg``; reset the init state. For the containers."""
        check_init_cfg(init_cfg, "init_cfg")
        self.init_cfg: InitCfg | None = copy.deepcopy(init_cfg)
        self.is_init = False
        self._init_report: list[InitReportEntry] | None = None

    def init_weights(self, *, device: torch.device | str | None = None) -> None:
        """Initialise the weights by ``init_cfg`` and the children's ``init_weights``.

        The outermost call (one not made from another module's ``init_weights``) also
        logs to the ``camshaft`` logger a one-line summary at INFO and the
        per-parameter table at DEBUG; :meth:`init_report` returns the same entries.

        Meta-device models: if the model has tensors on the ``meta`` device, the
        outermost call first gives them storage on ``device`` (uninitialised, once:
        no PyTorch default init runs first), then initialises as usual, so building
        under ``with torch.device('meta'):`` and calling ``init_weights(device=...)``
        never holds two copies of the weights. Before that, the module's own
        ``Pretrained`` entries are loaded into the meta model by assignment, so what
        the checkpoint provides is never allocated (it stays memory-mapped) nor
        written by the other entries (while they run, those tensors are still on
        meta, so they draw no random numbers either). Batch norms get
        ``reset_running_stats()``; other materialised buffers are zero-filled.
        Materialised parameters that no ``init_cfg`` entry, hand-written
        ``init_weights`` or checkpoint set get their module's ``reset_parameters()``
        (PyTorch's default init). One ``UserWarning`` names them, any that have no
        such method (they keep uninitialised memory), and any zero-filled buffer
        that nothing set.

        Args:
            device: Keyword-only. Where to put the model's tensors: meta tensors are
                allocated there and the others moved there (as ``module.to(device)``
                does). None keeps tensors where they are and allocates meta tensors
                on torch's default device (CPU unless changed with
                ``torch.set_default_device``). Only the outermost call uses it.

        Raises:
            TypeError: ``init_cfg`` is not a dict / list of dicts, or ``device`` is
                not a ``torch.device``, str or None.
            ValueError: ``device`` is unknown to torch, ``'meta'``, or CUDA where
                there is none.
            RuntimeError: ``init_weights`` (this one or a child's) added, removed or
                replaced a parameter object instead of writing it in place.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> class Net(BaseModule):
            ...     def __init__(self, init_cfg=None):
            ...         super().__init__(init_cfg)
            ...         self.fc = nn.Linear(4, 4)
            >>> with torch.device('meta'):
            ...     net = Net(init_cfg=dict(type='Kaiming', layer='Linear'))
            >>> net.init_weights(device='cpu')
            >>> net.fc.weight.device
            device(type='cpu')
        """
        if self.is_init:
            warnings.warn(
                f"{type(self).__name__}.init_weights() was already called (is_init is True); "
                "this call does nothing. Set `is_init = False` first to initialise again.",
                UserWarning,
                stacklevel=2,
            )
            return
        target = parse_device(device)
        if current_session() is not None:
            self._init_tree(preloaded=False)
            return
        own = check_init_cfg(self.init_cfg, f"{type(self).__name__}.init_cfg")
        _, pretrained = split_cfgs(own)
        self._init_report = run_outermost(self, target, pretrained, self._init_tree)

    def _init_tree(self, preloaded: bool) -> None:
        """Own entries, then the children, then own checkpoint entries (unless preloaded)."""
        own = check_init_cfg(self.init_cfg, f"{type(self).__name__}.init_cfg")
        first, last = split_cfgs(own)
        apply_cfgs(self, first)
        _init_children(self, current_session())
        if not preloaded:
            apply_cfgs(self, last)
        self.is_init = True

    def init_report(self) -> list[InitReportEntry]:
        """What set each parameter last, from the last outermost :meth:`init_weights`.

        Returns:
            One entry per parameter, in ``named_parameters()`` order.

        Raises:
            RuntimeError: ``init_weights`` has not run on this module as the outermost
                call (it was never called, or it ran as part of a parent's: ask the
                parent).

        Example:
            >>> from torch import nn
            >>> class Net(BaseModule):
            ...     def __init__(self):
            ...         super().__init__(dict(type='Constant', layer='Linear', val=0))
            ...         self.fc = nn.Linear(1, 1)
            >>> net = Net()
            >>> net.init_weights()
            >>> [(e.name, e.source) for e in net.init_report()]
            [('fc.weight', 'ConstantInit'), ('fc.bias', 'ConstantInit')]
        """
        if self._init_report is None:
            how = (
                "it was initialised by a parent module's init_weights(); read the parent's "
                "init_report()"
                if self.is_init
                else "call init_weights() first"
            )
            raise RuntimeError(f"{type(self).__name__} has no init report: {how}.")
        return list(self._init_report)

    def __repr__(self) -> str:
        text = super().__repr__()
        if self.init_cfg:
            text += f"\ninit_cfg={self.init_cfg!r}"
        return text


def _init_children(parent: nn.Module, session: InitSession | None) -> None:
    """Run the children's ``init_weights``, walking through plain modules without one."""
    for child in parent.children():
        if isinstance(child, BaseModule):
            if not child.is_init:
                _init_base_child(child, session)
            continue
        own_init = getattr(child, "init_weights", None)
        if callable(own_init):
            own_init()
            update_init_info(child, user_defined(type(child).__name__))
            if session is not None:
                session.covered_by_user(child)
        else:
            _init_children(child, session)


def _init_base_child(child: BaseModule, session: InitSession | None) -> None:
    """``child.init_weights()``, crediting a subclass's own override in the report."""
    child.init_weights()
    if type(child).init_weights is BaseModule.init_weights:
        return
    credit = user_defined(type(child).__name__)
    if not child.is_init:  # the override did not call super().init_weights()
        update_init_info(child, credit)
        child.is_init = True
        if session is not None:
            session.covered_by_user(child)
    elif session is not None:  # credit what the override set beyond its init_cfg
        for param in child.parameters():
            if session.record.describe(param) is None:
                session.record.mark(param, credit)
