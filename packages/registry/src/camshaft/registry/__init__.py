"""camshaft.registry — registries that build objects from config dicts, and config files.

The bottom floor of camshaft: no torch, nothing outside the standard library at
import time (PyYAML is imported only when a YAML file is read or written).

* :class:`Registry` maps names to classes or functions; configs refer to them as
  ``dict(type='Name', ...)`` and :func:`build_from_cfg` (or ``Registry.build``)
  calls them. Registries form trees across libraries, addressed by *scope*.
* :class:`DefaultScope` chooses the scope that unprefixed names resolve in.
* :class:`Config` reads ``.py``, ``.json``, ``.toml`` and ``.yaml`` files with
  ``_base_`` inheritance; :class:`ConfigDict` gives attribute access;
  :class:`DictAction` parses ``--cfg-options key=value`` on the command line.

Example:
    >>> from camshaft.registry import Registry
    >>> MODELS = Registry('model', scope='example')
    >>> @MODELS.register_module()
    ... class Net:
    ...     def __init__(self, depth: int = 18) -> None:
    ...         self.depth = depth
    >>> MODELS.build(dict(type='Net', depth=50)).depth
    50
"""

from camshaft.registry._build import build_from_cfg
from camshaft.registry._config import Config
from camshaft.registry._config_dict import ConfigDict
from camshaft.registry._dict_action import DictAction
from camshaft.registry._errors import (
    BuildError,
    ConfigError,
    ConfigFileNotFoundError,
    RegistryError,
)
from camshaft.registry._registry import Registry
from camshaft.registry._scope import DefaultScope

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Registry",
    "build_from_cfg",
    "DefaultScope",
    "Config",
    "ConfigDict",
    "DictAction",
    "RegistryError",
    "BuildError",
    "ConfigError",
    "ConfigFileNotFoundError",
]
