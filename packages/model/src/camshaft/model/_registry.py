"""The registry of models, data preprocessors and averaged models.

``BaseModel(data_preprocessor=dict(type=...))`` and the runner's ``model=dict(type=...)``
look names up here. Downstream libraries make a child registry with
``Registry('model', parent=MODELS, scope='mylib')``.
"""

from __future__ import annotations

from camshaft.registry import Registry

__all__ = ["MODELS"]

MODELS = Registry(
    "model",
    scope="camshaft",
    # Importing _registry alone must still find the built-in models.
    locations=["camshaft.model._data_preprocessor", "camshaft.model._averaged_model"],
)
"""Models, data preprocessors, and weight-averaging models, by name.

Example:
    >>> from camshaft.model import MODELS
    >>> MODELS.get("BaseDataPreprocessor").__name__
    'BaseDataPreprocessor'
"""
