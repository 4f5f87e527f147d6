"""A small TOML writer for config dicts.

The standard library reads TOML (``tomllib``) but cannot write it, and a config
package that depends on nothing should not pull in a writer for one format. Config
data is a small subset of what TOML holds, so the writer is short:

* nested dicts become ``[tables]``; a non-empty list whose items are all dicts
  becomes an ``[[array of tables]]``; any other value is written inline
  (``key = value``), dicts inside lists as ``{ inline = "tables" }``;
* strings are basic strings with every control character escaped; floats use
  ``repr`` (``inf``/``nan`` spelled the TOML way); tuples become arrays; dates and
  times are written in ISO form;
* ``None`` has no TOML form, nor do integers outside the signed 64-bit range or
  non-string keys: each raises :class:`ConfigError` naming the dotted key.

What it writes, ``tomllib.loads`` reads back to an equal dict.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from camshaft.registry._config_dict import join_key
from camshaft.registry._errors import ConfigError

__all__ = ["render_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_ESCAPES["\r"] = "\\r"
_INT64 = (-(2**63), 2**63 - 1)
_WRAP_AT = 100


def render_toml(data: Mapping[Any, Any]) -> str:
    """Render a config dict as TOML text.

    Args:
        data: The config; keys must be strings.

    Returns:
        The TOML document, ending with a newline.

    Raises:
        ConfigError: A value has no TOML form; the message names its dotted key.
    """
    lines: list[str] = []
    _write_table(lines, data, (), "", set())
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n"


def _fail(path: str, why: str) -> ConfigError:
    return ConfigError(f"cannot write config key {path!r} to TOML: {why}")


def _key(key: Any, path: str) -> str:
    if not isinstance(key, str):
        raise _fail(path, f"TOML keys must be strings, got {type(key).__name__} {key!r}")
    return key if _BARE_KEY.fullmatch(key) else _quote(key)


def _quote(text: str) -> str:
    out = []
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(item, dict) for item in value)
    )


def _has_inline(table: Mapping[Any, Any]) -> bool:
    return any(not (isinstance(v, dict) or _is_table_array(v)) for v in table.values())


def _write_table(
    lines: list[str], table: Mapping[Any, Any], keys: tuple[str, ...], path: str, active: set[int]
) -> None:
    """Append ``table``'s inline entries, then its sub-tables and arrays of tables."""
    if id(table) in active:
        raise _fail(path, "it contains itself")
    active.add(id(table))
    nested: list[tuple[str, str, Any]] = []
    for key, value in table.items():
        sub = join_key(path, key)
        name = _key(key, sub)
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((name, sub, value))
        else:
            lines.append(f"{name} = {_inline(value, sub, active, top=True)}")
    for name, sub, value in nested:
        header = ".".join((*keys, name))
        if isinstance(value, dict):
            if _has_inline(value) or not value:  # else the sub-tables imply this header
                lines += ["", f"[{header}]"]
            _write_table(lines, value, (*keys, name), sub, active)
        else:
            for index, item in enumerate(value):
                lines += ["", f"[[{header}]]"]
                _write_table(lines, item, (*keys, name), join_key(sub, index), active)
    active.discard(id(table))


def _inline(value: Any, path: str, active: set[int], top: bool = False) -> str:
    """Return the inline TOML form of ``value`` (long top-level arrays span lines)."""
    if value is None:
        raise _fail(path, "TOML has no null value (None); drop the key or use another value")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise _fail(path, f"{value} is outside the signed 64-bit range TOML integers allow")
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(float(value))
    if isinstance(value, str):
        return _quote(value)
    dt = sys.modules.get("datetime")  # loaded whenever such a value exists
    if dt is not None and isinstance(value, (dt.date, dt.time)):
        return str(value.isoformat())
    if isinstance(value, (list, tuple, dict)):
        if id(value) in active:
            raise _fail(path, "it contains itself")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                items = [
                    f"{_key(k, join_key(path, k))} = {_inline(v, join_key(path, k), active)}"
                    for k, v in value.items()
                ]
                return "{ " + ", ".join(items) + " }" if items else "{}"
            parts = [_inline(v, join_key(path, i), active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
        flat = "[" + ", ".join(parts) + "]"
        if not top or len(flat) <= _WRAP_AT or any("\n" in part for part in parts):
            return flat
        return "[\n" + "".join(f"    {part},\n" for part in parts) + "]"
    raise _fail(path, f"a value of type {type(value).__name__} ({value!r}) has no TOML form")
