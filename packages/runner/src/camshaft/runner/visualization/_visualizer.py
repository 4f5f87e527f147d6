"""The Visualizer: one object that forwards scalars, configs and images to its backends.

It follows MMEngine's ``mmengine.visualization.Visualizer`` in what a training run
uses (the drawing methods are not provided):

* ``vis_backends`` is a list of backend configs (``dict(type='LocalVisBackend')``) or
  :class:`BaseVisBackend` instances; a config without ``save_dir`` gets the
  Visualizer's ``save_dir`` as it is. The runner passes ``work_dir/<timestamp>/vis_data``,
  so scalars land in ``work_dir/<timestamp>/vis_data/scalars.json``. (MMEngine's
  Visualizer appends ``vis_data`` itself; camshaft's leaves the layout to the caller.)
* A backend config that needs a ``save_dir`` when neither it nor the Visualizer has
  one is skipped with a warning, as in MMEngine; with no backends every method
  returns at once.
* In a distributed job only rank 0 writes (MMEngine's ``master_only``).
* Named instances: :meth:`Visualizer.get_instance` and
  :meth:`Visualizer.get_current_instance` (MMEngine's ``ManagerMixin``).
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from camshaft.runner._registry import VISBACKENDS
from camshaft.runner.visualization._backends import BaseVisBackend

if TYPE_CHECKING:
    from torch import Tensor

    from camshaft.runner.logging._instances import NamedInstances

__all__ = ["Visualizer"]

_TABLE_LOCK = threading.Lock()


class _RankCache:
    """What ``_is_main_process`` last found: for which module and default group."""

    dist: Any = None  # the torch.distributed module asked
    available = False  # its is_available()
    group: Any = None  # the default process group the answer is for
    main = True  # whether this process is its rank 0


def _is_main_process() -> bool:
    """Rank 0, or no process group: a group exists only once torch.distributed is imported.

    The rank is asked again only when the default process group changes.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        return True
    cache = _RankCache
    if dist is not cache.dist:
        cache.available, cache.group, cache.dist = bool(dist.is_available()), None, dist
    if not cache.available:
        return True
    group = dist.group.WORLD
    if group is None:
        return True
    if group is not cache.group:
        cache.main, cache.group = bool(dist.get_rank() == 0), group
    return cache.main


def _needs_save_dir(backend_type: type) -> bool:
    """Whether ``backend_type(...)`` has a ``save_dir`` parameter without a default."""
    try:
        parameter = inspect.signature(backend_type).parameters.get("save_dir")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is inspect.Parameter.empty


class Visualizer:
    """Forward scalars, the config and images to every configured backend.

    Args:
        name: The instance name (used by :meth:`get_instance`).
        vis_backends: Backend configs (dicts with ``type``, and optionally ``name``
            to tell two backends of one class apart) or :class:`BaseVisBackend`
            instances. A single dict or backend is accepted too, as in MMEngine.
        save_dir: The directory given to backend configs that lack a ``save_dir``
            (the runner passes ``<log_dir>/vis_data``). None leaves them without one.

    Raises:
        TypeError: ``name`` is not a non-empty str, ``vis_backends`` is not a list of
            dicts/backends, or ``save_dir`` is not a str or path.
        ValueError: two backends have the same name.
        camshaft.registry.RegistryError: a config names an unknown ``type`` (the
            message lists the closest registered names).

    Example:
        >>> import tempfile
        >>> vis = Visualizer('demo_vis', vis_backends=[dict(type='LocalVisBackend')],
        ...                  save_dir=tempfile.mkdtemp())
        >>> vis.add_scalars({'loss': 0.25, 'lr': 0.1}, step=1)
        >>> type(vis.get_backend('LocalVisBackend')).__name__
        'LocalVisBackend'
        >>> vis.close()
    """

    _instances: ClassVar[NamedInstances[Visualizer] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instances = None  # each subclass gets its own table, on first use

    def __init__(
        self,
        name: str = "visualizer",
        vis_backends: Sequence[Mapping[str, Any] | BaseVisBackend]
        | Mapping[str, Any]
        | BaseVisBackend
        | None = None,
        save_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}")
        if save_dir is not None and not isinstance(save_dir, (str, os.PathLike)):
            raise TypeError(
                f"`save_dir` must be a str, os.PathLike or None, "
                f"got {type(save_dir).__name__}: {save_dir!r}"
            )
        self._instance_name = name
        self.dataset_meta: dict[str, Any] | None = None
        self._save_dir = None if save_dir is None else os.fspath(save_dir)
        self._vis_backends: dict[str, BaseVisBackend] = {}
        if vis_backends is None:
            return
        if isinstance(vis_backends, (Mapping, BaseVisBackend)):
            vis_backends = [vis_backends]
        if not isinstance(vis_backends, (list, tuple)):
            raise TypeError(
                "`vis_backends` must be a list of backend configs (dicts with 'type') or "
                f"BaseVisBackend instances, got {type(vis_backends).__name__}: {vis_backends!r}"
            )
        for index, item in enumerate(vis_backends):
            backend_name: str | None
            if isinstance(item, BaseVisBackend):
                backend, backend_name = item, None
            elif isinstance(item, Mapping):
                built = self._build_backend(index, item, self._save_dir)
                if built is None:
                    continue
                backend, backend_name = built
            else:
                raise TypeError(
                    f"`vis_backends[{index}]` must be a backend config dict or a "
                    f"BaseVisBackend, got {type(item).__name__}: {item!r}"
                )
            backend_name = backend_name or type(backend).__name__
            if backend_name in self._vis_backends:
                raise ValueError(
                    f"`vis_backends` has two backends named {backend_name!r}; give one of "
                    "them another name=... in its config"
                )
            self._vis_backends[backend_name] = backend

    @staticmethod
    def _build_backend(
        index: int, item: Mapping[str, Any], backend_dir: str | None
    ) -> tuple[BaseVisBackend, str | None] | None:
        cfg = dict(item)
        backend_name = cfg.pop("name", None)
        if backend_name is not None and (not isinstance(backend_name, str) or not backend_name):
            raise TypeError(
                f"`vis_backends[{index}]['name']` must be a non-empty str, got {backend_name!r}"
            )
        if cfg.get("save_dir") is not None:
            pass
        elif backend_dir is not None:
            cfg["save_dir"] = backend_dir
        else:
            cfg.pop("save_dir", None)
            kind = cfg.get("type")
            backend_type = VISBACKENDS.get(kind) if isinstance(kind, str) else kind
            if isinstance(backend_type, type) and _needs_save_dir(backend_type):
                warnings.warn(
                    f"Visualizer: skipped vis_backends[{index}] ({backend_type.__name__}): it "
                    "needs a save_dir and neither it nor the Visualizer has one. Pass "
                    "save_dir= to the Visualizer (the runner passes its log directory).",
                    UserWarning,
                    stacklevel=3,
                )
                return None
        backend = VISBACKENDS.build(cfg)
        if not isinstance(backend, BaseVisBackend):
            raise TypeError(
                f"`vis_backends[{index}]` built a {type(backend).__name__}, "
                "which is not a BaseVisBackend"
            )
        return backend, backend_name

    # --- named instances ----------------------------------------------------------------

    @classmethod
    def _table(cls) -> NamedInstances[Visualizer]:
        table = cls.__dict__.get("_instances")
        if table is None:
            # Imported here: camshaft.runner.logging imports torch, and this package
            # must stay cheap to import.
            from camshaft.runner.logging._instances import NamedInstances

            with _TABLE_LOCK:
                table = cls.__dict__.get("_instances")
                if table is None:
                    table = NamedInstances(cls.__name__)
                    cls._instances = table
        return table

    @classmethod
    def get_instance(cls, name: str, **kwargs: Any) -> Visualizer:
        """Return the Visualizer called ``name``, creating it with ``kwargs`` if needed.

        Creating one makes it the current instance. Passing ``kwargs`` for a name that
        already exists warns, since they are ignored.

        Raises:
            TypeError: ``name`` is not a non-empty str.

        Example:
            >>> vis = Visualizer.get_instance('demo_current')
            >>> Visualizer.get_current_instance() is vis
            True
        """
        return cls._table().get_instance(name, lambda: cls(name=name, **kwargs), kwargs)

    @classmethod
    def get_current_instance(cls) -> Visualizer:
        """The most recently created instance (by :meth:`get_instance`).

        Raises:
            RuntimeError: no instance was created yet (as in MMEngine).
        """
        current = cls._table().current()
        if current is None:
            raise RuntimeError(
                f"no {cls.__name__} exists yet: call {cls.__name__}.get_instance(name) first "
                "(the runner does it when it starts)"
            )
        return current

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether an instance called ``name`` was created by :meth:`get_instance`."""
        return name in cls._table()

    @classmethod
    def _reset_instances(cls) -> None:
        """Close and forget every named instance (for tests)."""
        for instance in cls._table().clear():
            instance.close()

    @property
    def instance_name(self) -> str:
        """The name this Visualizer was created with."""
        return self._instance_name

    # --- backends -----------------------------------------------------------------------

    def get_backend(self, name: str) -> BaseVisBackend | None:
        """The backend called ``name`` (its config's ``name``, else its class name), or None."""
        return self._vis_backends.get(name)

    def add_scalars(
        self,
        scalar_dict: Mapping[str, float | int | Tensor],
        step: int = 0,
        file_path: str | None = None,
    ) -> None:
        """Send scalars to every backend.

        Args:
            scalar_dict: Name -> number, 0-d tensor or numpy scalar.
            step: The global step (iteration or epoch).
            file_path: Accepted for MMEngine compatibility and ignored.

        Raises:
            TypeError: a value is not a scalar or ``step`` not an int (from the
                backends; nothing is written by the backend that raised).
        """
        if not self._vis_backends or not _is_main_process():
            return
        for backend in self._vis_backends.values():
            backend.add_scalars(scalar_dict, step)

    def add_scalar(self, name: str, value: float | int | Tensor, step: int = 0) -> None:
        """Send one scalar to every backend (``add_scalars({name: value}, step)``)."""
        if not self._vis_backends or not _is_main_process():
            return
        for backend in self._vis_backends.values():
            backend.add_scalar(name, value, step)

    def add_config(self, config: Any) -> None:
        """Send the config (a ``Config``, a dict, or anything printable) to every backend."""
        if not self._vis_backends or not _is_main_process():
            return
        for backend in self._vis_backends.values():
            backend.add_config(config)

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        """Send an RGB image (``H x W x 3`` uint8) to the backends that store images.

        Backends that do not override :meth:`BaseVisBackend.add_image` are skipped.
        """
        if not self._vis_backends or not _is_main_process():
            return
        for backend in self._vis_backends.values():
            if type(backend).add_image is not BaseVisBackend.add_image:
                backend.add_image(name, image, step)

    def close(self) -> None:
        """Close every backend (flush files and writers). Safe to call twice."""
        for backend in self._vis_backends.values():
            backend.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self._instance_name!r}, "
            f"vis_backends={list(self._vis_backends)}, save_dir={self._save_dir!r})"
        )
