"""HistoryBuffer: the history of one logged scalar, bounded, O(1) per update.

MMEngine appends with ``np.append``, which copies the whole history on every update
(12 µs per update at the start of training, 4.3 ms at 500k). This buffer promises:

* **O(1) append, bounded memory.** An update appends to a short queue; every 1024
  queued values move into a preallocated float64 ring in one vectorised write. The
  ring doubles as it fills, up to ``max_length``; past that the oldest values are
  overwritten. Counts take no memory until a count other than 1 is recorded. Values
  that fall off the ring still count towards whole-history statistics (``mean()``,
  ``min()``, ``max()`` with no window, or a window as long as the history) through
  running totals, so a "global" average stays exact however long training runs.
* **No device sync on update.** A tensor is queued as it is (detached; a view is
  cloned so it does not pin its base's storage) and converted only when a statistic,
  ``data`` or the state dict is read — together with the queued tensors of every
  other buffer of the same :class:`~camshaft.runner.logging.MessageHub`, one host
  copy per device (see ``_tensor_batch``). Every 1024 queued tensors are stacked into
  one device tensor (asynchronous). A conversion is forced during an update only
  when 65536 values pile up unread, or when one key mixes floats and tensors in a
  1024-value chunk.
* **Plain results.** Statistics are Python floats; ``state_dict()`` holds only
  bytes, ints and floats (see :meth:`HistoryBuffer.state_dict`).

Statistics follow MMEngine: ``mean`` is ``sum(values) / sum(counts)`` over the last
``window_size`` updates (the sum exactly rounded, by ``math.fsum``, for windows of up to
256 values; numpy's pairwise sum beyond); ``max``/``min`` ignore counts; ``current`` is
the last value.
A window longer than what the ring retains, but shorter than the whole history, is
answered from the retained values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch

from camshaft.runner.logging._tensor_batch import materialize

__all__ = ["HistoryBuffer"]

_F = TypeVar("_F", bound=Callable[..., Any])

# ``ndarray.sum`` is this reduction behind two more calls; the result is the same.
_add_reduce = np.add.reduce
_fsum = math.fsum
# Windows of up to this many values are summed by ``math.fsum`` (exactly rounded, a few
# hundred instructions for a log line's window of 10) instead of numpy's reduction
# (about 10,000 instructions of call overhead however short the window). The choice
# depends only on the number of values summed, so a window's mean is the same whether
# its values are still queued or already in the ring.
_EXACT_SUM_LIMIT = 256


def _window_sum(values: Any, length: int) -> float:
    """The sum of ``length`` floats (a list or a float64 array), as documented above."""
    if length <= _EXACT_SUM_LIMIT:
        return _fsum(values if values.__class__ is list else values.tolist())
    return float(_add_reduce(values))


_INITIAL_CAPACITY = 64
_CHUNK = 1024  # pending tensors stacked into one device tensor
_PENDING_LIMIT = 65536  # pending values that force a conversion
_DEFAULT_MAX_LENGTH = 1_000_000
_WIRE = np.dtype("<f8")  # how state_dict() stores histories, whatever the machine's byte order
_NATIVE_IS_WIRE = np.dtype(np.float64) == _WIRE


class HistoryBuffer:
    """The recent history of one scalar, with windowed statistics.

    Args:
        log_history: Initial values (numbers or one-element tensors), oldest first.
        count_history: How many items each value stands for (same length).
        max_length: How many values to retain; older ones are dropped (their sums
            still feed whole-history statistics).

    Raises:
        ValueError: ``max_length`` is not a positive int, or the histories differ
            in length.

    Example:
        >>> buffer = HistoryBuffer()
        >>> for loss in (0.5, 0.3, 0.1):
        ...     buffer.update(loss)
        >>> buffer.mean(2), buffer.current(), buffer.max()
        (0.2, 0.1, 0.5)
    """

    _statistics_methods: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init__(
        self,
        log_history: Sequence[Any] = (),
        count_history: Sequence[float] = (),
        max_length: int = _DEFAULT_MAX_LENGTH,
    ) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"`max_length` must be a positive int, got {max_length!r}")
        if len(log_history) != len(count_history):
            raise ValueError(
                f"`log_history` and `count_history` must have the same length, got "
                f"{len(log_history)} and {len(count_history)}"
            )
        self.max_length = max_length
        self._values = np.empty(min(_INITIAL_CAPACITY, max_length), dtype=np.float64)
        self._counts: np.ndarray | None = None  # None: every count is 1
        self._start = 0
        self._size = 0
        # Totals of the values pushed off the ring: n, sum, count sum, min, max.
        self._evicted = [0, 0.0, 0.0, math.inf, -math.inf]
        # Tensors waiting for conversion, oldest first: stacked chunks, then the rest.
        self._chunks: list[torch.Tensor] = []
        self._pending: list[torch.Tensor | float] = []
        # The counts of every queued value (chunks first); None while each count is 1.
        self._pending_counts: list[float] | None = None
        # Values queued, in chunks and in _pending. Chunks hold _CHUNK values each, so
        # _pending is full exactly when this is a multiple of _CHUNK.
        self._pending_n = 0
        self._pending_tensors = 0  # tensors in _pending
        # The other buffers of the same MessageHub, converted together (one sync).
        self._siblings: Mapping[str, HistoryBuffer] | None = None
        for value, count in zip(log_history, count_history, strict=True):
            self.update(value, count)

    # --- updating -------------------------------------------------------------------

    def update(self, log_val: Any, count: float = 1) -> None:
        """Append one value.

        Args:
            log_val: A number, a one-element numpy array, or a one-element tensor
                (kept on its device until a statistic is read; never ``.item()``-ed).
            count: How many items ``log_val`` stands for (a positive number).

        Raises:
            TypeError: ``log_val`` or ``count`` is not a number.
            ValueError: ``log_val`` has more than one element, or ``count`` <= 0.
        """
        if type(count) is not int or count < 1:
            count = _check_count(count)
        self._push(log_val, count)

    def _push(self, value: Any, count: float) -> None:
        """Queue ``value`` (``count`` is already checked); compact every 1024 values.

        This runs for every logged scalar, so the common case (a float or a 0-d tensor
        with count 1) makes no call beyond the ``append``.
        """
        value_type = type(value)
        if value_type is not float:
            if value_type is torch.Tensor or isinstance(value, torch.Tensor):
                value = self._prepare_tensor(value)
            else:
                value = _as_float(value)
        self._pending.append(value)
        n = self._pending_n = self._pending_n + 1
        counts = self._pending_counts
        if counts is not None:
            counts.append(count)
        elif count != 1:
            self._pending_counts = [1.0] * (n - 1) + [count]
        if n % _CHUNK == 0:  # _pending is full (see __init__)
            self._compact()

    def _prepare_tensor(self, value: torch.Tensor) -> torch.Tensor:
        # ``ndim`` is an attribute: a 0-d tensor, the usual case, is checked without a call.
        if value.ndim and value.numel() != 1:
            raise ValueError(
                f"a logged tensor must have exactly one element, got shape {tuple(value.shape)}"
            )
        if value.requires_grad:
            value = value.detach()
        if value._base is not None:
            value = value.clone()  # a view would keep its (maybe large) base alive
        if value.ndim:
            value = value.reshape(())
        self._pending_tensors += 1
        return value

    def _compact(self) -> None:
        """Empty the queue: floats go to the ring, tensors into one stacked device tensor.

        Only a queue mixing floats and tensors, or one past ``_PENDING_LIMIT`` values,
        is converted here (a device sync).
        """
        if not self._pending_tensors and not self._chunks:
            self._extend(cast(list[float], self._pending), self._pending_counts)
            self._pending, self._pending_counts, self._pending_n = [], None, 0
            return
        if self._pending_tensors == len(self._pending) and self._pending_n < _PENDING_LIMIT:
            try:
                self._chunks.append(torch.stack(self._pending))  # type: ignore[arg-type]
            except (TypeError, RuntimeError):  # tensors on several devices
                pass
            else:
                self._pending, self._pending_tensors = [], 0
                return
        materialize([self])

    def _extend(self, values: Sequence[float], counts: Sequence[float] | None) -> None:
        """Write ``values`` into the ring, oldest first, evicting what falls off.

        ``counts`` None means a count of 1 for every value.
        """
        new = np.asarray(values, dtype=np.float64)
        weights = None
        if counts is not None and list(counts).count(1) != len(counts):
            weights = np.asarray(counts, dtype=np.float64)
            if self._counts is None:
                self._counts = np.ones(self._values.shape[0], dtype=np.float64)
        done, total = 0, new.shape[0]
        while done < total:
            size, capacity = self._size, self._values.shape[0]
            if size == capacity and capacity < self.max_length:
                self._grow()
                continue
            if size < capacity:  # not wrapped yet: the ring starts at 0
                index, take = size, min(total - done, capacity - size)
                self._size = size + take
            else:
                index, take = self._start, min(total - done, capacity - self._start)
                self._evict(index, take)
                self._start = (index + take) % capacity
            self._values[index : index + take] = new[done : done + take]
            if self._counts is not None:
                self._counts[index : index + take] = (
                    1.0 if weights is None else weights[done : done + take]
                )
            done += take

    def _evict(self, index: int, take: int) -> None:
        block = self._values[index : index + take]
        evicted = self._evicted
        evicted[0] += take
        evicted[1] += float(block.sum())
        counts = self._counts
        evicted[2] += float(take) if counts is None else float(counts[index : index + take].sum())
        evicted[3] = min(evicted[3], float(block.min()))
        evicted[4] = max(evicted[4], float(block.max()))

    def _grow(self) -> None:
        size = self._size
        capacity = min(self._values.shape[0] * 2, self.max_length)
        values = np.empty(capacity, dtype=np.float64)
        values[:size] = self._values[:size]
        self._values = values
        if self._counts is not None:
            counts = np.ones(capacity, dtype=np.float64)
            counts[:size] = self._counts[:size]
            self._counts = counts

    def _flush(self) -> None:
        """Convert every pending value, and the sibling buffers' tensors in the same batch."""
        if self._pending_n:
            materialize((self,), self._siblings.values() if self._siblings is not None else ())

    # --- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of values retained (at most ``max_length``)."""
        return min(self._size + self._pending_n, self.max_length)

    @property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the retained values and their counts, oldest first."""
        self._flush()
        values = self._last(self._values, self._size)
        counts = (
            np.ones(self._size) if self._counts is None else self._last(self._counts, self._size)
        )
        return values.copy(), counts.copy()

    def mean(self, window_size: int | None = None) -> float:
        """``sum(values) / sum(counts)`` over the last ``window_size`` updates (all if None)."""
        if self._pending_n:
            pending = self._pending
            if (
                not self._pending_tensors
                and not self._chunks
                and self._pending_counts is None
                and type(window_size) is int
                and 0 < window_size <= self._pending_n
                and window_size <= self.max_length
            ):
                # The window lies in a queue of floats of count 1: no need to move it.
                # The same sum as over the ring (see _EXACT_SUM_LIMIT).
                total = _window_sum(pending[-window_size:], window_size)
                if window_size < self._size + self._pending_n + self._evicted[0]:
                    return total / window_size
                return self._whole_mean(total, window_size)
            self._flush()
        size = self._size
        if type(window_size) is int and window_size > 0 and size and self._counts is None:
            values = self._values
            end = self._start + size
            if end <= values.shape[0]:  # the window is one slice of the ring
                width = window_size if window_size < size else size
                total = _window_sum(values[end - width : end], width)
                if window_size < size + self._evicted[0]:
                    return total / width
                return self._whole_mean(total, width)
        window, counts, whole = self._window(window_size)
        total = _window_sum(window, window.shape[0])
        count = float(_add_reduce(counts)) if counts is not None else float(window.shape[0])
        if whole:
            total += self._evicted[1]
            count += self._evicted[2]
        return total / count

    def _whole_mean(self, total: float, width: int) -> float:
        """The mean of all history: ``total`` of the ``width`` retained values and the evicted."""
        return (total + self._evicted[1]) / (float(width) + self._evicted[2])

    def max(self, window_size: int | None = None) -> float:
        """The largest of the last ``window_size`` values (all if None)."""
        values, _, whole = self._window(window_size)
        found = float(values.max())
        return max(found, self._evicted[4]) if whole else found

    def min(self, window_size: int | None = None) -> float:
        """The smallest of the last ``window_size`` values (all if None)."""
        values, _, whole = self._window(window_size)
        found = float(values.min())
        return min(found, self._evicted[3]) if whole else found

    def current(self) -> float:
        """The most recent value.

        Raises:
            ValueError: Nothing was recorded yet.
        """
        pending = self._pending
        if pending:
            last = pending[-1]
            if type(last) is float:  # queued values follow the ring and the chunks
                return last
        if self._pending_n:
            self._flush()
        size = self._size
        if not size:
            self._check_not_empty()
        values = self._values
        return float(values[(self._start + size - 1) % values.shape[0]])

    def statistics(self, method_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the statistic registered as ``method_name`` (``'mean'``, ``'max'``, ...).

        Raises:
            KeyError: No statistic is registered under ``method_name``.
        """
        method = self._statistics_methods.get(method_name)
        if method is None:
            raise KeyError(
                f"no statistic {method_name!r} in HistoryBuffer; registered: "
                f"{sorted(self._statistics_methods)} (add one with "
                "@HistoryBuffer.register_statistics)"
            )
        return method(self, *args, **kwargs)

    @classmethod
    def register_statistics(cls, method: _F) -> _F:
        """Register ``method(buffer, ...)`` as a statistic under its ``__name__``.

        Example:
            >>> @HistoryBuffer.register_statistics
            ... def first(buffer):
            ...     return float(buffer.data[0][0])
            >>> HistoryBuffer([3.0, 4.0], [1, 1]).statistics('first')
            3.0
        """
        cls._statistics_methods[method.__name__] = method
        return method

    def _check_not_empty(self) -> None:
        if self._size == 0:
            raise ValueError("the HistoryBuffer is empty: call update() before reading it")

    def _window(self, window_size: int | None) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """The last ``window_size`` values and counts, and whether that is all history."""
        self._flush()
        self._check_not_empty()
        if window_size is None:
            width = self._size
        elif type(window_size) is int and window_size >= 1:  # the usual case, no isinstance
            width = window_size if window_size < self._size else self._size
        elif isinstance(window_size, bool) or not isinstance(window_size, (int, np.integer)):
            raise TypeError(f"`window_size` must be a positive int or None, got {window_size!r}")
        elif window_size < 1:
            raise ValueError(f"`window_size` must be a positive int or None, got {window_size}")
        else:
            width = min(int(window_size), self._size)
        whole = window_size is None or window_size >= self._size + self._evicted[0]
        counts = None if self._counts is None else self._last(self._counts, width)
        return self._last(self._values, width), counts, bool(whole)

    def _last(self, array: np.ndarray, width: int) -> np.ndarray:
        """The last ``width`` retained items of a ring array, oldest first."""
        capacity = array.shape[0]
        end = self._start + self._size  # exclusive, not wrapped
        begin = end - width
        if end <= capacity:
            return array[begin:end]
        if begin >= capacity:
            return array[begin - capacity : end - capacity]
        return np.concatenate((array[begin:], array[: end - capacity]))

    # --- state ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The buffer as plain Python types (``torch.load(weights_only=True)`` reads them).

        ``values`` is the retained history, oldest first, as little-endian float64
        ``bytes``: one pickled object however long the history, and far cheaper to
        pickle than a tensor. The other keys are present only when they differ from
        the default, since each saved object costs a checkpoint some calls:
        ``max_length`` (default 1,000,000); ``counts``, as ``values``, when a count
        other than 1 was recorded; ``evicted``, when values fell off the ring:
        ``(n, sum, count sum, min, max)`` of those values.

        Example:
            >>> buffer = HistoryBuffer([1.0, 2.0], [1, 1], max_length=10)
            >>> state = buffer.state_dict()
            >>> sorted(state), np.frombuffer(state["values"], "<f8").tolist()
            (['max_length', 'values'], [1.0, 2.0])
        """
        if self._pending_n:
            self._flush()
        size = self._size
        state: dict[str, Any] = {"values": _wire_bytes(self._last(self._values, size))}
        if self.max_length != _DEFAULT_MAX_LENGTH:
            state["max_length"] = self.max_length
        if self._counts is not None:
            state["counts"] = _wire_bytes(self._last(self._counts, size))
        if self._evicted[0]:
            state["evicted"] = tuple(self._evicted)
        return state

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> HistoryBuffer:
        """Rebuild a buffer from :meth:`state_dict`'s output.

        Also reads the layouts earlier versions wrote: histories as float64 tensors
        or lists, ``counts`` as None, ``evicted`` as a dict.

        Raises:
            ValueError: ``state`` lacks ``values``, or is malformed.
        """
        if not isinstance(state, Mapping) or "values" not in state:
            raise ValueError(
                "a HistoryBuffer state must be a dict with 'values' (from "
                f"HistoryBuffer.state_dict()), got {state!r:.200}"
            )
        values = _as_array(state["values"], "values")
        counts = state.get("counts")
        counts = None if counts is None else _as_array(counts, "counts")
        if counts is not None and counts.shape != values.shape:
            raise ValueError(
                f"'counts' must hold one count per value, got {counts.shape[0]} counts for "
                f"{values.shape[0]} values"
            )
        if counts is not None and not bool((counts > 0).all()):
            raise ValueError("every count in 'counts' must be a positive number")
        buffer = cls(max_length=state.get("max_length", _DEFAULT_MAX_LENGTH))
        if values.shape[0]:
            buffer._extend(values, counts)  # type: ignore[arg-type]
        evicted = state.get("evicted")
        if evicted is not None:
            if isinstance(evicted, Mapping):  # the layout of earlier versions
                evicted = [evicted[key] for key in ("n", "sum", "count", "min", "max")]
            n, total, count, low, high = evicted
            buffer._evicted = [int(n), float(total), float(count), float(low), float(high)]
        return buffer

    def __getstate__(self) -> dict[str, Any]:
        self._flush()
        state = self.__dict__.copy()
        state["_siblings"] = None  # copies and pickles do not drag the hub along
        return state

    def __repr__(self) -> str:
        return f"HistoryBuffer(len={len(self)}, max_length={self.max_length})"


for _name in ("mean", "max", "min", "current"):
    HistoryBuffer._statistics_methods[_name] = getattr(HistoryBuffer, _name)


def _check_count(count: Any) -> float:
    if isinstance(count, bool) or not isinstance(count, (int, float, np.integer, np.floating)):
        raise TypeError(f"`count` must be a positive number, got {type(count).__name__}: {count!r}")
    if not count > 0:
        raise ValueError(f"`count` must be a positive number, got {count!r}")
    return count  # type: ignore[return-value]


def _as_float(value: Any) -> float:
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(
                f"a logged array must have exactly one element, got shape {value.shape}"
            )
        return float(value.item())
    raise TypeError(
        "a logged value must be a number, a one-element tensor or a one-element numpy "
        f"array, got {type(value).__name__}: {value!r:.100}"
    )


def _wire_bytes(array: np.ndarray) -> bytes:
    """A float64 array as little-endian bytes (no conversion on a little-endian machine)."""
    return array.tobytes() if _NATIVE_IS_WIRE else array.astype(_WIRE).tobytes()


def _as_array(values: Any, name: str) -> np.ndarray:
    """A saved history as a 1-d float64 array: bytes (the current layout), a tensor or a list."""
    if isinstance(values, bytes):
        if len(values) % 8:
            raise ValueError(f"{name!r} must hold whole float64 values, got {len(values)} bytes")
        array = np.frombuffer(values, dtype=_WIRE)
    elif isinstance(values, torch.Tensor):
        array = values.detach().cpu().to(torch.float64).numpy()
    else:
        array = np.asarray(list(values), dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name!r} must be one-dimensional, got shape {array.shape}")
    return array.astype(np.float64, copy=False)
