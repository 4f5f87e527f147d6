"""camshaft.preprocess — see the package README for what it provides."""

__version__ = "0.1.0"

__all__ = ["__version__"]
