"""LogProcessor: turns the message hub into the log lines MMEngine users know.

After a training iteration (one line, wrapped here)::

    Epoch(train) [3][ 40/100]  lr: 1.0000e-02  eta: 0:01:12  time: 0.0213  data_time: 0.0011
    loss: 0.4312  loss_cls: 0.4312

and after validation::

    Epoch(val) [3][10/10]  accuracy: 97.1000

What it reads from its ``runner`` argument is exactly :class:`LogRunner` — a message
hub, the epoch and iteration counters, the run's length and the dataloaders (for their
``len``) — so a test can pass a small stand-in and the Runner satisfies it as it is.
It reads the hub's scalars of one mode (``'train/loss'`` → ``loss`` for ``'train'``):
keys matching ``mean_pattern`` are averaged over the last ``window_size`` updates, the
others show their latest value; ``custom_cfg`` adds or overrides statistics. Only when
a line is written are tensors in the hub converted (one device sync for all keys).

Differences from MMEngine, on purpose: items are separated by exactly two spaces (no
run of four where MMEngine leaves an empty learning-rate slot), a header without a
known ``max_epochs`` still has a space before ``[epoch]``, validation lines show the
validation losses (MMEngine's filter never matches), and GPU memory is reported only
when CUDA was initialised by the job (reading it must not create a CUDA context).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence, Sized
from typing import Any, Protocol

import numpy as np
import torch

from camshaft.runner._registry import LOG_PROCESSORS
from camshaft.runner.logging._history_buffer import HistoryBuffer
from camshaft.runner.logging._log_config import check_custom_cfg
from camshaft.runner.logging._message_hub import MessageHub

__all__ = ["LogProcessor", "LogRunner"]

_MODES = ("train", "val", "test")


class LogRunner(Protocol):
    """What :class:`LogProcessor` reads from the ``runner`` it is given.

    Attributes:
        message_hub: The hub holding ``'<mode>/<key>'`` scalars and runtime info
            (``'eta'`` in seconds, written by the iteration timer).
        epoch: Epochs completed (MMEngine's ``runner.epoch``).
        iter: Training iterations completed (MMEngine's ``runner.iter``).
        max_epochs: The length of an epoch-based run, used to align the epoch
            column; None when unknown.
        max_iters: The total training iterations; None when the runner has no
            training loop (validation or test only: the epoch then reads 0).
        train_dataloader: Sized; ``len()`` is read when a ``'train'`` line is made.
        val_dataloader: Sized; read for ``'val'`` lines.
        test_dataloader: Sized; read for ``'test'`` lines.
    """

    @property
    def message_hub(self) -> MessageHub: ...

    @property
    def epoch(self) -> int: ...

    @property
    def iter(self) -> int: ...

    @property
    def max_epochs(self) -> int | None: ...

    @property
    def max_iters(self) -> int | None: ...

    @property
    def train_dataloader(self) -> Sized | None: ...

    @property
    def val_dataloader(self) -> Sized | None: ...

    @property
    def test_dataloader(self) -> Sized | None: ...


@LOG_PROCESSORS.register_module()
class LogProcessor:
    """Formats the message hub into training and evaluation log lines.

    Args:
        window_size: How many recent updates the smoothed scalars average.
        by_epoch: Epoch-based headers (``Epoch(train) [3][ 40/100]``) or
            iteration-based ones (``Iter(train) [  40/1000]``).
        custom_cfg: Extra statistics, each ``dict(data_src='loss', method_name='mean',
            window_size=100 | 'epoch' | 'global', log_name='loss_large_window')``;
            without ``log_name`` the statistic replaces ``data_src``'s own.
        num_digits: Digits after the point for floats.
        log_with_hierarchy: Keep the ``'train/'`` prefixes in the returned tag dict.
        mean_pattern: Keys matching it (``re.search``) are averaged; others show the
            latest value.

    Raises:
        ValueError: An argument or a ``custom_cfg`` entry is invalid (the message
            names which and why).

    Example:
        >>> processor = LogProcessor(window_size=10, by_epoch=True)
        >>> tag, line = processor.get_log_after_iter(
        ...     runner, batch_idx=39, mode='train')  # doctest: +SKIP
    """

    def __init__(
        self,
        window_size: int = 10,
        by_epoch: bool = True,
        custom_cfg: Sequence[Mapping[str, Any]] | None = None,
        num_digits: int = 4,
        log_with_hierarchy: bool = False,
        mean_pattern: str = r".*(loss|time|data_time|grad_norm).*",
    ) -> None:
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise ValueError(f"`window_size` must be a positive int, got {window_size!r}")
        if isinstance(num_digits, bool) or not isinstance(num_digits, int) or num_digits < 0:
            raise ValueError(f"`num_digits` must be an int >= 0, got {num_digits!r}")
        if not isinstance(by_epoch, bool):
            raise ValueError(f"`by_epoch` must be a bool, got {by_epoch!r}")
        self.window_size = window_size
        self.by_epoch = by_epoch
        self.num_digits = num_digits
        self.log_with_hierarchy = bool(log_with_hierarchy)
        try:
            self.mean_pattern = re.compile(mean_pattern)
        except (re.error, TypeError) as exc:
            raise ValueError(f"`mean_pattern` must be a regular expression: {exc}") from exc
        self.custom_cfg = check_custom_cfg(custom_cfg, by_epoch)

    # --- public -------------------------------------------------------------------------

    def get_log_after_iter(
        self, runner: LogRunner, batch_idx: int, mode: str
    ) -> tuple[dict[str, Any], str]:
        """The tag dict and the line to write after iteration ``batch_idx`` of ``mode``.

        Args:
            runner: Anything with the :class:`LogRunner` attributes.
            batch_idx: The index of the iteration in the current epoch (from 0).
            mode: ``'train'``, ``'val'`` or ``'test'``.

        Returns:
            ``(tag, line)``: the statistics by name (for visualisation backends, with
            ``epoch``/``iter`` added) and the formatted line.

        Raises:
            ValueError: ``mode`` or ``batch_idx`` is invalid, or the runner lacks the
                dataloader or ``max_iters`` the line needs.
        """
        _check_mode(mode, _MODES)
        _check_batch_idx(batch_idx)
        custom = _resolve_windows(self.custom_cfg, runner, batch_idx)
        log_tag = self._collect_scalars(custom, runner, mode, reserve_prefix=False)
        tag = (
            self._collect_scalars(custom, runner, mode, reserve_prefix=True)
            if self.log_with_hierarchy
            else dict(log_tag)
        )
        parts = [self._iter_header(runner, batch_idx, mode, tag)]
        rates = []
        for key, value in tag.items():
            if key.endswith("lr"):
                short = _strip(key, f"{mode}/")
                log_tag.pop(short, None)
                rates.append(f"{short}: {value:.{self.num_digits}e}")
        if rates:
            parts.append(" ".join(rates))
        eta = runner.message_hub.get_info("eta")
        if eta is not None and "time" in log_tag and "data_time" in log_tag:
            parts.append(f"eta: {datetime.timedelta(seconds=int(eta))}")
            parts.append(f"time: {self._format(log_tag.pop('time'))}")
            parts.append(f"data_time: {self._format(log_tag.pop('data_time'))}")
        memory = _max_memory_mib()
        if memory is not None:
            parts.append(f"memory: {memory}")
            tag["memory"] = memory
        if mode in ("train", "val"):
            for name, value in log_tag.items():
                if mode == "val" and not name.startswith("loss"):
                    continue
                parts.append(f"{name}: {self._format(value)}")
        return tag, "  ".join(parts)

    def get_log_after_epoch(
        self, runner: LogRunner, batch_idx: int, mode: str, with_non_scalar: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The tag dict and the summary line after a validation or test epoch.

        Args:
            runner: Anything with the :class:`LogRunner` attributes.
            batch_idx: The number of iterations the epoch ran (the dataloader length).
            mode: ``'val'`` or ``'test'``.
            with_non_scalar: Also return non-scalar metrics (tensors, arrays) stored
                as ``'<mode>/<name>'`` runtime info in the tag.

        Returns:
            ``(tag, line)``; ``time`` and ``data_time`` (averaged over the epoch) come
            last in both.

        Raises:
            ValueError: ``mode`` is not ``'val'`` or ``'test'``, or the runner has no
                dataloader for it.
        """
        _check_mode(mode, ("val", "test"))
        _check_batch_idx(batch_idx)
        length = _loader_len(runner, mode)
        if not self.by_epoch:
            header = f"Iter({mode}) [{length}/{length}]"
        elif mode == "val":
            header = f"Epoch(val) [{_epoch(runner, mode)}][{length}/{length}]"
        else:
            header = f"Epoch(test) [{length}/{length}]"
        custom = list(self.custom_cfg)
        sources = {_strip(cfg["data_src"], f"{mode}/") for cfg in custom}
        for key in ("time", "data_time"):
            if key not in sources:
                custom.append({"data_src": key, "method_name": "mean", "window_size": "epoch"})
        scalars = self._collect_scalars(
            _resolve_windows(custom, runner, batch_idx), runner, mode, self.log_with_hierarchy
        )
        timing = {f"{mode}/time", f"{mode}/data_time", "time", "data_time"}
        tag = {key: value for key, value in scalars.items() if key not in timing}
        times = {key: value for key, value in scalars.items() if key in timing}
        non_scalars = self._collect_non_scalars(runner, mode)
        items = [*tag.items(), *non_scalars.items(), *times.items()]
        line = "  ".join([header, *(f"{name}: {self._format(value)}" for name, value in items)])
        if with_non_scalar:
            tag.update(non_scalars)
        tag.update(times)
        return tag, line

    # --- helpers ------------------------------------------------------------------------

    def _iter_header(
        self, runner: LogRunner, batch_idx: int, mode: str, tag: dict[str, Any]
    ) -> str:
        if self.by_epoch:
            length = _loader_len(runner, mode)
            position = str(batch_idx + 1).rjust(len(str(length)))
            if mode == "test":
                header = f"Epoch(test) [{position}/{length}]"
            else:
                epoch = _epoch(runner, mode)
                max_epochs = runner.max_epochs
                width = len(str(max_epochs)) + 3 if max_epochs is not None else 0
                tag["epoch"] = epoch
                header = f"Epoch({mode}){f' [{epoch}]'.rjust(width)}[{position}/{length}]"
        elif mode == "train":
            if runner.max_iters is None:
                raise ValueError(
                    "runner.max_iters is None, but an iteration-based 'train' line needs it"
                )
            position = str(runner.iter + 1).rjust(len(str(runner.max_iters)))
            header = f"Iter(train) [{position}/{runner.max_iters}]"
        else:
            length = _loader_len(runner, mode)
            header = f"Iter({mode}) [{str(batch_idx + 1).rjust(len(str(length)))}/{length}]"
        tag["iter"] = 0 if runner.max_iters is None else runner.iter + 1
        return header

    def _collect_scalars(
        self,
        custom_cfg: list[dict[str, Any]],
        runner: LogRunner,
        mode: str,
        reserve_prefix: bool,
    ) -> dict[str, Any]:
        prefix = f"{mode}/"
        start = len(prefix)
        buffers: dict[str, HistoryBuffer] = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            if key.startswith(prefix):
                buffers[key if reserve_prefix else key[start:]] = buffer
        tag: dict[str, Any] = {}
        for key, buffer in buffers.items():
            smoothed = self.mean_pattern.search(key) is not None
            tag[key] = buffer.mean(self.window_size) if smoothed else buffer.current()
        for cfg in custom_cfg:
            source, name = cfg["data_src"], cfg.get("log_name", cfg["data_src"])
            if reserve_prefix:
                source, name = prefix + source, prefix + name
            if source in buffers:
                window = {"window_size": cfg["window_size"]} if "window_size" in cfg else {}
                tag[name] = buffers[source].statistics(cfg["method_name"], **window)
        return tag

    def _collect_non_scalars(self, runner: LogRunner, mode: str) -> dict[str, Any]:
        prefix = f"{mode}/"
        return {
            (key if self.log_with_hierarchy else key[len(prefix) :]): value
            for key, value in runner.message_hub.runtime_info.items()
            if key.startswith(prefix)
        }

    def _format(self, value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.{self.num_digits}f}"
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return f"\n{value}\n"
        return str(value)


def _check_mode(mode: str, allowed: tuple[str, ...]) -> None:
    if mode not in allowed:
        raise ValueError(f"`mode` must be one of {list(allowed)}, got {mode!r}")


def _check_batch_idx(batch_idx: int) -> None:
    if type(batch_idx) is int and batch_idx >= 0:  # the usual case, without isinstance
        return
    if isinstance(batch_idx, bool) or not isinstance(batch_idx, int) or batch_idx < 0:
        raise ValueError(f"`batch_idx` must be an int >= 0, got {batch_idx!r}")


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def _epoch(runner: LogRunner, mode: str) -> int:
    """Training lines show the running epoch; validation the one just finished."""
    if mode == "train":
        return runner.epoch + 1
    return 0 if runner.max_iters is None else runner.epoch


def _loader_len(runner: LogRunner, mode: str) -> int:
    loader = getattr(runner, f"{mode}_dataloader", None)
    if loader is None:
        raise ValueError(f"runner.{mode}_dataloader is None; a {mode!r} log line needs its length")
    return len(loader)


def _max_memory_mib() -> int | None:
    """Peak CUDA memory since the last line, in MiB; None unless the job uses CUDA."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    peak = torch.cuda.max_memory_allocated() // (1 << 20)
    torch.cuda.reset_peak_memory_stats()
    return int(peak)


def _resolve_windows(
    custom_cfg: list[dict[str, Any]], runner: LogRunner, batch_idx: int
) -> list[dict[str, Any]]:
    """``window_size='epoch'`` → iterations so far this epoch; ``'global'`` → in total."""
    resolved = []
    for cfg in custom_cfg:
        window = cfg.get("window_size")
        if window == "epoch":
            cfg = {**cfg, "window_size": batch_idx + 1}
        elif window == "global":
            cfg = {**cfg, "window_size": runner.iter + 1}
        resolved.append(cfg)
    return resolved
