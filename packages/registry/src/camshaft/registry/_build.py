"""Building an object from a config dict: :func:`build_from_cfg`.

What it promises:

* The caller's cfg is never mutated: ``type`` is taken from a shallow copy, so the
  same cfg can be built again, and nested values reach the constructor as they are.
* ``default_args`` only fill keys the cfg leaves out.
* Every failure says what to fix: a malformed cfg is shown, an unregistered
  ``type`` names the registry, the scopes searched and the closest registered
  names, and a constructor that raises is named together with the cfg (its
  exception is chained as ``__cause__``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from camshaft.registry._errors import BuildError, RegistryError
from camshaft.registry._scope import DefaultScope

if TYPE_CHECKING:
    from camshaft.registry._registry import Registry

__all__ = ["build_from_cfg"]

_REPR_LIMIT = 500
_MAX_SUGGESTIONS = 5


def build_from_cfg(
    cfg: Mapping[str, Any],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build the object that ``cfg`` describes.

    ``cfg['type']`` is a name registered in ``registry`` (``'ResNet'``), a
    scoped name (``'mmdet.ResNet'``), or the class or function itself; the other
    keys are passed to it as keyword arguments.

    Args:
        cfg: a mapping (``dict``, ``ConfigDict``, any ``Mapping``) with a ``type``
            key, unless ``default_args`` supplies one. Not modified.
        registry: the registry that resolves a ``type`` given by name.
        default_args: values for keys that ``cfg`` lacks. Not modified.

    Returns:
        What calling the resolved ``type`` returned.

    Raises:
        BuildError: ``cfg`` or ``default_args`` is not a mapping, there is no
            ``type``, ``type`` is neither a string nor callable, or the
            constructor raised (chained as ``__cause__``).
        RegistryError: ``type`` is a name that ``registry`` cannot resolve.

    Example:
        >>> from camshaft.registry import Registry
        >>> SHAPES = Registry('shape', scope='demo_shapes')
        >>> @SHAPES.register_module()
        ... class Square:
        ...     def __init__(self, side: int, color: str = 'red') -> None:
        ...         self.side, self.color = side, color
        >>> cfg = dict(type='Square', side=2)
        >>> build_from_cfg(cfg, SHAPES, default_args=dict(color='blue')).color
        'blue'
        >>> cfg
        {'type': 'Square', 'side': 2}
    """
    if not isinstance(cfg, Mapping):
        raise BuildError(
            f"`cfg` must be a mapping (dict or ConfigDict) with a 'type' key, "
            f"got {type(cfg).__name__}: {_short_repr(cfg)}"
        )
    if default_args is not None and not isinstance(default_args, Mapping):
        raise BuildError(
            f"`default_args` must be a mapping or None, "
            f"got {type(default_args).__name__}: {_short_repr(default_args)}"
        )
    # Checked by attribute rather than isinstance: _registry imports this module for its
    # default build function, so importing Registry here at runtime would be circular.
    if not callable(getattr(registry, "_search_path", None)):
        raise BuildError(
            f"`registry` must be a Registry, got {type(registry).__name__}: {_short_repr(registry)}"
        )
    kwargs = dict(cfg)
    if default_args is not None:
        for key, value in default_args.items():
            kwargs.setdefault(key, value)
    if "type" not in kwargs:
        raise BuildError(
            f"the cfg has no 'type' key (nor does `default_args`), so there is nothing to "
            f"build: {_short_repr(cfg)}. Add type='<registered name>' or type=<class>."
        )
    bad_keys = [key for key in kwargs if not isinstance(key, str)]
    if bad_keys:
        raise BuildError(
            f"cfg keys must be str (they become keyword arguments), got {bad_keys!r} "
            f"in {_short_repr(cfg)}"
        )
    obj_type = kwargs.pop("type")
    if isinstance(obj_type, str):
        target = registry.get(obj_type)
        if target is None:
            raise _unregistered_error(obj_type, registry)
    elif callable(obj_type):
        target = obj_type
    else:
        raise BuildError(
            f"'type' must be a registered name (str) or a class/callable, "
            f"got {type(obj_type).__name__}: {obj_type!r} in cfg {_short_repr(cfg)}"
        )
    try:
        return target(**kwargs)
    except Exception as exc:
        raise BuildError(
            f"building {qualified_name(target)} failed with {type(exc).__name__}: {exc}\n"
            f"  cfg: {_short_repr(cfg)}"
        ) from exc


def qualified_name(obj: object) -> str:
    """Return ``'module.QualName'`` for a class or function, ``repr(obj)`` otherwise."""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(name, str):
        return repr(obj)
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if isinstance(module, str) else name


def closest_names(name: str, candidates: list[str]) -> list[str]:
    """Return up to five of ``candidates`` closest to ``name``, ignoring case as a fallback."""
    matches = difflib.get_close_matches(name, candidates, n=_MAX_SUGGESTIONS)
    if matches:
        return matches
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    lowered = difflib.get_close_matches(name.lower(), list(by_lower), n=_MAX_SUGGESTIONS)
    return [by_lower[match] for match in lowered]


def _unregistered_error(key: str, registry: Registry) -> RegistryError:
    label = f"registry {registry.name!r} (scope {registry.scope!r})"
    name, path = registry._search_path(key)
    scope, _ = registry.split_scope_key(key)
    if scope is not None and not path:
        scopes = sorted(reg.scope for reg in _walk(registry.root))
        message = (
            f"{key!r} is not registered: the tree of {label} has no registry with scope "
            f"{scope!r}. Scopes in the tree: {', '.join(map(repr, scopes))}."
        )
        close = closest_names(scope, scopes)
        if close:
            message += f" Did you mean {' or '.join(map(repr, close))}?"
        return RegistryError(message)
    lines = [
        f"{name!r} is not registered in {label}; "
        f"scopes searched, in order: {', '.join(repr(reg.scope) for reg in path)}."
    ]
    current = DefaultScope.get_current_instance()
    if (
        scope is None
        and current is not None
        and all(reg.scope != current.scope_name for reg in path)
    ):
        lines.append(f"The default scope {current.scope_name!r} has no registry in this tree.")
    candidates = list(dict.fromkeys(known for reg in path for known in reg.module_dict))
    close = closest_names(name, candidates)
    if close:
        lines.append(f"Closest registered names: {', '.join(map(repr, close))}.")
    elif candidates:
        lines.append("No registered name is close to it.")
    else:
        lines.append("Nothing is registered in the registries searched.")
    lines.append(
        "Check the spelling, or import the module that registers it "
        "(or list that module in the registry's `locations=`)."
    )
    return RegistryError("\n".join(lines))


def _walk(registry: Registry) -> Iterator[Registry]:
    yield registry
    for child in registry.children.values():
        yield from _walk(child)


def _short_repr(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."
