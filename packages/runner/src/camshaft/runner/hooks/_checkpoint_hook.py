"""CheckpointHook: periodic, last and best checkpoints, and how many of them to keep.

* **Periodic.** Every ``interval`` epochs (``epoch_<N>.pth``, after epoch ``N``) or
  iterations (``iter_<N>.pth``), and at the end of training when ``save_last``, through
  ``runner.save_checkpoint``, which writes atomically and points
  ``work_dir/last_checkpoint`` at the new file.
* **Kept.** With ``max_keep_ckpts=N`` only the newest ``N`` periodic checkpoints stay;
  the best ones and the one ``last_checkpoint`` names are never deleted.
* **Best.** With ``save_best``, after each validation the named metric is compared
  with the best so far (kept in the message hub, so a resumed run remembers it); an
  improvement saves ``best_<metric>_epoch_<N>.pth`` (weights and meta, no optimizer)
  and deletes the previous best file.

The names, arguments and defaults are MMEngine's, with ``interval`` defaulting to 1.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.checkpoint import prune_checkpoints
from camshaft.runner.hooks._hook import Hook, _DataBatch
from camshaft.runner.hooks._metric_rules import GREATER_KEYS, LESS_KEYS, infer_rule

__all__ = ["CheckpointHook"]

_RULES: dict[str, Callable[[float, float], bool]] = {"greater": operator.gt, "less": operator.lt}
_WORST = {"greater": -math.inf, "less": math.inf}
_PERIODIC_TEMPLATES = {"epoch_{}.pth": "epoch", "iter_{}.pth": "iter"}


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Save checkpoints periodically, at the end of training, and when a metric improves.

    Args:
        interval: Save every this many epochs (``by_epoch``) or iterations; -1 saves no
            periodic checkpoints (only the last, with ``save_last``, and the best). Defaults
            to 1.
        by_epoch: Count ``interval`` in epochs (saving in ``after_train_epoch``) or in
            iterations (``after_train_iter``). Defaults to True.
        save_optimizer: Include the optimizer state in periodic checkpoints.
        save_param_scheduler: Include the schedulers' state in periodic checkpoints.
        out_dir: Where to save. None means ``runner.work_dir``; a directory given here
            gets the last component of ``work_dir`` appended, as in MMEngine
            (``out_dir='/ckpts'``, ``work_dir='work_dirs/exp'`` → ``/ckpts/exp``).
        max_keep_ckpts: Keep only the newest this many periodic checkpoints; -1 keeps
            them all. Defaults to -1.
        save_last: Also save after the last epoch/iteration when it is not on the
            interval. Defaults to True.
        save_best: None; a metric key, e.g. ``'accuracy/top1'``; a list of keys, each
            getting its own best file; or ``'auto'``: the first key of the first
            validation's metrics.
        rule: ``'greater'`` or ``'less'`` (one per key in a list, or one for all);
            None infers it from the key: names containing ``acc``, ``top``, ``AR@``,
            ``auc``, ``precision``, ``mAP``, ``mDice``, ``mIoU``, ``mAcc`` or ``aAcc``
            (or ``greater_keys``) are better greater, names containing ``loss`` (or
            ``less_keys``) better less (case-insensitive).
        greater_keys: Replace the substrings that make a key "greater is better".
        less_keys: Replace the substrings that make a key "less is better".
        filename_tmpl: The periodic file name as a ``str.format`` template of the
            epoch or iteration number. Defaults to ``'epoch_{}.pth'`` or ``'iter_{}.pth'``.
        save_begin: The first epoch/iteration counted by ``interval``. Defaults to 0.
        async_write: Copy the state and write the files on a background thread
            (camshaft only; MMEngine writes inline). The files are complete before
            ``after_train`` hooks run and before ``train()`` returns; a failed write
            raises at the next save. It pays where storage is slow to ``fsync``
            (network file systems): training goes on meanwhile. On a fast local disk it
            gains nothing, because ``torch.save`` holds the GIL while it writes tensor
            data, and it holds one extra CPU copy of the checkpoint until written.
            Defaults to False.
        background_sync: Without ``async_write``, serialise and write the file on
            the training thread, then leave the waits for the disk (``fsync`` of the
            file and its directory, the rename, the ``last_checkpoint`` pointer,
            pruning) to the background writer (camshaft only). Until then the
            previous checkpoint and pointer stay in place, so a crash meanwhile
            resumes from them; the same completion and error rules as
            ``async_write`` hold. False makes each save durable before the hook
            returns. Defaults to True.

    Raises:
        ValueError: An argument has a bad value (``interval`` < 1, ``max_keep_ckpts``
            0 or below -1, an unknown ``rule``, a rule that cannot be inferred, ...);
            the message names the argument, the value and what is expected.
        TypeError: An argument has the wrong type.

    Example:
        >>> from camshaft.runner.hooks._checkpoint_hook import CheckpointHook
        >>> hook = CheckpointHook(interval=2, max_keep_ckpts=3, save_best='accuracy/top1')
        >>> hook.rules
        ['greater']
        >>> # epochs 2, 4, 6, ... -> epoch_2.pth, epoch_4.pth, ...; best_accuracy_top1_epoch_N.pth
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = 1,
        by_epoch: bool = True,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        out_dir: str | os.PathLike[str] | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | Sequence[str] | None = None,
        rule: str | Sequence[str | None] | None = None,
        greater_keys: str | Sequence[str] | None = None,
        less_keys: str | Sequence[str] | None = None,
        filename_tmpl: str | None = None,
        save_begin: int = 0,
        async_write: bool = False,
        background_sync: bool = True,
    ) -> None:
        # -1 (MMEngine's default) means no periodic saves: only the last and the best.
        self.interval = (
            -1
            if interval == -1 and not isinstance(interval, bool)
            else _check_int("interval", interval, 1, "a positive int or -1 (last and best only)")
        )
        for name, flag in (
            ("by_epoch", by_epoch),
            ("save_optimizer", save_optimizer),
            ("save_param_scheduler", save_param_scheduler),
            ("save_last", save_last),
            ("async_write", async_write),
            ("background_sync", background_sync),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"CheckpointHook: `{name}` must be a bool, got {flag!r}")
        self.by_epoch = by_epoch
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self.save_last = save_last
        self.async_write = async_write
        self.background_sync = background_sync
        if out_dir is not None and not isinstance(out_dir, str | os.PathLike):
            raise TypeError(
                f"CheckpointHook: `out_dir` must be None, a str or a path, got "
                f"{type(out_dir).__name__}: {out_dir!r}"
            )
        self.out_dir: str | None = None if out_dir is None else os.fspath(out_dir)
        self.max_keep_ckpts = _check_int(
            "max_keep_ckpts", max_keep_ckpts, -1, "-1 (keep all) or a positive int"
        )
        if self.max_keep_ckpts == 0:
            raise ValueError(
                "CheckpointHook: `max_keep_ckpts` must be -1 (keep all) or a positive int, "
                "got 0; use max_keep_ckpts=1 to keep only the newest"
            )
        self.save_begin = _check_int("save_begin", save_begin, 0, "an int >= 0")
        self.filename_tmpl = _check_template(filename_tmpl, by_epoch)
        self._prune_pattern = _PERIODIC_TEMPLATES.get(self.filename_tmpl)
        self.greater_keys = _check_keys("greater_keys", greater_keys, GREATER_KEYS)
        self.less_keys = _check_keys("less_keys", less_keys, LESS_KEYS)
        self.save_best = save_best
        self.key_indicators = _check_save_best(save_best)
        self.rules = self._init_rules(rule, self.key_indicators)
        self._max_iters: int | None = None  # read in before_train
        self._deferred: tuple[int, dict[str, int], str] | None = None  # saved in after_val
        self._checkpoint_dir: str | None = None  # out_dir resolved in before_train

    # --- training --------------------------------------------------------------------

    def before_train(self, runner: Any) -> None:
        """Resolve the directory the checkpoints go to, and log it."""
        work_dir = os.fspath(runner.work_dir)
        directory = work_dir if self.out_dir is None else self.out_dir
        if self.out_dir is not None and os.path.abspath(directory) != os.path.abspath(work_dir):
            directory = os.path.join(directory, os.path.basename(work_dir.rstrip(os.sep)))
        self._checkpoint_dir = directory
        self._max_iters = runner.max_iters
        runner.logger.info(f"Checkpoints will be saved to {directory}.")

    def get_triggered_stages(self) -> list[str]:
        """The overridden stages, without ``after_train_iter`` when saving by epoch.

        The dispatcher then skips this hook on every iteration of an epoch-based run.
        """
        stages = super().get_triggered_stages()
        if self.by_epoch:
            stages.remove("after_train_iter")
        return stages

    def after_train_epoch(self, runner: Any) -> None:
        """In an epoch-based hook, save every ``interval`` epochs and after the last."""
        if not self.by_epoch:
            return
        if (self.interval > 0 and self.every_n_epochs(runner, self.interval, self.save_begin)) or (
            self.save_last and self.is_last_train_epoch(runner)
        ):
            step = runner.epoch + 1
            self._save_or_defer(runner, step, {"epoch": step, "iter": runner.iter}, "epochs")

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """In an iteration-based hook, save every ``interval`` iterations and after the last."""
        if self.by_epoch:
            return
        step = runner.iter + 1
        counted = step - self.save_begin
        if not (counted >= 0 and self.interval > 0 and counted % self.interval == 0):
            max_iters = self._max_iters
            if max_iters is None:
                max_iters = self._max_iters = runner.max_iters
            if not (self.save_last and step == max_iters):
                return
        self._save_or_defer(runner, step, {"epoch": runner.epoch, "iter": step}, "iterations")

    def after_val(self, runner: Any) -> None:
        """Write the periodic checkpoint that waited for this validation, if any."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self._save_now(runner, *deferred)

    def _save_or_defer(self, runner: Any, step: int, meta: dict[str, int], unit: str) -> None:
        # When a validation follows, save after it: the checkpoint then holds the hook
        # states (best score, early-stopping counters) that this validation updates.
        validates_after = getattr(runner.train_loop, "validates_after", None)
        count = meta["epoch"] if self.by_epoch else meta["iter"]
        if validates_after is not None and validates_after(count):
            self._deferred = (step, meta, unit)
            return
        self._save_now(runner, step, meta, unit)

    def _save_now(self, runner: Any, step: int, meta: dict[str, int], unit: str) -> None:
        runner.logger.info(f"Saving checkpoint at {step} {unit}")
        self._save_periodic(runner, step, meta)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """With ``save_best``, save a best checkpoint for each key whose metric improved.

        Does nothing outside training (before ``before_train``).

        Raises:
            KeyError: A ``save_best`` key is not in ``metrics``; the message lists the
                keys that are.
            ValueError: ``save_best='auto'`` resolved to a key whose rule cannot be
                inferred.
            TypeError: The metric of a ``save_best`` key is not a number.
        """
        if not self.key_indicators or self._checkpoint_dir is None:
            return
        if not metrics:
            runner.logger.warning(
                "CheckpointHook: the validation returned no metrics; the best checkpoint "
                "is not updated this time"
            )
            return
        if self.key_indicators == ["auto"]:
            key = next(iter(metrics))
            self.key_indicators = [key]
            self.rules = self._init_rules(self.rules[0], [key])
        missing = [key for key in self.key_indicators if key not in metrics]
        if missing:
            raise KeyError(
                f"CheckpointHook(save_best={self.save_best!r}): the metrics have no "
                f"{', '.join(map(repr, missing))}; they have {sorted(metrics)}"
            )
        for key, rule in zip(self.key_indicators, self.rules, strict=True):
            self._update_best(runner, key, rule, metrics[key])

    # --- helpers ---------------------------------------------------------------------

    def _directory(self, runner: Any) -> str:
        if self._checkpoint_dir is None:
            self.before_train(runner)
        assert self._checkpoint_dir is not None
        return self._checkpoint_dir

    def _save_periodic(self, runner: Any, step: int, meta: dict[str, int]) -> None:
        directory = self._directory(runner)
        filename = self.filename_tmpl.format(step)
        runner.save_checkpoint(
            directory,
            filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            asynchronous=self.async_write,
            background_sync=self.background_sync,
        )
        runner.message_hub.update_info("last_ckpt", os.path.join(directory, filename))
        if self.max_keep_ckpts > 0:
            self._prune(runner, directory, step)

    def _prune(self, runner: Any, directory: str, step: int) -> None:
        main = getattr(runner, "rank", 0) == 0
        keep, pattern = self.max_keep_ckpts, self._prune_pattern
        if pattern is not None:
            if main:
                self._after_writes(
                    runner,
                    lambda: prune_checkpoints(directory, keep, pattern),
                    f"pruning {directory!r} to {keep} checkpoints",
                )
            return
        # A custom template: remember the steps saved (in the hub, for resume).
        hub = runner.message_hub
        steps = list(hub.get_info("keep_ckpt_ids", None) or [])
        if not steps or steps[-1] != step:
            steps.append(step)
        while len(steps) > self.max_keep_ckpts:
            old = Path(directory, self.filename_tmpl.format(steps.pop(0)))
            if main:
                self._after_writes(runner, _remover(old), f"deleting {str(old)!r}")
        hub.update_info("keep_ckpt_ids", steps)

    def _after_writes(self, runner: Any, job: Callable[[], object], what: str) -> None:
        """Run a file job after the checkpoint writes queued before it."""
        writer = getattr(runner, "checkpoint_writer", None)
        if writer is None:  # a runner without a writer writes inline
            job()
        else:
            writer.submit(job, what, asynchronous=self.async_write or self.background_sync)

    def _update_best(self, runner: Any, key: str, rule: str | None, value: Any) -> None:
        assert rule is not None  # inferred or checked for every key before training
        try:
            if isinstance(value, str | bytes):
                raise TypeError(value)
            score = float(value)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"CheckpointHook(save_best={self.save_best!r}): metric {key!r} must be a "
                f"number to compare, got {type(value).__name__}: {value!r:.100}"
            ) from None
        hub = runner.message_hub
        single = len(self.key_indicators) == 1
        best = hub.get_info(f"best_score_{key}")
        if best is None and single:
            best = hub.get_info("best_score")  # a checkpoint written by MMEngine
        if not _RULES[rule](score, _WORST[rule] if best is None else best):
            return
        previous = hub.get_info(f"best_ckpt_{key}")
        if previous is None and single:
            previous = hub.get_info("best_ckpt")
        directory = self._directory(runner)
        unit, count = ("epoch", runner.epoch) if self.by_epoch else ("iter", runner.iter)
        safe_key = key.replace("/", "_").replace(os.sep, "_")
        filename = f"best_{safe_key}_{self.filename_tmpl.format(count)}"
        path = os.path.join(directory, filename)
        hub.update_info(f"best_score_{key}", score)
        hub.update_info(f"best_ckpt_{key}", path)
        if single:
            hub.update_info("best_score", score)
            hub.update_info("best_ckpt", path)
        runner.save_checkpoint(
            directory,
            filename,
            save_optimizer=False,
            save_param_scheduler=False,
            meta={"epoch": runner.epoch, "iter": runner.iter},
            by_epoch=False,
            update_pointer=False,
            asynchronous=self.async_write,
            background_sync=self.background_sync,
        )
        runner.logger.info(
            f"The best checkpoint with {score:0.4f} {key} at {count} {unit} is saved to {filename}."
        )
        if previous is None or getattr(runner, "rank", 0) != 0:
            return
        old = Path(previous)
        if old != Path(path) and old.name.startswith("best_"):
            self._after_writes(runner, _remover(old, runner.logger), f"deleting {previous!r}")

    def _init_rules(self, rule: Any, keys: list[str]) -> list[str | None]:
        """One rule per key: given, or inferred from the key (None for ``'auto'``)."""
        if not keys:
            return []
        if rule is None or isinstance(rule, str):
            given: list[Any] = [rule] * len(keys)
        elif isinstance(rule, list | tuple):
            if len(rule) != len(keys):
                raise ValueError(
                    f"CheckpointHook: `rule` must give one rule per save_best key "
                    f"({len(keys)}: {keys}), got {len(rule)}: {list(rule)!r}"
                )
            given = list(rule)
        else:
            raise TypeError(
                "CheckpointHook: `rule` must be None, 'greater', 'less' or a list of them, "
                f"got {type(rule).__name__}: {rule!r}"
            )
        rules: list[str | None] = []
        for key, one in zip(keys, given, strict=True):
            if one is not None and one not in _RULES:
                raise ValueError(
                    f"CheckpointHook: `rule` must be 'greater', 'less' or None, got {one!r}"
                )
            rules.append(one if one is not None or key == "auto" else self._infer_rule(key))
        return rules

    def _infer_rule(self, key: str) -> str:
        return infer_rule(key, self.greater_keys, self.less_keys, owner="CheckpointHook")


def _check_int(name: str, value: Any, minimum: int, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"CheckpointHook: `{name}` must be {expected}, got {type(value).__name__}: {value!r}"
        )
    if value < minimum:
        raise ValueError(f"CheckpointHook: `{name}` must be {expected}, got {value!r}")
    return value


def _check_template(filename_tmpl: Any, by_epoch: bool) -> str:
    if filename_tmpl is None:
        return "epoch_{}.pth" if by_epoch else "iter_{}.pth"
    expected = "a str.format template of the step number, e.g. 'ckpt_{}.pth'"
    if not isinstance(filename_tmpl, str):
        raise TypeError(
            f"CheckpointHook: `filename_tmpl` must be {expected}; got "
            f"{type(filename_tmpl).__name__}: {filename_tmpl!r}"
        )
    try:
        first, second = filename_tmpl.format(1), filename_tmpl.format(2)
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(
            f"CheckpointHook: `filename_tmpl` must be {expected}; {filename_tmpl!r} fails: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if first == second:
        raise ValueError(
            f"CheckpointHook: `filename_tmpl` must be {expected}; {filename_tmpl!r} has no "
            "'{}' placeholder, so every checkpoint would overwrite the last"
        )
    if first.startswith("best_"):
        raise ValueError(
            f"CheckpointHook: `filename_tmpl` must not start with 'best_' (the prefix of the "
            f"best checkpoints), got {filename_tmpl!r}"
        )
    return filename_tmpl


def _check_keys(name: str, keys: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if keys is None:
        return default
    found = (keys,) if isinstance(keys, str) else keys
    if not isinstance(found, list | tuple) or not all(isinstance(k, str) and k for k in found):
        raise TypeError(
            f"CheckpointHook: `{name}` must be None, a str or a list of non-empty str, got "
            f"{type(keys).__name__}: {keys!r}"
        )
    return tuple(found)


def _check_save_best(save_best: Any) -> list[str]:
    if save_best is None:
        return []
    expected = "None, a metric key, a list of metric keys, or 'auto'"
    keys = [save_best] if isinstance(save_best, str) else save_best
    if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise TypeError(
            f"CheckpointHook: `save_best` must be {expected}; got "
            f"{type(save_best).__name__}: {save_best!r}"
        )
    if not keys or not all(keys):
        raise ValueError(
            f"CheckpointHook: `save_best` must be {expected}; got the empty {save_best!r}"
        )
    if len(set(keys)) != len(keys):
        raise ValueError(f"CheckpointHook: `save_best` lists a key twice: {save_best!r}")
    if "auto" in keys and len(keys) > 1:
        raise ValueError(
            f"CheckpointHook: `save_best='auto'` cannot be combined with other keys, got "
            f"{save_best!r}"
        )
    return list(keys)


def _remover(path: Path, logger: Any = None) -> Callable[[], None]:
    """A job deleting ``path`` if it is still there (logging it when given a logger)."""

    def remove() -> None:
        if path.is_file():
            path.unlink()
            if logger is not None:
                logger.info(f"The previous best checkpoint {path} is removed")

    return remove
