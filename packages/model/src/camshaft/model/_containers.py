"""``Sequential``, ``ModuleList`` and ``ModuleDict`` that take an ``init_cfg``.

Each is the torch container with :class:`BaseModule`'s ``init_weights`` added: the
container's ``init_cfg`` applies to everything inside it, and each inner module's own
``init_weights`` runs afterwards, so an inner module's own ``init_cfg`` wins. Indexing,
slicing, iteration and ``forward`` are torch's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import nn

from camshaft.model._base_module import BaseModule
from camshaft.model._init_cfg import InitCfg

__all__ = ["ModuleDict", "ModuleList", "Sequential"]


class Sequential(BaseModule, nn.Sequential):
    """``nn.Sequential`` with an ``init_cfg``.

    Args:
        *args: The modules, in order, or one ``OrderedDict`` of named modules (as
            ``nn.Sequential`` takes them).
        init_cfg: Keyword-only. Initializer config(s) for the whole container.

    Raises:
        TypeError: ``init_cfg`` is not a dict, a list of dicts or None.

    Example:
        >>> from torch import nn
        >>> seq = Sequential(nn.Linear(2, 2), nn.ReLU(),
        ...                  init_cfg=dict(type='Constant', layer='Linear', val=0))
        >>> seq.init_weights()
        >>> float(seq[0].weight.detach().abs().sum())
        0.0
    """

    def __init__(self, *args: nn.Module, init_cfg: InitCfg | None = None) -> None:
        # nn.Sequential.__init__ sets up nn.Module itself; BaseModule adds its state.
        nn.Sequential.__init__(self, *args)
        self._set_init_cfg(init_cfg)


class ModuleList(BaseModule, nn.ModuleList):
    """``nn.ModuleList`` with an ``init_cfg``.

    Args:
        modules: The modules to hold, or None for an empty list.
        init_cfg: Initializer config(s) for the whole container.

    Raises:
        TypeError: ``init_cfg`` is not a dict, a list of dicts or None.

    Example:
        >>> from torch import nn
        >>> layers = ModuleList([nn.Linear(2, 2) for _ in range(3)],
        ...                     init_cfg=dict(type='Xavier', layer='Linear'))
        >>> layers.init_weights()
    """

    def __init__(
        self, modules: Iterable[nn.Module] | None = None, init_cfg: InitCfg | None = None
    ) -> None:
        nn.ModuleList.__init__(self, modules)
        self._set_init_cfg(init_cfg)


class ModuleDict(BaseModule, nn.ModuleDict):
    """``nn.ModuleDict`` with an ``init_cfg``.

    Args:
        modules: A mapping of names to modules, or None for an empty dict.
        init_cfg: Initializer config(s) for the whole container.

    Raises:
        TypeError: ``init_cfg`` is not a dict, a list of dicts or None.

    Example:
        >>> from torch import nn
        >>> heads = ModuleDict(dict(cls=nn.Linear(4, 3), reg=nn.Linear(4, 2)),
        ...                    init_cfg=dict(type='Normal', layer='Linear', std=0.01))
        >>> heads.init_weights()
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module] | None = None,
        init_cfg: InitCfg | None = None,
    ) -> None:
        nn.ModuleDict.__init__(self, modules)
        self._set_init_cfg(init_cfg)
