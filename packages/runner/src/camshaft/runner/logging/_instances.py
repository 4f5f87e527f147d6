"""Named instances per class: what MMEngine's ``get_instance`` / ``get_current_instance`` rely on.

MMEngine keeps every ``MessageHub`` and ``MMLogger`` in a class-level dictionary
that lives as long as the process, so one test's instances are still "current" in the
next. camshaft keeps the same public contract, built on :class:`NamedInstances`:

* ``get_instance(name)`` returns the instance called ``name``, creating it on first
  use; creating one makes it the *current* instance (the most recently created, as in
  MMEngine — fetching an existing one does not change which is current);
* ``get_current_instance()`` returns the current one;
* ``_reset_instances()`` forgets them all (and releases what they hold, such as open
  log files), so each test can start clean; the runner's test suite does it in an
  autouse fixture.

Every subclass gets a table of its own, so a subclass's instances never answer for
the base class. Access is guarded by a lock, so two threads asking for the same name
get the same object.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["NamedInstances"]

T = TypeVar("T")


class NamedInstances(Generic[T]):
    """A thread-safe table of instances by name, remembering creation order.

    Args:
        owner: The class name, used in error messages.
    """

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._items: dict[str, T] = {}
        self._lock = threading.RLock()

    def get_or_create(self, name: str, factory: Callable[[], T]) -> tuple[T, bool]:
        """Return ``(instance, created)``; ``factory()`` builds it when ``name`` is new.

        Raises:
            TypeError: ``name`` is not a non-empty str.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"{self._owner}.get_instance(name=...) needs a non-empty str, got {name!r}"
            )
        with self._lock:
            found = self._items.get(name)
            if found is not None:
                return found, False
            instance = factory()
            self._items[name] = instance
            return instance, True

    def get_instance(self, name: str, factory: Callable[[], T], kwargs: dict[str, Any]) -> T:
        """``get_or_create`` for ``cls.get_instance(name, **kwargs)``.

        Warns (at the caller of ``get_instance``) when ``name`` already exists and
        ``kwargs`` were given, since they cannot apply to the existing instance.
        """
        instance, created = self.get_or_create(name, factory)
        if kwargs and not created:
            warnings.warn(
                f"{self._owner} {name!r} already exists; get_instance() ignored {sorted(kwargs)}",
                UserWarning,
                stacklevel=3,
            )
        return instance

    def current(self) -> T | None:
        """The most recently created instance, or None when there is none."""
        with self._lock:
            if not self._items:
                return None
            return next(reversed(self._items.values()))

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._items

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            return iter(list(self._items.values()))

    def clear(self) -> list[T]:
        """Forget every instance and return them (oldest first), for cleanup."""
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
            return items
