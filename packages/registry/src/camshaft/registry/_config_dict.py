"""ConfigDict: a ``dict`` whose keys can also be read and written as attributes.

Config files describe nested dicts, and code that consumes them reads
``cfg.model.backbone.depth`` far more often than it builds them. ConfigDict keeps
every promise of ``dict`` (it *is* one, so ``json.dumps``, ``**cfg`` and ``==``
against plain dicts all work) and adds three rules:

* every plain ``dict`` stored in it, at any depth and also inside lists and
  tuples, becomes a ConfigDict, whether it arrives through the constructor,
  ``cfg[k] = v``, ``cfg.k = v``, ``update`` or ``setdefault``;
* a missing attribute raises ``AttributeError`` (never ``KeyError``), naming the key
  and the keys that exist, so ``hasattr`` and ``getattr(cfg, k, default)`` work;
* ``update`` merges nested dicts key by key instead of replacing them, as in
  MMEngine, so ``cfg.model.update(backbone=dict(depth=50))`` keeps the other
  backbone keys.

The module also holds :func:`merge_config_dicts`, the rule ``_base_`` inheritance
uses (and ``Config.merge_from_dict``): dicts merge key by key, any other value
replaces, and ``_delete_=True`` in a child dict replaces the base dict outright.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DELETE_KEY", "ConfigDict", "join_key", "merge_config_dicts", "to_plain"]

DELETE_KEY = "_delete_"
_MAX_LISTED_KEYS = 20


def _convert(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Return ``value`` with every plain dict inside it turned into a ConfigDict.

    ``memo`` maps the ids of containers already converted to their copies, so a
    container that appears twice (or inside itself) is converted once.
    """
    if isinstance(value, ConfigDict) or not isinstance(value, (dict, list, tuple)):
        return value
    if memo is None:
        memo = {}
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, dict):
        new = ConfigDict()
        memo[id(value)] = new
        for key, item in value.items():
            dict.__setitem__(new, key, _convert(item, memo))
        return new
    if isinstance(value, list):
        items: list[Any] = []
        memo[id(value)] = items
        items.extend(_convert(item, memo) for item in value)
        return items
    if type(value) is tuple:
        return tuple(_convert(item, memo) for item in value)
    if hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_convert(item, memo) for item in value))
    return value


def to_plain(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Return a copy of ``value`` in which every dict is a plain ``dict``.

    Lists and tuples are rebuilt (namedtuples keep their type); other values are
    returned as they are, not copied. Shared and self-containing containers stay
    shared and self-containing in the copy.
    """
    if not isinstance(value, (dict, list, tuple)):
        return value
    if memo is None:
        memo = {}
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, dict):
        new: dict[Any, Any] = {}
        memo[id(value)] = new
        for key, item in value.items():
            new[key] = to_plain(item, memo)
        return new
    if isinstance(value, list):
        items: list[Any] = []
        memo[id(value)] = items
        items.extend(to_plain(item, memo) for item in value)
        return items
    if type(value) is tuple:
        return tuple(to_plain(item, memo) for item in value)
    if hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(to_plain(item, memo) for item in value))
    return value


def join_key(parent: str, key: Any) -> str:
    """Return the dotted path of ``key`` under ``parent`` (``'model.layers.0'``), for messages."""
    return f"{parent}.{key}" if parent else str(key)


def _describe_keys(mapping: Mapping[Any, Any]) -> str:
    keys = [repr(key) for key in mapping]
    if not keys:
        return "it has no keys"
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return f"available keys: {shown}" + (f", ... ({more} more)" if more > 0 else "")


class ConfigDict(dict):
    """A ``dict`` with attribute access whose nested dicts are ConfigDicts too.

    Args:
        *args: At most one mapping or iterable of key/value pairs, as for ``dict``.
        **kwargs: More keys, as for ``dict``.

    Example:
        >>> cfg = ConfigDict(model=dict(type="ResNet", depth=50))
        >>> cfg.model.depth
        50
        >>> cfg.model.norm = {"type": "BN"}
        >>> type(cfg.model.norm).__name__, cfg["model"]["norm"].type
        ('ConfigDict', 'BN')
        >>> getattr(cfg, "optimizer", None) is None
        True
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        memo: dict[int, Any] = {}
        if len(args) == 1 and isinstance(args[0], dict):
            memo[id(args[0])] = self  # a dict that contains itself maps to self
        for key, value in dict(*args, **kwargs).items():
            dict.__setitem__(self, key, _convert(value, memo))

    # -- item and attribute access -------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, _convert(value))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute or key {name!r}; {_describe_keys(self)}",
                name=name,
                obj=self,
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(type(self), name):
            raise AttributeError(
                f"cannot set {name!r} as an attribute: it is a {type(self).__name__} method; "
                f"use item assignment instead: cfg[{name!r}] = ..."
            )
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute or key {name!r}; {_describe_keys(self)}",
                name=name,
                obj=self,
            ) from None

    def __dir__(self) -> Iterable[str]:
        keys = [key for key in self if isinstance(key, str) and key.isidentifier()]
        return sorted(set(super().__dir__()) | set(keys))

    # -- dict methods that must keep the conversion --------------------------------

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update from a mapping and/or keywords, merging nested dicts key by key.

        Unlike ``dict.update``, when both the current value and the new value of a
        key are dicts the new dict is merged into the current one (recursively)
        instead of replacing it; this is MMEngine's behaviour. Any other new value
        replaces the old one.

        Args:
            *args: At most one mapping or iterable of key/value pairs.
            **kwargs: More keys.
        """
        for key, value in dict(*args, **kwargs).items():
            current = self.get(key)
            if isinstance(current, ConfigDict) and isinstance(value, dict):
                current.update(value)
            else:
                self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, first storing ``default`` (converted) if it is missing.

        Args:
            key: The key to look up.
            default: The value stored when ``key`` is missing.

        Returns:
            The stored value; a dict ``default`` comes back as the ConfigDict stored.
        """
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> ConfigDict:
        """Return a shallow copy that is a ConfigDict (``dict.copy`` returns a dict)."""
        return type(self)(self)

    def __copy__(self) -> ConfigDict:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> ConfigDict:
        import copy  # loaded already: copy.deepcopy is what calls this

        new = type(self)()
        memo[id(self)] = new
        for key, value in self.items():
            dict.__setitem__(new, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return new

    def __or__(self, other: Any) -> ConfigDict:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        for key, value in other.items():
            new[key] = value
        return new

    def __ror__(self, other: Any) -> ConfigDict:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = type(self)(other)
        for key, value in self.items():
            new[key] = value
        return new

    def __ior__(self, other: Any) -> ConfigDict:
        for key, value in dict(other).items():
            self[key] = value
        return self

    def to_dict(self) -> dict[Any, Any]:
        """Return a deep copy made of plain ``dict``, ``list`` and ``tuple`` objects.

        Returns:
            The same data with every ConfigDict replaced by a ``dict``; leaf values
            are shared, not copied.
        """
        result: dict[Any, Any] = to_plain(self)
        return result


def merge_config_dicts(base: Mapping[Any, Any], child: Mapping[Any, Any]) -> ConfigDict:
    """Merge ``child`` over ``base`` and return the result as a new ConfigDict.

    The rule of ``_base_`` inheritance: for a key in both, two dicts merge
    recursively; any other child value replaces the base value. A child dict with
    ``_delete_=True`` replaces the base dict instead of merging into it. ``_delete_``
    keys are removed from the result's nested dicts. Neither input is modified: the
    result's nested dicts are new, while lists and leaf values are shared.

    Args:
        base: The inherited values.
        child: The values that override them.

    Returns:
        The merged ConfigDict.

    Example:
        >>> base = {"model": {"type": "A", "depth": 18}, "lr": 0.1}
        >>> child = {"model": {"depth": 50}, "lr": 0.2}
        >>> merge_config_dicts(base, child)
        {'model': {'type': 'A', 'depth': 50}, 'lr': 0.2}
        >>> merge_config_dicts(base, {"model": {"_delete_": True, "type": "B"}})
        {'model': {'type': 'B'}, 'lr': 0.1}
    """
    result = ConfigDict()
    for key, value in base.items():
        dict.__setitem__(result, key, _strip_delete(value))
    for key, value in child.items():
        current = result.get(key)
        if (
            isinstance(value, dict)
            and isinstance(current, dict)
            and not value.get(DELETE_KEY, False)
        ):
            dict.__setitem__(result, key, merge_config_dicts(current, value))
        else:
            dict.__setitem__(result, key, _strip_delete(value))
    return result


def _strip_delete(value: Any) -> Any:
    """Return ``value`` converted, with ``_delete_`` keys removed from its dicts."""
    if isinstance(value, dict):
        return merge_config_dicts({}, {k: v for k, v in value.items() if k != DELETE_KEY})
    return _convert(value)
