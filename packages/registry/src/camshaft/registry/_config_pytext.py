"""Render a config dict as Python source: ``Config.pretty_text`` and ``.py`` dumps.

The text is what a person would write by hand (``model = dict(type='ResNet',
depth=50)``; nested values move to their own indented lines when a line would pass
100 characters) and it is also exact: running it as a config file gives back an
equal dict. That exactness decides a few details:

* dicts whose keys are all identifiers are written ``dict(k=v)``, others as
  ``{'k': v}``; tuples keep their tuple syntax (``(1,)``); ``inf``/``nan`` are
  written ``float('inf')``/``float('nan')``;
* a class, function or enum member is written by name with an import line at the
  top. The import binds a private alias (``from pkg.models import Net as _Net``)
  because config files drop private names, so reading the file back does not add
  a key ``Net``; a top-level key that already holds that very object is imported
  under its own name instead;
* a top-level key that is not an identifier is written ``globals()['a-b'] = ...``;
  a top-level key that shadows a builtin the text uses (``dict = ...``) makes the
  text refer to that builtin through a private alias.

In strict mode (``.py`` dumps) a value with no Python form (an instance of an
arbitrary class, a class defined inside a function or inside a config file) raises
:class:`ConfigError` naming its dotted key; otherwise (``pretty_text``) it is
written with ``repr`` so that display never fails.
"""

from __future__ import annotations

import enum
import keyword
import math
import sys
import types
from collections.abc import Mapping
from typing import Any

from camshaft.registry._config_dict import join_key
from camshaft.registry._errors import ConfigError

__all__ = ["render_python"]

_WIDTH = 100
_INDENT = 4


def render_python(data: Mapping[Any, Any], *, strict: bool = True) -> str:
    """Render a config dict as the source of a Python config file.

    Args:
        data: The config, a mapping of names to values.
        strict: Raise on values that cannot be written as Python (True), or show
            them with ``repr`` (False, for display).

    Returns:
        Python source ending with a newline; empty for an empty config.

    Raises:
        ConfigError: In strict mode, a value or top-level key cannot be written;
            the message names its dotted key.
    """
    return _PyWriter(data, strict).render()


def _is_name(key: Any) -> bool:
    """Whether ``key`` can be written as a Python name and be read back unchanged."""
    if not (isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)):
        return False
    if key.isascii():
        return True
    import unicodedata  # Python normalises names (NFKC): 'º' would come back as 'o'

    return unicodedata.normalize("NFKC", key) == key


class _PyWriter:
    """One rendering: collects the import lines the body needs while writing it."""

    def __init__(self, data: Mapping[Any, Any], strict: bool) -> None:
        self.data = data
        self.strict = strict
        self.taken = {key for key in data if isinstance(key, str)}
        self.imports: dict[tuple[str, str], str] = {}  # (module, name) -> bound name
        self.active: set[int] = set()

    def render(self) -> str:
        body = []
        for key, value in self.data.items():
            if isinstance(key, str) and key.startswith("_") and self.strict:
                raise ConfigError(
                    f"cannot write config key {key!r} to Python: names starting with '_' "
                    "are private in Python configs and would be dropped when read back"
                )
            if not isinstance(key, str) and self.strict:
                raise ConfigError(
                    f"cannot write top-level config key {key!r} to Python: "
                    f"top-level keys must be strings, got {type(key).__name__}"
                )
            target = key if _is_name(key) else f"{self._builtin('globals')}()[{key!r}]"
            text = self._block(value, 0, len(target) + 3, str(key))
            if text != target:  # ``Net = Net`` is already done by its import line
                body.append(f"{target} = {text}")
        header = sorted(self._import_line(key, alias) for key, alias in self.imports.items())
        parts = ["\n".join(header)] if header else []
        if body:
            parts.append("\n".join(body))
        return "\n\n".join(parts) + "\n" if parts else ""

    # -- names and imports ------------------------------------------------------------

    @staticmethod
    def _import_line(key: tuple[str, str], alias: str) -> str:
        module, name = key
        if not name:
            return f"import {module}" + (f" as {alias}" if alias != module else "")
        return f"from {module} import {name}" + (f" as {alias}" if alias != name else "")

    def _bind(self, module: str, name: str, obj: Any) -> str:
        """Return the name ``obj`` (``module.name``, or the module when name is '') has."""
        key = (module, name)
        if key in self.imports:
            return self.imports[key]
        plain = name or module
        if module == "builtins" and plain not in self.taken:
            return plain
        if module != "builtins" and self.data.get(plain) is obj:
            alias = plain
        else:
            alias = "_" + plain if not plain.startswith("_") else plain
            bound = set(self.imports.values())
            stem, count = alias, 1
            while alias in bound or alias in self.taken:
                count += 1
                alias = f"{stem}_{count}"
        self.imports[key] = alias
        return alias

    def _builtin(self, name: str) -> str:
        return self._bind("builtins", name, None)

    def _reference(self, obj: Any, path: str) -> str:
        """Return an importable name for a class/function, or fail/fall back."""
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        found = None
        if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
            found = sys.modules.get(module)
            for part in qualname.split("."):
                found = getattr(found, part, None)
        if found is not obj or module is None or qualname is None:
            return self._unwritable(obj, path, "it cannot be imported by name")
        head, _, rest = qualname.partition(".")
        return self._bind(module, head, getattr(sys.modules[module], head)) + (
            f".{rest}" if rest else ""
        )

    def _unwritable(self, value: Any, path: str, why: str) -> str:
        if self.strict:
            raise ConfigError(
                f"cannot write config key {path!r} to Python: {type(value).__name__} "
                f"{value!r}: {why}; replace it with plain data or an importable class"
            )
        return repr(value)

    # -- values ------------------------------------------------------------------------

    def _block(self, value: Any, indent: int, used: int, path: str) -> str:
        """Render ``value`` at ``indent``, breaking containers over lines when too long."""
        flat = self._flat(value, path)
        if indent + used + len(flat) <= _WIDTH or not isinstance(value, (dict, list, tuple)):
            return flat
        if not value or (isinstance(value, tuple) and hasattr(value, "_fields")):
            return flat
        inner = " " * (indent + _INDENT)
        lines = []
        if isinstance(value, dict):
            named = all(_is_name(key) for key in value)
            for key, item in value.items():
                lead = f"{key}=" if named else f"{self._flat(key, path)}: "
                sub = self._block(item, indent + _INDENT, len(lead) + 1, join_key(path, key))
                lines.append(f"{inner}{lead}{sub},\n")
            opening, closing = (f"{self._builtin('dict')}(", ")") if named else ("{", "}")
        else:
            for index, item in enumerate(value):
                sub = self._block(item, indent + _INDENT, 1, join_key(path, index))
                lines.append(f"{inner}{sub},\n")
            opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        return opening + "\n" + "".join(lines) + " " * indent + closing

    def _flat(self, value: Any, path: str) -> str:
        """Render ``value`` on one line."""
        if isinstance(value, enum.Enum):
            return f"{self._reference(type(value), path)}.{value.name}"
        if value is None or isinstance(value, bool):
            return repr(value)
        if isinstance(value, float):
            if math.isnan(value):
                return f"{self._builtin('float')}('nan')"
            if math.isinf(value):
                return ("" if value > 0 else "-") + f"{self._builtin('float')}('inf')"
            return repr(float(value))
        if isinstance(value, int):
            return repr(int(value))
        if isinstance(value, str):
            return repr(str.__str__(value))
        if isinstance(value, (bytes, complex)):
            return repr(value)
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self._reference(value, path)
        if isinstance(value, (dict, list, tuple, set, frozenset)):
            if id(value) in self.active:
                return self._unwritable(value, path, "it contains itself")
            self.active.add(id(value))
            try:
                return self._flat_container(value, path)
            finally:
                self.active.discard(id(value))
        dt = sys.modules.get("datetime")  # loaded whenever such a value exists
        if dt is not None and isinstance(value, (dt.date, dt.time, dt.timedelta)):
            return repr(value).replace("datetime.", self._bind("datetime", "", dt) + ".")
        return self._unwritable(value, path, "it has no Python literal form")

    def _flat_container(self, value: Any, path: str) -> str:
        if isinstance(value, dict):
            if all(_is_name(key) for key in value):
                items = [f"{k}={self._flat(v, join_key(path, k))}" for k, v in value.items()]
                return f"{self._builtin('dict')}({', '.join(items)})"
            pairs = [
                f"{self._flat(k, path)}: {self._flat(v, join_key(path, k))}"
                for k, v in value.items()
            ]
            return "{" + ", ".join(pairs) + "}"
        parts = [self._flat(item, join_key(path, i)) for i, item in enumerate(value)]
        joined = ", ".join(parts)
        if isinstance(value, list):
            return f"[{joined}]"
        if isinstance(value, tuple):
            if hasattr(value, "_fields"):  # namedtuple: rebuild it by its class
                return f"{self._reference(type(value), path)}({joined})"
            return f"({joined},)" if len(parts) == 1 else f"({joined})"
        if isinstance(value, frozenset):
            frozen = self._builtin("frozenset")
            return f"{frozen}({{{joined}}})" if parts else f"{frozen}()"
        return f"{{{joined}}}" if parts else f"{self._builtin('set')}()"
