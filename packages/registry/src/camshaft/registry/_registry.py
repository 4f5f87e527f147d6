"""The Registry: a named table of classes and functions that configs refer to by name.

A config says ``dict(type='ResNet', depth=50)``; a registry turns ``'ResNet'`` into
the class and :meth:`Registry.build` calls it with the other keys. Registries form
trees: a downstream library creates its own registry with ``parent=`` one of ours
and its own *scope* (a short name such as ``'mmdet'``), so it can add and shadow
names without touching ours.

How a key is resolved is decided in one place, :meth:`Registry._search_path`:

* ``'Name'``: this registry, then its parents up to the root. If a
  :class:`DefaultScope` is active, names another scope and that scope has a
  registry in this tree, that registry and its parents are searched first.
* ``'scope.Name'``: the registry of that scope, wherever it sits in the tree, then
  its parents.

A registry's ``locations`` (module paths) are imported the first time a lookup
misses in it, and the lookup is retried, so names defined in modules nobody has
imported yet are still found. Scopes are unique within a tree and never contain a
dot, so every key has exactly one reading.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeVar, overload

from camshaft.registry._build import build_from_cfg, qualified_name
from camshaft.registry._errors import RegistryError
from camshaft.registry._scope import DefaultScope, check_scope_name

__all__ = ["Registry"]

_T = TypeVar("_T", bound=Callable[..., Any])


class Registry:
    """A table from names to classes or functions, with parents, scopes and lazy imports.

    Args:
        name: what the registry holds, e.g. ``'model'``; used in messages.
        build_func: the function :meth:`build` calls as
            ``build_func(cfg, *args, registry=self, **kwargs)``. ``None`` takes the
            parent's, or :func:`build_from_cfg` for a root registry.
        parent: the registry to fall back to for names this one lacks.
        scope: the name of this registry's scope, used in ``'scope.Name'`` keys and
            by :class:`DefaultScope`. ``None`` infers it from the module that
            creates the registry (see :meth:`infer_scope`). Must be unique in the
            tree and contain no dot.
        locations: module paths imported the first time a lookup misses here, so
            that the modules registering names need not be imported up front.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``name`` is empty, or ``scope`` is empty or dotted.
        RegistryError: ``scope`` is already used by another registry in the tree.

    Example:
        >>> MODELS = Registry('model', scope='demo')
        >>> @MODELS.register_module()
        ... class Net:
        ...     def __init__(self, depth: int) -> None:
        ...         self.depth = depth
        >>> MODELS.build(dict(type='Net', depth=3)).depth
        3
    """

    def __init__(
        self,
        name: str,
        build_func: Callable[..., Any] | None = None,
        parent: Registry | None = None,
        scope: str | None = None,
        locations: Sequence[str] = (),
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a str, got {type(name).__name__}: {name!r}")
        if not name:
            raise ValueError("`name` must be a non-empty str, e.g. Registry('model')")
        if build_func is not None and not callable(build_func):
            raise TypeError(f"`build_func` must be callable or None, got {build_func!r}")
        if parent is not None and not isinstance(parent, Registry):
            raise TypeError(
                f"`parent` must be a Registry or None, got {type(parent).__name__}: {parent!r}"
            )
        if isinstance(locations, str) or not isinstance(locations, Sequence):
            raise TypeError(
                f"`locations` must be a sequence of module paths, got {locations!r}; "
                f"for a single module write locations=[{locations!r}]"
            )
        for location in locations:
            if not isinstance(location, str) or not location:
                raise TypeError(f"`locations` must hold module paths (str), got {location!r}")
        self._name = name
        self._scope = self.infer_scope() if scope is None else check_scope_name(scope, "scope")
        self._parent = parent
        self._locations = tuple(locations)
        self._locations_imported = not self._locations
        self._module_dict: dict[str, Callable[..., Any]] = {}
        self._children: dict[str, Registry] = {}
        if build_func is not None:
            self._build_func: Callable[..., Any] = build_func
        elif parent is not None:
            self._build_func = parent.build_func
        else:
            self._build_func = build_from_cfg
        if parent is not None:
            taken = parent._find_scope(self._scope)
            if taken is not None:
                raise RegistryError(
                    f"cannot create registry {name!r} with scope {self._scope!r} under "
                    f"{parent._label()}: that scope is already used in the tree by "
                    f"{taken._label()}. Scopes must be unique in a tree because "
                    "'scope.Name' keys select a registry by scope; pass another `scope=`."
                )
            parent._children[self._scope] = self

    @staticmethod
    def infer_scope() -> str:
        """Infer a scope from the module that is creating a registry.

        The module is the first caller outside ``Registry.__init__`` (subclass
        constructors included). A module inside camshaft, ``camshaft.<package>.…``,
        gives ``'<package>'`` (``camshaft.model.registry`` → ``'model'``); any
        other module gives its top-level package (``mmdet.registry`` →
        ``'mmdet'``, a script → ``'__main__'``).

        Returns:
            The inferred scope name.
        """
        frame = sys._getframe(1)
        while frame.f_back is not None and (
            frame.f_code.co_name == "__init__" and isinstance(frame.f_locals.get("self"), Registry)
        ):
            frame = frame.f_back
        module = str(frame.f_globals.get("__name__") or "__main__")
        parts = module.split(".")
        if parts[0] == "camshaft" and len(parts) > 1:
            return parts[1]
        return parts[0]

    @staticmethod
    def split_scope_key(key: str) -> tuple[str | None, str]:
        """Split a key on its first dot.

        Returns:
            ``('scope', 'Name')`` for ``'scope.Name'`` and ``(None, 'Name')`` for ``'Name'``.
        """
        scope, dot, name = key.partition(".")
        return (scope, name) if dot else (None, key)

    @property
    def name(self) -> str:
        """What the registry holds, e.g. ``'model'``."""
        return self._name

    @property
    def scope(self) -> str:
        """This registry's scope."""
        return self._scope

    @property
    def parent(self) -> Registry | None:
        """The registry this one falls back to, or None for a root."""
        return self._parent

    @property
    def root(self) -> Registry:
        """The root of this registry's tree (itself if it has no parent)."""
        registry = self
        while registry._parent is not None:
            registry = registry._parent
        return registry

    @property
    def children(self) -> Mapping[str, Registry]:
        """Read-only view of the registries created with ``parent=self``, by scope."""
        return MappingProxyType(self._children)

    @property
    def module_dict(self) -> Mapping[str, Callable[..., Any]]:
        """Read-only live view of this registry's own names (not its parents')."""
        return MappingProxyType(self._module_dict)

    @property
    def build_func(self) -> Callable[..., Any]:
        """The function :meth:`build` delegates to."""
        return self._build_func

    def __len__(self) -> int:
        return len(self._module_dict)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __repr__(self) -> str:
        parent = "None" if self._parent is None else self._parent._label()
        head = (
            f"Registry(name={self._name!r}, scope={self._scope!r}, parent={parent}, "
            f"{len(self._module_dict)} registered)"
        )
        if not self._module_dict:
            return head
        width = max(len(key) for key in self._module_dict)
        rows = [
            f"  {key:<{width}} -> {qualified_name(obj)}" for key, obj in self._module_dict.items()
        ]
        return "\n".join([head, *rows])

    def _label(self) -> str:
        return f"registry {self._name!r} (scope {self._scope!r})"

    @overload
    def register_module(
        self, name: str | Sequence[str] | None = None, force: bool = False, module: None = None
    ) -> Callable[[_T], _T]: ...

    @overload
    def register_module(self, name: str | Sequence[str] | None, force: bool, module: _T) -> _T: ...

    @overload
    def register_module(
        self, name: str | Sequence[str] | None = None, force: bool = False, *, module: _T
    ) -> _T: ...

    def register_module(
        self,
        name: str | Sequence[str] | None = None,
        force: bool = False,
        module: Callable[..., Any] | None = None,
    ) -> Any:
        """Register a class or function, as a decorator or with ``module=``.

        Args:
            name: the key, or a list of keys (aliases) for the same object.
                ``None`` uses the object's ``__name__``.
            force: replace an object already registered under a name.
            module: the object to register now. ``None`` returns a decorator.

        Returns:
            ``module`` itself when given, else a decorator that registers its
            argument and returns it unchanged.

        Raises:
            TypeError: ``name``, ``force`` or ``module`` has the wrong type.
            ValueError: a name is empty or contains a dot.
            RegistryError: a name is taken by another object and ``force`` is
                False; nothing is registered then.

        Example:
            >>> BLOCKS = Registry('block', scope='demo_blocks')
            >>> @BLOCKS.register_module(name=['Basic', 'BasicBlock'])
            ... class Basic: ...
            >>> BLOCKS.get('BasicBlock') is Basic
            True
            >>> _ = BLOCKS.register_module(module=dict, name='Dict')
        """
        if not isinstance(force, bool):
            raise TypeError(f"`force` must be a bool, got {type(force).__name__}: {force!r}")
        names = _check_names(name)
        if module is not None:
            self._register(module, names, force)
            return module

        def decorator(obj: _T) -> _T:
            self._register(obj, names, force)
            return obj

        return decorator

    def _register(self, module: object, names: list[str] | None, force: bool) -> None:
        if not callable(module):
            raise TypeError(
                f"`module` must be a class or a callable, got {type(module).__name__}: {module!r}"
            )
        if names is None:
            default = getattr(module, "__name__", None)
            if not isinstance(default, str):
                raise TypeError(f"{module!r} has no __name__; pass name= to register it")
            names = [default]
        if not force:
            for key in names:
                existing = self._module_dict.get(key)
                if existing is not None and existing is not module:
                    raise RegistryError(
                        f"{key!r} is already registered in {self._label()} to "
                        f"{qualified_name(existing)}; cannot register {qualified_name(module)} "
                        "under the same name. Pass force=True to replace it, or register the "
                        "new object under another name."
                    )
        for key in names:
            self._module_dict[key] = module

    def import_from_location(self) -> None:
        """Import this registry's ``locations`` (once; later calls do nothing).

        Raises:
            RegistryError: a location could not be imported; the import error is
                chained. The next lookup tries again.
        """
        if self._locations_imported:
            return
        for location in self._locations:
            try:
                importlib.import_module(location)
            except ImportError as exc:
                raise RegistryError(
                    f"{self._label()} could not import its location {location!r}: {exc}. "
                    "Check the module path given in `locations=`."
                ) from exc
        self._locations_imported = True

    def _find_scope(self, scope: str) -> Registry | None:
        """Return the registry with ``scope`` in this registry's tree, or None."""
        if self._scope == scope:
            return self
        pending = [self.root]
        while pending:
            registry = pending.pop()
            if registry._scope == scope:
                return registry
            pending.extend(registry._children.values())
        return None

    def _chain(self) -> Iterator[Registry]:
        registry: Registry | None = self
        while registry is not None:
            yield registry
            registry = registry._parent

    def _search_path(self, key: str) -> tuple[str, list[Registry]]:
        """Return the bare name in ``key`` and the registries to search for it, in order."""
        scope, name = self.split_scope_key(key)
        if scope is not None:
            target = self._find_scope(scope)
            return name, [] if target is None else list(target._chain())
        path: list[Registry] = []
        current = DefaultScope.get_current_instance()
        if current is not None and current.scope_name != self._scope:
            target = self._find_scope(current.scope_name)
            if target is not None:
                path.extend(target._chain())
        path.extend(registry for registry in self._chain() if registry not in path)
        return name, path

    def _get_own(self, name: str) -> Callable[..., Any] | None:
        found = self._module_dict.get(name)
        if found is None and not self._locations_imported:
            self.import_from_location()
            found = self._module_dict.get(name)
        return found

    def get(self, key: str) -> Any:
        """Return the object registered under ``key``, or None if there is none.

        Args:
            key: ``'Name'`` or ``'scope.Name'``; see the module docstring for the
                order in which registries are searched.

        Returns:
            The registered class or function, or None.

        Raises:
            TypeError: ``key`` is not a string.
            RegistryError: a ``locations`` module failed to import.

        Example:
            >>> ROOT = Registry('model', scope='demo_root')
            >>> CHILD = Registry('model', parent=ROOT, scope='demo_child')
            >>> _ = CHILD.register_module(module=dict, name='Dict')
            >>> ROOT.get('demo_child.Dict') is dict, ROOT.get('Dict')
            (True, None)
        """
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a str, got {type(key).__name__}: {key!r}")
        name, path = self._search_path(key)
        for registry in path:
            found = registry._get_own(name)
            if found is not None:
                return found
        return None

    def build(self, cfg: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Build an object from ``cfg`` with :attr:`build_func`, passing ``registry=self``.

        Args:
            cfg: a mapping with a ``type`` key (a registered name or the class).
            *args: passed on to :attr:`build_func`.
            **kwargs: passed on to :attr:`build_func` (``default_args=`` for the
                default :func:`build_from_cfg`).

        Returns:
            Whatever :attr:`build_func` returns.

        Example:
            >>> TABLES = Registry('table', scope='demo_tables')
            >>> _ = TABLES.register_module(module=dict, name='Dict')
            >>> TABLES.build(dict(type='Dict', a=1), default_args=dict(b=2))
            {'a': 1, 'b': 2}
        """
        return self._build_func(cfg, *args, **kwargs, registry=self)

    @contextmanager
    def switch_scope_and_registry(self, scope: str | None) -> Iterator[Registry]:
        """Activate ``scope`` and yield the registry of that scope in this tree.

        Args:
            scope: the scope to activate for the block; ``None`` keeps the
                current default scope.

        Yields:
            The registry of the active default scope in this tree, or ``self`` if
            no scope is active or the tree has no registry for it.
        """
        with DefaultScope.overwrite_default_scope(scope) as current:
            target = None if current is None else self._find_scope(current.scope_name)
            yield self if target is None else target


def _check_names(name: object) -> list[str] | None:
    """Validate ``register_module``'s ``name`` and return it as a list (None stays None)."""
    if name is None:
        return None
    names = [name] if isinstance(name, str) else name
    if not isinstance(names, Sequence) or not names:
        raise TypeError(
            f"`name` must be a str, a non-empty list of str, or None, "
            f"got {type(name).__name__}: {name!r}"
        )
    for key in names:
        if not isinstance(key, str):
            raise TypeError(f"`name` must hold only str, got {type(key).__name__}: {key!r}")
        if not key or "." in key:
            raise ValueError(
                f"`name` must be non-empty and contain no dot, got {key!r}; "
                "a dot separates the scope in 'scope.Name' keys"
            )
    return list(names)
