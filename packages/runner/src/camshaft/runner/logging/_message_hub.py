"""MessageHub: where hooks, loops and the model leave scalars and runtime facts.

A training iteration reports its losses, learning rate and timings with
:meth:`MessageHub.update_scalar`; the :class:`~camshaft.runner.logging.LogProcessor`
reads them back, smoothed, when it writes a line. Runtime facts (``epoch``, ``iter``,
``max_iters``, ``eta``, ...) go through :meth:`MessageHub.update_info`.

What it promises beyond MMEngine:

* ``update_scalar`` never calls ``.item()`` and never waits for the device: a tensor is
  stored as it is and converted, for every key of the hub at once, when a statistic is
  read (see :class:`~camshaft.runner.logging.HistoryBuffer`). The cost per update is
  constant however long training runs, and so is the memory (bounded buffers).
* :meth:`MessageHub.state_dict` holds only plain types — bytes, lists, floats, ints,
  str, dicts, and tensors in runtime info — so a checkpoint holding it loads with
  ``torch.load(weights_only=True)``.

Named instances: ``MessageHub.get_instance(name)`` and ``get_current_instance()`` work
as in MMEngine (the current hub is the one created last), on a per-class table that
tests empty with ``MessageHub._reset_instances()``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from camshaft.runner.logging._history_buffer import _CHUNK, HistoryBuffer
from camshaft.runner.logging._instances import NamedInstances

__all__ = ["MessageHub"]

_DEFAULT_NAME = "camshaft"
_STATE_KEYS = ("log_scalars", "runtime_info", "resumed_keys")
_PLAIN_SCALARS = (float, int, torch.Tensor)  # types of scalar values that are not mappings
# Values saved as they are; exact types, so the common case costs no isinstance call.
_ATOMS = frozenset({str, int, float, bool, type(None)})


class MessageHub:
    """Scalars (with history) and runtime information shared across the runner.

    Args:
        name: The instance name (the runner uses its experiment name).
        log_scalars: Initial scalar histories by key.
        runtime_info: Initial runtime information by key.
        resumed_keys: For each key, whether :meth:`state_dict` saves it.

    Example:
        >>> hub = MessageHub.get_instance('demo_hub')
        >>> hub.update_scalar('train/loss', torch.tensor(0.5))  # no .item(), no sync
        >>> hub.update_scalar('train/loss', 0.3)
        >>> hub.get_scalar('train/loss').mean()
        0.4
        >>> hub.update_info('epoch', 2)
        >>> hub.get_info('epoch')
        2
    """

    _instances: ClassVar[NamedInstances[MessageHub]] = NamedInstances("MessageHub")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instances = NamedInstances(cls.__name__)

    def __init__(
        self,
        name: str,
        log_scalars: Mapping[str, HistoryBuffer] | None = None,
        runtime_info: Mapping[str, Any] | None = None,
        resumed_keys: Mapping[str, bool] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`name` must be a non-empty str, got {name!r}")
        self._instance_name = name
        # One dict for the hub's lifetime: its buffers convert their tensors together.
        self._log_scalars: dict[str, HistoryBuffer] = {}
        self._runtime_info: dict[str, Any] = {}
        self._resumed_keys: dict[str, bool] = {}
        for key, buffer in (log_scalars or {}).items():
            if not isinstance(buffer, HistoryBuffer):
                raise TypeError(
                    f"`log_scalars[{key!r}]` must be a HistoryBuffer, got {type(buffer).__name__}"
                )
            self._add_buffer(key, buffer)
        self._runtime_info.update(runtime_info or {})
        self._resumed_keys.update(resumed_keys or {})

    # --- named instances ----------------------------------------------------------------

    @classmethod
    def get_instance(cls, name: str, **kwargs: Any) -> MessageHub:
        """Return the hub called ``name``, creating it (with ``kwargs``) if needed.

        Creating a hub makes it the current one. Passing ``kwargs`` for a hub that
        already exists warns, since they are ignored.

        Raises:
            TypeError: ``name`` is not a non-empty str.
        """
        return cls._instances.get_instance(name, lambda: cls(name, **kwargs), kwargs)

    @classmethod
    def get_current_instance(cls) -> MessageHub:
        """The most recently created hub; one called ``'camshaft'`` is made if none exists."""
        current = cls._instances.current()
        return current if current is not None else cls.get_instance(_DEFAULT_NAME)

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether a hub called ``name`` was created by :meth:`get_instance`."""
        return name in cls._instances

    @classmethod
    def _reset_instances(cls) -> None:
        """Forget every named hub (for tests; the next ``get_instance`` starts afresh)."""
        cls._instances.clear()

    @property
    def instance_name(self) -> str:
        """The name this hub was created with."""
        return self._instance_name

    # --- scalars ------------------------------------------------------------------------

    def update_scalar(self, key: str, value: Any, count: int = 1, resumed: bool = True) -> None:
        """Append ``value`` to the history of ``key``.

        Args:
            key: The scalar's name, e.g. ``'train/loss'``.
            value: A number or a one-element tensor (stored without ``.item()``).
            count: How many items ``value`` stands for (used by ``mean``).
            resumed: Whether :meth:`state_dict` saves this key.

        Raises:
            TypeError: ``key`` is not a str, ``value`` not a number or one-element
                tensor/array, or ``count`` not an int.
            ValueError: ``value`` has several elements, ``count`` < 1, or ``resumed``
                differs from the first update of ``key``.
        """
        # This runs several times per iteration: ``in`` and ``[]`` instead of ``dict.get``
        # keep the usual path (a known key, count 1) to the one call of ``_push``.
        scalars = self._log_scalars
        known = key in scalars
        if type(count) is not int or count < 1:
            _check_count(key, count)
        try:
            if known:
                buffer = scalars[key]
                kind = value.__class__
                if (
                    count == 1
                    and buffer._pending_counts is None
                    and (
                        kind is float
                        or (
                            kind is torch.Tensor
                            and not value.ndim
                            and not value.requires_grad
                            and value._base is None
                        )
                    )
                ):
                    # HistoryBuffer._push's path for a float or a detached 0-d tensor
                    # counted once, inline: one call (the append) instead of two or three.
                    if kind is not float:
                        buffer._pending_tensors += 1
                    buffer._pending.append(value)
                    n = buffer._pending_n = buffer._pending_n + 1
                    if n % _CHUNK == 0:
                        buffer._compact()
                else:
                    buffer._push(value, count)  # count checked above
            else:
                if not isinstance(key, str):
                    raise TypeError(f"a scalar key must be a str, got {type(key).__name__}")
                buffer = HistoryBuffer()
                buffer._push(value, count)
                self._add_buffer(key, buffer)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"update_scalar(key={key!r}): {exc}") from None
        resumed_keys = self._resumed_keys
        if key not in resumed_keys or resumed_keys[key] is not resumed:
            self._set_resumed(key, resumed)

    def update_scalars(self, log_dict: Mapping[str, Any], resumed: bool = True) -> None:
        """Call :meth:`update_scalar` for each item of ``log_dict``.

        A value may be a number, a one-element tensor, or ``dict(value=..., count=...)``.

        Raises:
            TypeError: ``log_dict`` is not a mapping.
            ValueError: A dict value has no ``'value'`` key.
        """
        if not isinstance(log_dict, Mapping):
            raise TypeError(f"`log_dict` must be a dict, got {type(log_dict).__name__}")
        for key, item in log_dict.items():
            kind = type(item)
            # Exact types first: isinstance against the Mapping ABC costs three calls.
            if kind is dict or (kind not in _PLAIN_SCALARS and isinstance(item, Mapping)):
                if "value" not in item:
                    raise ValueError(
                        f"`log_dict[{key!r}]` is a dict, so it must hold 'value' (and "
                        f"optionally 'count'), got keys {sorted(item)}"
                    )
                self.update_scalar(key, item["value"], item.get("count", 1), resumed)
            else:
                self.update_scalar(key, item, 1, resumed)

    def get_scalar(self, key: str) -> HistoryBuffer:
        """The history of ``key``.

        Raises:
            KeyError: ``key`` was never updated; the message lists the known keys.
        """
        buffer = self._log_scalars.get(key)
        if buffer is None:
            raise KeyError(
                f"no scalar {key!r} in MessageHub {self._instance_name!r}; it has "
                f"{sorted(self._log_scalars)}"
            )
        return buffer

    @property
    def log_scalars(self) -> dict[str, HistoryBuffer]:
        """Every scalar history by key, in first-update order (a new dict)."""
        return dict(self._log_scalars)

    def _add_buffer(self, key: str, buffer: HistoryBuffer) -> None:
        self._log_scalars[key] = buffer
        buffer._siblings = self._log_scalars

    # --- runtime info -------------------------------------------------------------------

    def update_info(self, key: str, value: Any, resumed: bool = True) -> None:
        """Set runtime information ``key`` (``'epoch'``, ``'iter'``, ``'eta'``, ...).

        Args:
            key: The name.
            value: Any value; only plain types and tensors are saved by :meth:`state_dict`.
            resumed: Whether :meth:`state_dict` saves this key.
        """
        self._runtime_info[key] = value
        resumed_keys = self._resumed_keys
        if key not in resumed_keys or resumed_keys[key] is not resumed:
            self._set_resumed(key, resumed)

    def update_info_dict(self, info_dict: Mapping[str, Any], resumed: bool = True) -> None:
        """Call :meth:`update_info` for each item of ``info_dict``.

        Raises:
            TypeError: ``info_dict`` is not a mapping.
        """
        if not isinstance(info_dict, Mapping):
            raise TypeError(f"`info_dict` must be a dict, got {type(info_dict).__name__}")
        for key, value in info_dict.items():
            self.update_info(key, value, resumed)

    def get_info(self, key: str, default: Any = None) -> Any:
        """Runtime information ``key``, or ``default`` when it was never set."""
        return self._runtime_info.get(key, default)

    def pop_info(self, key: str, default: Any = None) -> Any:
        """Remove runtime information ``key`` and return it (``default`` if absent)."""
        return self._runtime_info.pop(key, default)

    @property
    def runtime_info(self) -> dict[str, Any]:
        """Every runtime fact by key (a new dict)."""
        return dict(self._runtime_info)

    def _set_resumed(self, key: str, resumed: bool) -> None:
        if not isinstance(resumed, bool):
            raise TypeError(f"`resumed` for {key!r} must be a bool, got {resumed!r}")
        previous = self._resumed_keys.get(key)
        if previous is not None and previous != resumed:
            raise ValueError(
                f"{key!r} was first recorded with resumed={previous}, now with "
                f"resumed={resumed}; whether a key is saved cannot change"
            )
        self._resumed_keys[key] = resumed

    # --- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The resumable keys as plain types, for a checkpoint.

        Scalars become ``HistoryBuffer.state_dict()`` dicts (histories as float64
        bytes). Runtime info keeps None, bool, int, float, str, tensors (detached, on
        the CPU) and lists, tuples and dicts of them; numpy values become lists or
        numbers; any other value is left out with a warning naming the key (record it
        with ``update_info(..., resumed=False)`` to silence it).

        ``resumed_keys`` holds only the flags that the saved keys do not imply: every
        key under ``log_scalars`` or ``runtime_info`` is resumed, so it lists the keys
        recorded with ``resumed=False`` (and resumed keys that were left out). Earlier
        versions listed every key; :meth:`load_state_dict` reads both.

        Returns:
            ``{'log_scalars': ..., 'runtime_info': ..., 'resumed_keys': ...}``.
        """
        resumed = self._resumed_keys
        scalars = {
            key: buffer.state_dict()
            for key, buffer in self._log_scalars.items()
            if resumed.get(key)
        }
        info: dict[str, Any] = {}
        for key, value in self._runtime_info.items():
            if key not in resumed or not resumed[key]:
                continue
            try:
                info[key] = value if type(value) in _ATOMS else _plain(value)
            except TypeError as exc:
                warnings.warn(
                    f"MessageHub.state_dict() leaves out runtime info {key!r}: {exc}. "
                    f"Record it with update_info({key!r}, value, resumed=False) if it "
                    "need not survive a resume.",
                    UserWarning,
                    stacklevel=2,
                )
        flags = {
            key: flag
            for key, flag in resumed.items()
            if not flag or (key not in scalars and key not in info)
        }
        return {"log_scalars": scalars, "runtime_info": info, "resumed_keys": flags}

    def load_state_dict(self, state_dict: Mapping[str, Any] | MessageHub) -> None:
        """Restore what :meth:`state_dict` saved (or copy another hub).

        Keys in ``state_dict`` replace the same keys here; other keys are kept.

        Raises:
            ValueError: ``state_dict`` lacks one of ``log_scalars``, ``runtime_info``,
                ``resumed_keys``, or holds a malformed scalar history.
            TypeError: ``state_dict`` is neither a mapping nor a MessageHub.
        """
        if isinstance(state_dict, MessageHub):
            for key, buffer in state_dict._log_scalars.items():
                self._add_buffer(key, copy.deepcopy(buffer))
            self._runtime_info.update(copy.deepcopy(state_dict._runtime_info))
            self._resumed_keys.update(state_dict._resumed_keys)
            return
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                "`state_dict` must be a dict from MessageHub.state_dict() or a MessageHub, "
                f"got {type(state_dict).__name__}"
            )
        missing = [key for key in _STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(
                f"`state_dict` lacks {missing}; expected the keys {list(_STATE_KEYS)} "
                "written by MessageHub.state_dict()"
            )
        buffers = {}
        for key, value in state_dict["log_scalars"].items():
            if isinstance(value, HistoryBuffer):
                buffers[key] = copy.deepcopy(value)
                continue
            try:
                buffers[key] = HistoryBuffer.from_state_dict(value)
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(
                    f"`state_dict['log_scalars'][{key!r}]` is malformed: {exc}"
                ) from exc
        info = copy.deepcopy(dict(state_dict["runtime_info"]))
        resumed = self._resumed_keys
        for key, buffer in buffers.items():
            self._add_buffer(key, buffer)
            resumed[key] = True
        self._runtime_info.update(info)
        resumed.update(dict.fromkeys(info, True))
        resumed.update(state_dict["resumed_keys"])  # exceptions (all flags in older layouts)

    def __repr__(self) -> str:
        return (
            f"MessageHub(name={self._instance_name!r}, scalars={list(self._log_scalars)}, "
            f"info={list(self._runtime_info)})"
        )


def _check_count(key: str, count: Any) -> None:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(
            f"update_scalar(key={key!r}): `count` must be a positive int, "
            f"got {type(count).__name__}: {count!r}"
        )
    if count < 1:
        raise ValueError(f"update_scalar(key={key!r}): `count` must be >= 1, got {count}")


def _plain(value: Any) -> Any:
    """``value`` as types ``torch.load(weights_only=True)`` reads; TypeError otherwise."""
    if type(value) in _ATOMS or value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        items = [item if type(item) in _ATOMS else _plain(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        return {
            key if type(key) in _ATOMS else _plain_key(key): item
            if type(item) in _ATOMS
            else _plain(item)
            for key, item in value.items()
        }
    raise TypeError(f"{type(value).__name__} is not a plain type")


def _plain_key(key: Any) -> Any:
    if key is None or isinstance(key, (bool, int, float, str)):
        return key
    raise TypeError(f"dict key {key!r} ({type(key).__name__}) is not a plain type")
