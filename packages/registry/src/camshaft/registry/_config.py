"""Config: a config file (Python, JSON, TOML or YAML) with ``_base_`` inheritance.

A :class:`Config` wraps one :class:`ConfigDict` and remembers the file it came
from. Its rules:

* ``_base_`` (a path or list of paths, relative to the file that names them) is
  loaded first, recursively; bases may be of any supported format. Several bases
  merge in order, then the file itself merges on top: dicts merge key by key,
  other values replace, and a child dict with ``_delete_=True`` replaces the base
  dict outright (see :func:`merge_config_dicts`). A base that leads back to a
  file already being loaded is an error that prints the cycle.
* Attribute and item access reach the config's keys (``cfg.model``,
  ``cfg['model']``, ``cfg.lr = 0.1``); names of Config's own methods and properties
  (``filename``, ``dump``, ...) stay reachable as keys through ``cfg['dump']``.
* :meth:`merge_from_dict` applies dotted overrides (``model.layers.0.type``) all or
  nothing: on a bad key the config is left as it was.
* :meth:`dump` writes any supported format (atomically) and what it writes,
  :meth:`fromfile` reads back to an equal config.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

from camshaft.registry._config_dict import ConfigDict
from camshaft.registry._config_io import dump_text, format_of, load_text, write_atomic
from camshaft.registry._config_load import build_tree, import_custom_modules_from, load_tree
from camshaft.registry._config_merge import apply_dotted
from camshaft.registry._errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Config"]


class Config:
    """A config: nested settings read from a file or built from a dict.

    Args:
        cfg_dict: The settings; nested dicts become :class:`ConfigDict`. Defaults
            to an empty config.
        filename: The file the settings came from, if any; it picks the format
            :meth:`dump` uses when given no path.

    Raises:
        ConfigError: ``cfg_dict`` is not a mapping.

    Example:
        >>> cfg = Config(dict(model=dict(type="ResNet", depth=50)))
        >>> cfg.model.depth
        50
        >>> cfg.merge_from_dict({"model.depth": 101})
        >>> cfg["model"]["depth"]
        101
        >>> print(cfg.pretty_text, end="")
        model = dict(type='ResNet', depth=101)
    """

    __slots__ = ("_cfg_dict", "_filename")
    _cfg_dict: ConfigDict
    _filename: str | None

    def __init__(
        self,
        cfg_dict: Mapping[Any, Any] | Config | None = None,
        filename: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(cfg_dict, Config):
            cfg_dict = cfg_dict._cfg_dict
        elif cfg_dict is None:
            cfg_dict = {}
        elif not isinstance(cfg_dict, Mapping):
            raise ConfigError(
                f"Config(cfg_dict=...) expects a dict, got {type(cfg_dict).__name__}: {cfg_dict!r}"
            )
        object.__setattr__(self, "_cfg_dict", ConfigDict(cfg_dict))
        object.__setattr__(self, "_filename", None if filename is None else os.fspath(filename))

    # -- construction -----------------------------------------------------------------

    @classmethod
    def fromfile(
        cls, filename: str | os.PathLike[str], import_custom_modules: bool = True
    ) -> Config:
        """Read a config file and the ``_base_`` files it inherits from.

        Args:
            filename: A ``.py``, ``.json``, ``.toml``, ``.yaml`` or ``.yml`` file.
            import_custom_modules: Import the modules listed in the config's
                ``custom_imports=dict(imports=[...], allow_failed_imports=False)``,
                so that the classes they register can be built.

        Returns:
            The merged config; ``filename`` is the file's absolute path.

        Raises:
            ConfigFileNotFoundError: The file, or a base it names, does not exist.
            ConfigError: Unknown extension, unparsable text, a bad ``_base_``, a
                ``_base_`` cycle, or a failed custom import.

        Example:
            >>> cfg = Config.fromfile("configs/resnet50.py")  # doctest: +SKIP
            >>> cfg.model.type  # doctest: +SKIP
            'ResNet'
        """
        path = os.path.abspath(os.path.expanduser(os.fspath(filename)))
        config = cls(load_tree(path), filename=path)
        if import_custom_modules:
            import_custom_modules_from(config._cfg_dict)
        return config

    @classmethod
    def fromstring(cls, text: str, file_format: str) -> Config:
        """Parse a config from text; ``_base_`` paths are relative to the working folder.

        Args:
            text: The config, as it would appear in a file.
            file_format: ``'py'``, ``'json'``, ``'toml'``, ``'yaml'``, or the same
                with a leading dot (``'.py'``).

        Returns:
            The config, with no ``filename``.

        Raises:
            ConfigError: Unknown format, unparsable text or a bad ``_base_``.

        Example:
            >>> Config.fromstring("lr = 0.1", "py").lr
            0.1
        """
        fmt = format_of(file_format if file_format.startswith(".") else f".{file_format}")
        data = load_text(text, fmt, f"<{fmt} string>")
        return cls(build_tree(data, os.path.join(os.getcwd(), f"<{fmt} string>")))

    # -- item and attribute access ----------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Config.__slots__:
            raise AttributeError(name)
        try:
            return self._cfg_dict[name]
        except KeyError:
            keys = ", ".join(repr(k) for k in list(self._cfg_dict)[:20]) or "none"
            raise AttributeError(
                f"Config has no attribute or key {name!r}; keys: {keys}", name=name, obj=self
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(type(self), name):
            raise AttributeError(
                f"cannot set {name!r} as an attribute: it is a Config method or property; "
                f"use item assignment to set the key: cfg[{name!r}] = ..."
            )
        self._cfg_dict[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._cfg_dict[name]
        except KeyError:
            raise AttributeError(f"Config has no key {name!r}", name=name, obj=self) from None

    def __getitem__(self, key: Any) -> Any:
        return self._cfg_dict[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cfg_dict[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._cfg_dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._cfg_dict

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cfg_dict)

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def __dir__(self) -> list[str]:
        keys = {k for k in self._cfg_dict if isinstance(k, str) and k.isidentifier()}
        return sorted(set(super().__dir__()) | keys)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._cfg_dict == other._cfg_dict
        if isinstance(other, Mapping):
            return self._cfg_dict == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is missing."""
        return self._cfg_dict.get(key, default)

    def keys(self) -> Any:
        """Return a view of the top-level keys."""
        return self._cfg_dict.keys()

    def values(self) -> Any:
        """Return a view of the top-level values."""
        return self._cfg_dict.values()

    def items(self) -> Any:
        """Return a view of the top-level ``(key, value)`` pairs."""
        return self._cfg_dict.items()

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``, as ``dict.pop``)."""
        return self._cfg_dict.pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, storing ``default`` first when it is missing."""
        return self._cfg_dict.setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update the top-level keys; nested dicts merge as in :meth:`ConfigDict.update`."""
        self._cfg_dict.update(*args, **kwargs)

    # -- whole-config operations ------------------------------------------------------

    @property
    def filename(self) -> str | None:
        """The absolute path of the file this config was read from, or None."""
        return self._filename

    def to_dict(self) -> dict[Any, Any]:
        """Return the settings as plain nested ``dict``/``list``/``tuple`` objects."""
        return self._cfg_dict.to_dict()

    def merge_from_dict(self, options: Mapping[str, Any]) -> None:
        """Apply overrides given as dotted keys, typically from ``--cfg-options``.

        Each key is a path into the config: names step into dicts (missing ones are
        created as empty dicts), integers index into lists (negative ones count
        from the end). A dict value merges into an existing dict (``_delete_=True``
        replaces it instead); any other value replaces. The update is all or
        nothing: if any key is bad, the config is left unchanged.

        Args:
            options: Dotted key -> new value.

        Raises:
            ConfigError: A key is empty, steps into a value that is not a dict or
                list, or indexes a list with a non-integer or out-of-range
                component; the message names the key and the component.

        Example:
            >>> cfg = Config(dict(model=dict(depth=18), layers=[dict(type="A")]))
            >>> cfg.merge_from_dict({"model.depth": 50, "layers.0.type": "B"})
            >>> cfg.model.depth, cfg.layers[0].type
            (50, 'B')
        """
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"merge_from_dict expects a dict of dotted keys, got {type(options).__name__}"
            )
        import copy

        updated = copy.deepcopy(self._cfg_dict)
        for key, value in options.items():
            apply_dotted(updated, key, value)
        object.__setattr__(self, "_cfg_dict", updated)

    @overload
    def dump(self, file: None = None) -> str: ...

    @overload
    def dump(self, file: str | os.PathLike[str]) -> Path: ...

    def dump(self, file: str | os.PathLike[str] | None = None) -> str | Path:
        r"""Write the config to a file, or return its text.

        The format follows the extension of ``file``; with no ``file``, that of
        :attr:`filename` (Python when there is none). The text is rendered before
        the file is touched, and written through a temporary file, so a failure
        leaves no partial file.

        Args:
            file: Where to write; its folder must exist.

        Returns:
            The text when ``file`` is None, else the path written.

        Raises:
            ConfigError: Unknown extension, or a value that the format cannot hold
                (``None`` in TOML, a class in JSON); the message names the key.

        Example:
            >>> text = Config(dict(lr=0.1)).dump()
            >>> text
            'lr = 0.1\n'
        """
        if file is None:
            fmt = format_of(self._filename) if self._filename else "py"
            return dump_text(self._cfg_dict, fmt)
        from pathlib import Path

        path = Path(file)
        text = dump_text(self._cfg_dict, format_of(path))
        write_atomic(os.fspath(path), text)
        return path

    @property
    def pretty_text(self) -> str:
        """The config as readable Python source that evaluates to the same settings."""
        return dump_text(self._cfg_dict, "py", strict=False)

    def __repr__(self) -> str:
        return f"Config (path: {self._filename}):\n{self.pretty_text}"

    # -- copying and pickling ---------------------------------------------------------

    def copy(self) -> Config:
        """Return a shallow copy: a new top-level dict sharing the nested values."""
        return type(self)(self._cfg_dict.copy(), self._filename)

    def __copy__(self) -> Config:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        object.__setattr__(new, "_cfg_dict", copy.deepcopy(self._cfg_dict, memo))
        object.__setattr__(new, "_filename", self._filename)
        return new

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg_dict": self._cfg_dict, "filename": self._filename}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_cfg_dict", state["cfg_dict"])
        object.__setattr__(self, "_filename", state["filename"])
