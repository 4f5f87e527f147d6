"""The default scope: which registry a name without a ``scope.`` prefix is looked up in first.

A downstream library (say ``mmdet``) registers its classes in child registries of
ours, under its own scope. While ``DefaultScope('mmdet')`` is active, code that
asks *our* registry for ``'ResNet'`` gets mmdet's ``ResNet`` when mmdet has one,
and ours otherwise. That is how a runner written against the root registries
builds a downstream project's objects without knowing about it.

The active scope lives in a :class:`contextvars.ContextVar`, not in a global
object: each thread and each asyncio task sees the scope it entered, and leaving
a ``with`` block restores exactly what was active before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = ["DefaultScope"]

_ACTIVE: ContextVar[DefaultScope | None] = ContextVar("camshaft_default_scope", default=None)


def check_scope_name(value: object, argument: str) -> str:
    """Return ``value`` if it is a usable scope name, else raise.

    A scope name is a non-empty string without a dot: ``'scope.Name'`` keys are
    split on their first dot, so a dotted scope could never be addressed.

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: ``value`` is empty or contains a dot.
    """
    if not isinstance(value, str):
        raise TypeError(f"`{argument}` must be a str, got {type(value).__name__}: {value!r}")
    if not value or "." in value:
        raise ValueError(
            f"`{argument}` must be a non-empty name without dots, got {value!r}; "
            "keys are written 'scope.Name' and split on the first dot"
        )
    return value


class DefaultScope:
    """The scope that registry lookups try first for names without a ``scope.`` prefix.

    Activate one with a ``with`` block; blocks nest, and leaving one restores the
    scope that was active when it was entered. The activation is local to the
    current thread or asyncio task (it is stored in a ``ContextVar``).

    Args:
        scope_name: the scope to activate, e.g. ``'mmdet'``. A non-empty string
            without dots.
        name: an instance name, used by :meth:`get_instance` to find an active
            instance again. Defaults to ``scope_name``.

    Example:
        >>> with DefaultScope('mmdet'):
        ...     DefaultScope.get_current_instance().scope_name
        'mmdet'
        >>> DefaultScope.get_current_instance() is None
        True
    """

    def __init__(self, scope_name: str, *, name: str | None = None) -> None:
        self._scope_name = check_scope_name(scope_name, "scope_name")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a str or None, got {type(name).__name__}: {name!r}")
        self._instance_name = scope_name if name is None else name
        self._tokens: list[Token[DefaultScope | None]] = []

    @property
    def scope_name(self) -> str:
        """The scope this instance activates."""
        return self._scope_name

    @property
    def instance_name(self) -> str:
        """The name :meth:`get_instance` knows this instance by."""
        return self._instance_name

    def __enter__(self) -> DefaultScope:
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Undo this instance's most recent activation; a no-op if it is not active.

        The scope that was active just before that activation becomes active again,
        even if other scopes were activated in between and never closed.
        """
        if self._tokens:
            _ACTIVE.reset(self._tokens.pop())

    @classmethod
    def get_current_instance(cls) -> DefaultScope | None:
        """Return the active default scope of this thread or task, or None."""
        return _ACTIVE.get()

    @classmethod
    def get_instance(cls, name: str, *, scope_name: str | None = None) -> DefaultScope:
        """Return the active instance called ``name``, or create and activate one.

        This is MMEngine's way of setting a default scope without a ``with``
        block. An instance activated here stays active in the current thread or
        task until its :meth:`close` is called.

        Args:
            name: the instance name.
            scope_name: the scope for a new instance. Needed unless the active
                instance is already called ``name`` (and then, if given, it must
                match that instance's scope, or a new instance is activated).

        Returns:
            The active instance called ``name``.

        Raises:
            ValueError: no active instance is called ``name`` and ``scope_name``
                was not given.

        Example:
            >>> scope = DefaultScope.get_instance('exp1', scope_name='mmdet')
            >>> DefaultScope.get_instance('exp1') is scope
            True
            >>> scope.close()
        """
        current = _ACTIVE.get()
        if (
            current is not None
            and current.instance_name == name
            and (scope_name is None or scope_name == current.scope_name)
        ):
            return current
        if scope_name is None:
            raise ValueError(
                f"no active DefaultScope is called {name!r}; "
                f"pass scope_name= to create one, e.g. get_instance({name!r}, scope_name='mmdet')"
            )
        instance = cls(scope_name, name=name)
        instance._tokens.append(_ACTIVE.set(instance))
        return instance

    @classmethod
    @contextmanager
    def overwrite_default_scope(cls, scope_name: str | None) -> Iterator[DefaultScope | None]:
        """Activate ``scope_name`` for the duration of a ``with`` block.

        Args:
            scope_name: the scope to activate; ``None`` leaves the current one
                (or none) in place.

        Yields:
            The scope active inside the block, or None if there is none.

        Example:
            >>> with DefaultScope.overwrite_default_scope('mmseg') as scope:
            ...     scope.scope_name
            'mmseg'
        """
        if scope_name is None:
            yield _ACTIVE.get()
            return
        with cls(scope_name) as scope:
            yield scope

    def __repr__(self) -> str:
        if self._instance_name == self._scope_name:
            return f"DefaultScope({self._scope_name!r})"
        return f"DefaultScope({self._scope_name!r}, name={self._instance_name!r})"
