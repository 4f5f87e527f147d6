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
        # Caches of what stays the same from one line to the next (see _ScalarPlan,
        # _TrainFacts); each is checked against what it was built from on every line.
        self._plans: dict[tuple[str, bool], _ScalarPlan] = {}
        self._facts: _TrainFacts | None = None
        self._rate_names: dict[tuple[str, str], str | None] = {}

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
        if mode not in _MODES:
            _check_mode(mode, _MODES)
        if type(batch_idx) is not int or batch_idx < 0:
            _check_batch_idx(batch_idx)
        custom = _resolve_windows(self.custom_cfg, runner, batch_idx) if self.custom_cfg else []
        hub = runner.message_hub
        scalars = hub.log_scalars
        log_tag = self._collect_scalars(custom, runner, mode, False, scalars)
        tag = (
            self._collect_scalars(custom, runner, mode, True, scalars)
            if self.log_with_hierarchy
            else dict(log_tag)
        )
        line = self._iter_header(runner, batch_idx, mode, tag)
        digits = self.num_digits
        rate_names = self._rate_names
        rates = ""
        shown: tuple[str, ...] = ()  # names already on the line
        for key, value in tag.items():
            try:
                short = rate_names[key, mode]
            except KeyError:
                short = rate_names[key, mode] = (
                    _strip(key, f"{mode}/") if key.endswith("lr") else None
                )
            if short is not None:
                shown += (short,)
                rates += f" {short}: {value:.{digits}e}"
        if rates:
            line += f"  {rates[1:]}"
        eta = hub.get_info("eta")
        if eta is not None and "time" in log_tag and "data_time" in log_tag:
            time, data = log_tag["time"], log_tag["data_time"]
            time_text = f"{time:.{digits}f}" if type(time) is float else self._format(time)
            data_text = f"{data:.{digits}f}" if type(data) is float else self._format(data)
            line += (
                f"  eta: {datetime.timedelta(seconds=int(eta))}  time: {time_text}"
                f"  data_time: {data_text}"
            )
            shown += ("time", "data_time")
        # is_initialized first: it is one call, and False whenever CUDA is unused.
        if torch.cuda.is_initialized():
            memory = _max_memory_mib()
            if memory is not None:
                line += f"  memory: {memory}"
                tag["memory"] = memory
        if mode != "test":
            val = mode == "val"
            for name, value in log_tag.items():
                if name in shown or (val and not name.startswith("loss")):
                    continue
                text = f"{value:.{digits}f}" if type(value) is float else self._format(value)
                line += f"  {name}: {text}"
        return tag, line

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

    def __getstate__(self) -> dict[str, Any]:
        """The processor without its caches (they hold the runner's dataloader)."""
        state = self.__dict__.copy()
        state.update(_plans={}, _facts=None, _rate_names={})
        return state

    # --- helpers ------------------------------------------------------------------------

    def _iter_header(
        self, runner: LogRunner, batch_idx: int, mode: str, tag: dict[str, Any]
    ) -> str:
        if mode == "train":
            by_epoch, loader, epoch = self.by_epoch, runner.train_dataloader, runner.epoch
            facts = self._facts
            if (
                facts is None
                or facts.loader is not loader
                or facts.epoch != epoch
                or facts.by_epoch != by_epoch
            ):
                facts = self._facts = _TrainFacts(runner, loader, epoch, by_epoch)
            if by_epoch:
                width, length = facts.position_width, facts.length
                tag["epoch"] = facts.epoch + 1
                header = f"{facts.epoch_header}[{batch_idx + 1:>{width}}/{length}]"
            else:
                max_iters = facts.max_iters
                if max_iters is None:
                    raise ValueError(
                        "runner.max_iters is None, but an iteration-based 'train' line needs it"
                    )
                header = f"Iter(train) [{runner.iter + 1:>{len(str(max_iters))}}/{max_iters}]"
            tag["iter"] = 0 if facts.max_iters is None else runner.iter + 1
            return header
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
        scalars: Mapping[str, HistoryBuffer] | None = None,
    ) -> dict[str, Any]:
        if scalars is None:
            scalars = runner.message_hub.log_scalars
        keys = tuple(scalars)
        pattern = self.mean_pattern
        try:
            plan = self._plans[mode, reserve_prefix]
        except KeyError:
            plan = None
        if plan is None or plan.keys != keys or plan.pattern is not pattern:
            plan = self._plans[mode, reserve_prefix] = _ScalarPlan(
                keys, f"{mode}/", reserve_prefix, pattern
            )
        window = self.window_size
        tag: dict[str, Any] = {}
        for key, name, smoothed in plan.entries:
            buffer = scalars[key]
            tag[name] = buffer.mean(window) if smoothed else buffer.current()
        prefix = f"{mode}/"
        for cfg in custom_cfg:
            source, name = cfg["data_src"], cfg.get("log_name", cfg["data_src"])
            if reserve_prefix:
                name = prefix + name
            found = scalars.get(prefix + source)
            if found is not None:
                window_kw = {"window_size": cfg["window_size"]} if "window_size" in cfg else {}
                tag[name] = found.statistics(cfg["method_name"], **window_kw)
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


class _ScalarPlan:
    """Which hub keys one mode's scalars come from, their names and statistic.

    Built from the hub's key order and ``mean_pattern``; rebuilt when either changes.

    Args:
        keys: Every key of the hub, in order.
        prefix: ``'<mode>/'``; keys without it are left out.
        reserve_prefix: Name the scalars by their whole key rather than without the prefix.
        pattern: ``mean_pattern``: a name it matches shows the window mean, others the
            latest value.
    """

    __slots__ = ("entries", "keys", "pattern")

    def __init__(
        self, keys: tuple[str, ...], prefix: str, reserve_prefix: bool, pattern: re.Pattern[str]
    ) -> None:
        self.keys = keys
        self.pattern = pattern
        entries = []
        for key in keys:
            if key.startswith(prefix):
                name = key if reserve_prefix else key[len(prefix) :]
                entries.append((key, name, pattern.search(name) is not None))
        self.entries: tuple[tuple[str, str, bool], ...] = tuple(entries)


class _TrainFacts:
    """What a training line's header needs that is fixed within an epoch.

    Args:
        runner: The runner to read ``max_epochs``, ``max_iters`` and the length from.
        loader: ``runner.train_dataloader``, already read.
        epoch: ``runner.epoch``, already read.
        by_epoch: Whether the header is epoch-based (then the loader's length is read).

    Raises:
        ValueError: ``by_epoch`` and the loader is None.
    """

    __slots__ = (
        "by_epoch",
        "epoch",
        "epoch_header",
        "length",
        "loader",
        "max_iters",
        "position_width",
    )

    def __init__(self, runner: LogRunner, loader: Any, epoch: int, by_epoch: bool) -> None:
        self.loader = loader
        self.epoch = epoch
        self.by_epoch = by_epoch
        self.max_iters = runner.max_iters
        self.length = 0
        self.position_width = 0
        self.epoch_header = ""
        if by_epoch:
            if loader is None:
                raise ValueError(
                    "runner.train_dataloader is None; a 'train' log line needs its length"
                )
            self.length = len(loader)
            self.position_width = len(str(self.length))
            max_epochs = runner.max_epochs
            width = len(str(max_epochs)) + 3 if max_epochs is not None else 0
            self.epoch_header = f"Epoch(train){f' [{epoch + 1}]'.rjust(width)}"


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
