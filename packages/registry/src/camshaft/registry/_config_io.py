"""Reading and writing one config file, format by format.

This module knows file formats and nothing about inheritance: :func:`load_text`
turns the text of one file into a dict (``_base_`` included, untouched) and
:func:`dump_text` turns a dict into text. ``Config`` in ``_config.py`` combines them.

Only the standard library is imported here. The TOML reader (``tomllib``, or
``tomli`` on Python 3.10) and PyYAML are imported inside the functions that need
them, so that ``import camshaft.registry`` stays cheap and PyYAML stays optional.

Every failure is a :class:`ConfigError` that names the file (and the line when the
parser reports one) or, when writing, the dotted key whose value cannot be written.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping
from typing import Any

from camshaft.registry._config_dict import join_key
from camshaft.registry._errors import ConfigError

__all__ = ["BASE_KEY", "FORMATS", "dump_text", "format_of", "load_text", "write_atomic"]

BASE_KEY = "_base_"

#: File suffix -> format name. The order is the order error messages list them in.
FORMATS: dict[str, str] = {
    ".py": "py",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
}

_YAML_HINT = "reading or writing YAML configs needs PyYAML: pip install 'camshaft-registry[yaml]'"


def format_of(name: str | os.PathLike[str]) -> str:
    """Return the format name (``'py'``, ``'json'``, ``'toml'``, ``'yaml'``) for a path.

    Args:
        name: A file path or a bare suffix (``'.json'``).

    Returns:
        The format name.

    Raises:
        ConfigError: The suffix is not one of :data:`FORMATS`.
    """
    text = os.fspath(name)
    suffix = text if text.startswith(".") and os.sep not in text else os.path.splitext(text)[1]
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        shown = repr(suffix) if suffix else "no extension"
        raise ConfigError(
            f"unsupported config file type {shown} for {text!r}; "
            f"supported extensions: {', '.join(FORMATS)}"
        )
    return fmt


# -- reading --------------------------------------------------------------------------


def load_text(text: str, fmt: str, filename: str) -> dict[str, Any]:
    """Parse the text of one config file into a dict.

    Args:
        text: The file's contents.
        fmt: ``'py'``, ``'json'``, ``'toml'`` or ``'yaml'``.
        filename: The name used in error messages (and as ``__file__`` for Python).

    Returns:
        The top-level mapping, ``_base_`` included when the file has one.

    Raises:
        ConfigError: The text does not parse, a Python config raises, or the top
            level is not a mapping.
    """
    loaders = {"py": _load_py, "json": _load_json, "toml": _load_toml, "yaml": _load_yaml}
    data = loaders[fmt](text, filename)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{filename}: the top level of a config must be a mapping of names to values, "
            f"got {type(data).__name__}"
        )
    return data


def _load_py(text: str, filename: str) -> dict[str, Any]:
    _refuse_mmengine_placeholders(text, filename)
    try:
        code = compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as err:
        raise ConfigError(
            f"{filename}, line {err.lineno}: invalid Python syntax in config: {err.msg}"
        ) from err
    namespace: dict[str, Any] = {"__name__": "__camshaft_config__", "__file__": filename}
    try:
        exec(code, namespace)
    except Exception as err:
        raise ConfigError(
            f"{filename}{_failing_line(err, filename)}: running the Python config raised "
            f"{type(err).__name__}: {err}"
        ) from err
    # Keep public names; drop private helpers (``_x``) and imported modules.
    # ``_base_`` is the one private name with a meaning.
    return {
        name: value
        for name, value in namespace.items()
        if isinstance(name, str)
        and (name == BASE_KEY or not name.startswith("_"))
        and not isinstance(value, types.ModuleType)
    }


def _refuse_mmengine_placeholders(text: str, filename: str) -> None:
    """Fail clearly on MMEngine's ``{{_base_.x}}`` / ``{{ fileDirname }}`` text macros.

    They are valid Python syntax (a set inside a set), so without this check they
    fail later with a baffling ``unhashable type: 'set'``.
    """
    if "{{" not in text:
        return
    import re

    found = re.search(r"\{\{\s*(_base_\.[\w.]+|file\w+)\s*\}\}", text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise ConfigError(
            f"{filename}, line {line}: {found.group(0)} is an MMEngine text macro, which "
            "camshaft does not expand; write the value itself (a key inherited from "
            "_base_ is merged in without being named), or compute it with __file__"
        )


def _failing_line(err: BaseException, filename: str) -> str:
    import traceback

    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == filename]
    return f", line {lines[-1]}" if lines else ""


def _load_json(text: str, filename: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{filename}, line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}"
        ) from err


def _load_toml(text: str, filename: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib as toml_reader
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as toml_reader
        except ModuleNotFoundError:
            raise ConfigError(
                f"{filename}: reading TOML configs on Python 3.10 needs the tomli package: "
                "pip install tomli"
            ) from None
    try:
        return toml_reader.loads(text)
    except toml_reader.TOMLDecodeError as err:
        raise ConfigError(f"{filename}: invalid TOML: {err}") from err


def _import_yaml() -> Any:
    try:
        import yaml
    except ModuleNotFoundError:
        raise ConfigError(_YAML_HINT) from None
    return yaml


def _load_yaml(text: str, filename: str) -> Any:
    yaml = _import_yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{filename}: invalid YAML: {err}") from err
    return {} if data is None else data


# -- writing --------------------------------------------------------------------------


def dump_text(data: Mapping[Any, Any], fmt: str, *, strict: bool = True) -> str:
    """Render a config dict as the text of a file of format ``fmt``.

    Tuples are written as lists in JSON, TOML and YAML (those formats have no tuple).

    Args:
        data: The config, a mapping of names to values.
        fmt: ``'py'``, ``'json'``, ``'toml'`` or ``'yaml'``.
        strict: For ``'py'`` only: when False, values that cannot be written as
            Python are shown with ``repr`` instead of raising (for display).

    Returns:
        The text, ending with a newline.

    Raises:
        ConfigError: A value cannot be represented in the format; the message names
            its dotted key (``model.layers.0.act``).
    """
    # The writers load on first use: reading configs never pays for them.
    if fmt == "py":
        from camshaft.registry._config_pytext import render_python

        return render_python(data, strict=strict)
    if fmt == "toml":
        from camshaft.registry._config_toml import render_toml

        return render_toml(data)
    plain = _plain_tree(data, "", fmt, set())
    if fmt == "json":
        import json

        return json.dumps(plain, indent=4, ensure_ascii=False) + "\n"
    yaml = _import_yaml()

    class Dumper(yaml.SafeDumper):  # type: ignore[name-defined]
        """SafeDumper that double-quotes strings PyYAML would otherwise corrupt."""

    def represent_str(dumper: Any, text: str) -> Any:
        # PyYAML writes NEL (U+0085) raw in plain and single-quoted scalars, where
        # YAML reads it as a line break; the double-quoted style escapes it.
        style = '"' if "\x85" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(str, represent_str)
    text: str = yaml.dump(
        plain, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return text


def _plain_tree(value: Any, path: str, fmt: str, active: set[int]) -> Any:
    """Copy ``value`` into JSON/YAML-safe builtins, raising on what ``fmt`` cannot hold."""
    name = fmt.upper()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        if id(value) in active:
            raise ConfigError(f"cannot write config key {path!r} to {name}: it contains itself")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                result: dict[Any, Any] = {}
                for key, item in value.items():
                    if not isinstance(key, str) and (fmt == "json" or not _is_scalar(key)):
                        raise ConfigError(
                            f"cannot write config key {join_key(path, key)!r} to {name}: "
                            f"keys must be strings, got {type(key).__name__}"
                        )
                    result[key] = _plain_tree(item, join_key(path, key), fmt, active)
                return result
            return [
                _plain_tree(item, join_key(path, i), fmt, active) for i, item in enumerate(value)
            ]
        finally:
            active.discard(id(value))
    for base in (int, float, str):  # subclasses such as IntEnum: keep the plain value
        if isinstance(value, base):
            return base.__str__(value) if base is str else base(value)
    dt = sys.modules.get("datetime")  # loaded whenever such a value exists
    if fmt == "yaml" and dt is not None and isinstance(value, dt.date):
        return value
    raise ConfigError(
        f"cannot write config key {path!r} to {name}: a value of type "
        f"{type(value).__name__} ({value!r}) has no {name} form; "
        "write the config as a .py file, or replace the value with plain data"
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A failure (full disk, interruption) leaves any previous file at ``path`` intact
    and no partial file behind.

    Args:
        path: The destination file; its folder must exist.
        text: The contents, written as UTF-8.
    """
    import tempfile

    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
