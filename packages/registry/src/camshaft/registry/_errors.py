"""Exception types raised by camshaft.registry.

Each family subclasses the builtin a caller would already catch, so code written
against ``KeyError``/``ValueError``/``TypeError`` keeps working, while callers who
want precision can catch ours.
"""

from __future__ import annotations

__all__ = ["BuildError", "ConfigError", "ConfigFileNotFoundError", "RegistryError"]


class RegistryError(KeyError):
    """A name could not be registered or looked up in a registry.

    ``KeyError`` renders its message with ``repr``; we override ``__str__`` so
    multi-line messages (closest names, hints) stay readable.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BuildError(TypeError):
    """An object could not be built from its config (bad cfg, or its constructor failed)."""


class ConfigError(ValueError):
    """A config file or config value is invalid: missing file, bad syntax, base cycle, bad key."""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A config file, or a ``_base_`` file it names, does not exist.

    It is both a :class:`ConfigError` and a :class:`FileNotFoundError`, so either
    ``except`` clause catches it. The message names the path that was looked up.
    """
