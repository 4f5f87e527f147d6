"""``BaseInit``: what every initializer shares, ``bias`` handling and ``layer`` matching.

An initializer is built once from its config and called on a module. It fills the
``weight``/``bias`` of every submodule whose class matches ``layer`` (the module
itself included), using MMEngine's rule so migrated configs touch the same modules:
a submodule matches when its class name, or the name of one of its class's *direct*
bases, is listed. ``class MyConv(nn.Conv2d)`` matches ``'Conv2d'``; a subclass of
``MyConv`` does not.

``init_module`` fills one module regardless of its class; ``initialize`` uses it for
``override`` targets. Every fill is reported to the active init record (see
``_init_info``) with the initializer's :meth:`~BaseInit.describe` line.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import torch
from torch import nn

from camshaft.init._functional import _require_real, bias_init_with_prob
from camshaft.init._init_info import _active_record

__all__ = ["BaseInit"]


def _layer_names(layer: object) -> list[str]:
    if layer is None:
        return []
    if isinstance(layer, str):
        return [layer]
    if isinstance(layer, (list, tuple)):
        for item in layer:
            if not isinstance(item, str):
                raise TypeError(
                    "`layer` must hold class names (str), but it holds "
                    f"{item!r} ({type(item).__name__}) in {layer!r}"
                )
        return list(layer)
    raise TypeError(
        f"`layer` must be None, a class name or a list of class names, got "
        f"{layer!r} ({type(layer).__name__})"
    )


class BaseInit:
    """Base of the initializers: bias handling and ``layer`` matching.

    Subclasses implement :meth:`init_module` (fill one module's own weight and bias)
    and :meth:`describe`. MMEngine-style subclasses that override ``__call__``
    instead keep working when used with ``layer``.

    Args:
        bias: The value every matched bias is filled with.
        bias_prob: When given, the bias is ``bias_init_with_prob(bias_prob)`` instead
            of ``bias`` (for focal-loss heads).
        layer: Class name(s) of the submodules to initialise. None matches nothing:
            such an initializer is only useful as an ``override`` or via
            :meth:`init_module`.

    Raises:
        TypeError: ``bias`` is not a number, or ``layer`` not a str or list of str.
        ValueError: ``bias_prob`` is not in (0, 1).
    """

    matches_whole_module: ClassVar[bool] = False
    """True for initializers that act on the module they are called with as a whole
    (``PretrainedInit``): ``initialize`` then needs no ``layer`` and warns of nothing."""

    def __init__(
        self,
        *,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | tuple[str, ...] | None = None,
    ) -> None:
        _require_real("bias", bias)
        if bias_prob is not None:
            if isinstance(bias_prob, bool) or not isinstance(bias_prob, Real):
                raise ValueError(
                    f"`bias_prob` must be None or a float in the open interval (0, 1), "
                    f"got {bias_prob!r} ({type(bias_prob).__name__})"
                )
            if not 0 < bias_prob < 1:
                raise ValueError(
                    f"`bias_prob` must be in the open interval (0, 1), got {bias_prob!r}"
                )
            bias = bias_init_with_prob(bias_prob)
        self.bias = bias
        self.bias_prob = bias_prob
        self.layer: list[str] = _layer_names(layer)
        self._layers = frozenset(self.layer)

    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` is selected by ``layer``.

        Args:
            module: Any module.

        Returns:
            True when its class name or a direct base class name is in ``layer``.
        """
        return _class_matches(type(module), self._layers)

    def init_module(self, module: nn.Module) -> None:
        """Fill ``module``'s own ``weight`` and ``bias``, whatever its class.

        Args:
            module: The module; its children are not visited.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement init_module(module) (or override __call__)"
        )

    def describe(self) -> str:
        """One line naming the initializer and its arguments, as the init log prints it."""
        return f"{type(self).__name__}: bias={self.bias}"

    def __call__(self, module: nn.Module) -> None:
        """Initialise every submodule of ``module`` (itself included) matched by ``layer``.

        Args:
            module: The root of the subtree to walk.
        """
        if not self._layers:
            return
        seen: dict[type, bool] = {}
        for sub in module.modules():
            cls = type(sub)
            hit = seen.get(cls)
            if hit is None:
                hit = seen[cls] = _class_matches(cls, self._layers)
            if hit:
                self.init_module(sub)

    def _report(self, module: nn.Module) -> None:
        """Mark the weight and bias just written in the active init record."""
        record = _active_record()
        if record is None:
            return
        description = self.describe()
        for name in ("weight", "bias"):
            tensor = getattr(module, name, None)
            if isinstance(tensor, torch.Tensor) and not tensor.is_meta:
                record.mark(tensor, description)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"<{self.describe()}, layer={self.layer}>"


def _class_matches(cls: type, layers: frozenset[str]) -> bool:
    if cls.__name__ in layers:
        return True
    return any(base.__name__ in layers for base in cls.__bases__)
