"""Loading a config file together with the ``_base_`` files it inherits from.

:func:`load_tree` reads one file, loads each base it names (recursively, paths
relative to the naming file), merges the bases in order and the file on top, and
returns one ConfigDict. The chain of files being loaded is carried down the
recursion, so a base that leads back into the chain is reported as a cycle
(``a.py -> b.py -> a.py``) instead of recursing forever. A file reached twice
through different bases (a diamond) is fine: it is simply read twice.

:func:`import_custom_modules_from` implements MMEngine's ``custom_imports``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from camshaft.registry._config_dict import ConfigDict, merge_config_dicts
from camshaft.registry._config_io import BASE_KEY, format_of, load_text
from camshaft.registry._errors import ConfigError, ConfigFileNotFoundError

__all__ = ["build_tree", "import_custom_modules_from", "load_tree"]


def load_tree(path: str) -> ConfigDict:
    """Read the config file at ``path`` and everything it inherits from.

    Args:
        path: An absolute path to a config file.

    Returns:
        The merged settings, without ``_base_`` and ``_delete_`` keys.

    Raises:
        ConfigFileNotFoundError: ``path`` or one of its bases does not exist.
        ConfigError: A file cannot be read or parsed, or ``_base_`` is invalid or
            cyclic.
    """
    return _load(path, (), os.path.dirname(path), None)


def build_tree(data: dict[str, Any], here: str) -> ConfigDict:
    """Merge already-parsed ``data`` over the bases it names.

    Args:
        data: One parsed file; its ``_base_`` key, if any, is removed.
        here: The file ``data`` came from; base paths are relative to its folder.

    Returns:
        The merged settings.
    """
    return _build(data, here, (), os.path.dirname(here))


def _load(path: str, chain: tuple[str, ...], root: str, referrer: str | None) -> ConfigDict:
    resolved = os.path.realpath(path)
    if resolved in chain:
        cycle = [*chain[chain.index(resolved) :], resolved]
        names = " -> ".join(_display(p, root) for p in cycle)
        raise ConfigError(f"_base_ inheritance cycle: {names}")
    named_in = f" (named in _base_ of {referrer})" if referrer is not None else ""
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise ConfigError(f"config path {path} is not a file{named_in}")
        raise ConfigFileNotFoundError(f"config file not found: {path}{named_in}")
    fmt = format_of(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    data = load_text(text, fmt, path)
    return _build(data, path, (*chain, resolved), root)


def _build(data: dict[str, Any], here: str, chain: tuple[str, ...], root: str) -> ConfigDict:
    merged = ConfigDict()
    for base in _base_paths(data.pop(BASE_KEY, None), here):
        merged = merge_config_dicts(merged, _load(base, chain, root, here))
    return merge_config_dicts(merged, data)


def _base_paths(value: Any, here: str) -> list[str]:
    """Turn a ``_base_`` value into absolute paths, validating its type."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(
            f"{here}: _base_ must be a path or a list of paths, "
            f"got {type(value).__name__}: {value!r}"
        )
    folder = os.path.dirname(here)
    paths = []
    for index, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigError(
                f"{here}: _base_[{index}] must be a path (str), got {type(item).__name__}: {item!r}"
            )
        relative = os.path.expanduser(os.fspath(item))
        paths.append(os.path.normpath(os.path.join(folder, relative)))
    return paths


def _display(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, os.path.realpath(root))
    except ValueError:  # a different drive on Windows
        return path


def import_custom_modules_from(cfg: Mapping[str, Any]) -> None:
    """Import the modules a config lists under ``custom_imports``.

    ``custom_imports = dict(imports=['my_pkg.models'], allow_failed_imports=False)``
    imports ``my_pkg.models`` so that the classes it registers can be built. With
    ``allow_failed_imports=True`` a failed import is a warning instead of an error.

    Args:
        cfg: The loaded config.

    Raises:
        ConfigError: ``custom_imports`` is malformed, or a module fails to import
            and failures are not allowed.
    """
    spec = cfg.get("custom_imports")
    if spec is None:
        return
    if not isinstance(spec, Mapping) or "imports" not in spec:
        raise ConfigError(
            "custom_imports must be dict(imports=[module names], allow_failed_imports=False), "
            f"got {spec!r}"
        )
    names = spec["imports"]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"custom_imports.imports must be a list of module names, got {names!r}")
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            if not spec.get("allow_failed_imports", False):
                raise ConfigError(f"custom_imports: cannot import {name!r}: {err}") from err
            import warnings

            warnings.warn(f"custom_imports: skipped {name!r}: {err}", stacklevel=3)
