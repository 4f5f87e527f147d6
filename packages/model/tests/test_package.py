"""The installed distribution and the import agree, and camshaft stays a namespace package."""

import importlib.metadata

import camshaft
import camshaft.model


def test_version_matches_distribution_metadata() -> None:
    assert camshaft.model.__version__ == importlib.metadata.version("camshaft-model")


def test_camshaft_is_a_namespace_package() -> None:
    # PEP 420: no camshaft/__init__.py, so packages installed apart share the namespace.
    assert getattr(camshaft, "__file__", None) is None
    assert "__version__" in camshaft.model.__all__
