"""The registry of weight initializers.

``init_cfg`` dicts name their initializer with ``type``; that name is looked up here.
The built-in initializers register themselves in ``_initializers`` (and
``PretrainedInit`` in ``_pretrained``) under a short and a long name, e.g.
``"Kaiming"`` and ``"KaimingInit"``, so configs written for MMEngine resolve unchanged.
"""

from __future__ import annotations

from camshaft.registry import Registry

__all__ = ["WEIGHT_INITIALIZERS"]

WEIGHT_INITIALIZERS = Registry(
    "weight initializer",
    scope="camshaft",
    # Importing _registry alone must still find the built-in initializers.
    locations=["camshaft.init._initializers", "camshaft.init._pretrained"],
)
"""Initializers that :func:`~camshaft.init.initialize` builds from ``init_cfg`` dicts.

Example:
    >>> from camshaft.init import WEIGHT_INITIALIZERS
    >>> WEIGHT_INITIALIZERS.get("Kaiming").__name__
    'KaimingInit'
"""
