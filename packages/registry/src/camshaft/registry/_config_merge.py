"""Dotted-key overrides: the engine of ``Config.merge_from_dict``.

A key such as ``model.layers.0.type`` is a path: each component steps into a dict
by name (a missing name creates an empty dict, so overrides can add sections) or
into a list by integer index (negative indices count from the end). The last
component is assigned; when both the old and the new value are dicts they merge,
following the same rule as ``_base_`` (``_delete_=True`` replaces).

Anything else (an empty component, stepping into a number or a string, a
non-integer or out-of-range list index, assigning into a tuple) raises
:class:`ConfigError` naming the whole key and the component that failed.
"""

from __future__ import annotations

from typing import Any

from camshaft.registry._config_dict import merge_config_dicts
from camshaft.registry._errors import ConfigError

__all__ = ["apply_dotted"]


def apply_dotted(root: dict[Any, Any], key: Any, value: Any) -> None:
    """Set ``value`` at the dotted path ``key`` inside ``root``, in place.

    Args:
        root: The config dict to change.
        key: A dotted path such as ``'model.backbone.depth'`` or ``'layers.0.type'``.
        value: The new value; a dict merges into an existing dict.

    Raises:
        ConfigError: The key is malformed or does not lead to a settable place.
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(
            f"merge_from_dict: keys must be non-empty dotted strings such as "
            f"'model.backbone.depth', got {key!r}"
        )
    parts = key.split(".")
    if "" in parts:
        raise ConfigError(f"merge_from_dict: key {key!r} has an empty component")
    node: Any = root
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the config root"
        last = depth == len(parts) - 1
        if isinstance(node, dict):
            if last:
                node[part] = _merged(node, part, value)
                return
            if part not in node:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list):
            index = _list_index(node, part, key, where)
            if last:
                node[index] = _merged({index: node[index]}, index, value)
                return
            node = node[index]
        else:
            kind = type(node).__name__
            why = (
                "tuples cannot be changed item by item; set the whole tuple instead"
                if isinstance(node, tuple)
                else "only dicts and lists can be stepped into"
            )
            raise ConfigError(
                f"merge_from_dict: cannot apply key {key!r}: {where!r} holds {kind} "
                f"{node!r}, so it has no item {part!r}; {why}"
            )


def _merged(container: dict[Any, Any], slot: Any, value: Any) -> Any:
    """Return what ``container[slot]`` becomes when ``value`` is merged over it."""
    base = {slot: container[slot]} if slot in container else {}
    return merge_config_dicts(base, {slot: value})[slot]


def _list_index(node: list[Any], part: str, key: str, where: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(
            f"merge_from_dict: cannot apply key {key!r}: {where!r} is a list, so component "
            f"{part!r} must be an integer index"
        ) from None
    if not -len(node) <= index < len(node):
        raise ConfigError(
            f"merge_from_dict: cannot apply key {key!r}: index {part} is out of range "
            f"for {where!r}, a list of length {len(node)}"
        )
    return index
