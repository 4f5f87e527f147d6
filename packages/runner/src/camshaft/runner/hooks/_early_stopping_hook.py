"""EarlyStoppingHook: stop training when a validation metric stops improving.

After each validation the hook reads one metric and asks the training loop to stop
(``runner.train_loop.stop_training = True``) when the metric is not finite, when it
reaches ``stopping_threshold``, or when it has not improved by more than
``min_delta`` for ``patience`` validations in a row. Its counters are saved in
checkpoints under ``checkpoint['hook_state']['EarlyStoppingHook']``, so a resumed run
keeps counting where the interrupted one stopped.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook
from camshaft.runner.hooks._metric_rules import infer_rule

__all__ = ["EarlyStoppingHook"]

_STATE_KEY = "EarlyStoppingHook"


@HOOKS.register_module()
class EarlyStoppingHook(Hook):
    """Stop training once the monitored validation metric stops improving.

    Args:
        monitor: The metric to watch, as the evaluator names it (e.g.
            ``'accuracy/top1'``, ``'loss'``).
        rule: ``'greater'`` (larger is better) or ``'less'``. ``None`` infers it
            from ``monitor`` as ``CheckpointHook`` does: names containing ``acc``,
            ``top``, ``AR@``, ``auc``, ``precision``, ``mAP``, ``mDice``, ``mIoU``,
            ``mAcc`` or ``aAcc`` are ``'greater'``, names containing ``loss`` are
            ``'less'`` (case-insensitive; an exact match wins over a substring).
            Defaults to None.
        min_delta: An improvement must exceed the best value so far by more than
            this. Defaults to 0.1.
        strict: Raise when ``monitor`` is missing from the metrics instead of
            warning once and skipping. Defaults to False.
        check_finite: Stop when the metric is NaN or infinite. Defaults to True.
        patience: Stop after this many validations in a row without improvement.
            Defaults to 5.
        stopping_threshold: Stop as soon as the metric reaches this value (``>=``
            for ``'greater'``, ``<=`` for ``'less'``). Defaults to None (never).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``rule`` is not ``'greater'``, ``'less'`` or None, or cannot be
            inferred from ``monitor``; ``patience < 1``; ``min_delta`` is negative
            or not finite.

    Example:
        >>> hook = EarlyStoppingHook('accuracy/top1', patience=3, min_delta=0.01)
        >>> hook.rule
        'greater'

        In a config: ``custom_hooks = [dict(type='EarlyStoppingHook', monitor='loss')]``.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        monitor: str,
        rule: str | None = None,
        min_delta: float = 0.1,
        strict: bool = False,
        check_finite: bool = True,
        patience: int = 5,
        stopping_threshold: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(
                f"EarlyStoppingHook: `monitor` must be a non-empty metric name (str), "
                f"got {monitor!r}"
            )
        if rule is not None and rule not in ("greater", "less"):
            raise ValueError(
                f"EarlyStoppingHook: `rule` must be 'greater', 'less' or None, got {rule!r}"
            )
        for name, flag in (("strict", strict), ("check_finite", check_finite)):
            if not isinstance(flag, bool):
                raise TypeError(
                    f"EarlyStoppingHook: `{name}` must be a bool, got "
                    f"{type(flag).__name__} {flag!r}"
                )
        if isinstance(patience, bool) or not isinstance(patience, int):
            raise TypeError(f"EarlyStoppingHook: `patience` must be an int >= 1, got {patience!r}")
        if patience < 1:
            raise ValueError(f"EarlyStoppingHook: `patience` must be an int >= 1, got {patience}")
        if not _is_real(min_delta):
            raise TypeError(
                f"EarlyStoppingHook: `min_delta` must be a number >= 0, got {min_delta!r}"
            )
        if not 0 <= float(min_delta) < math.inf:
            raise ValueError(
                f"EarlyStoppingHook: `min_delta` must be a finite number >= 0, got {min_delta!r}"
            )
        if stopping_threshold is not None and not _is_real(stopping_threshold):
            raise TypeError(
                "EarlyStoppingHook: `stopping_threshold` must be a number or None, got "
                f"{stopping_threshold!r}"
            )
        self.monitor = monitor
        self.rule: str = rule if rule is not None else self._infer_rule(monitor)
        self.min_delta = float(min_delta)
        self.strict = strict
        self.check_finite = check_finite
        self.patience = patience
        self.stopping_threshold = None if stopping_threshold is None else float(stopping_threshold)
        self.best_score = -math.inf if self.rule == "greater" else math.inf
        self.wait_count = 0
        self._warned_missing = False

    @staticmethod
    def _infer_rule(monitor: str) -> str:
        return infer_rule(monitor, owner="EarlyStoppingHook", argument="monitor")

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Check the monitored metric and stop training when a condition is met.

        Raises:
            KeyError: With ``strict``, ``monitor`` is not in ``metrics``.
            TypeError: The metric's value is not a number.
        """
        metrics = metrics or {}
        if self.monitor not in metrics:
            message = (
                f"EarlyStoppingHook: `monitor`={self.monitor!r} is not among the validation "
                f"metrics {sorted(metrics)}"
            )
            if self.strict:
                raise KeyError(
                    f"{message}; fix the name (metrics carry their evaluator's prefix, e.g. "
                    "'accuracy/top1') or set strict=False to skip"
                )
            if not self._warned_missing:
                warnings.warn(f"{message}; early stopping is skipped", UserWarning, stacklevel=2)
                self._warned_missing = True
            return
        value = metrics[self.monitor]
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"EarlyStoppingHook: metric {self.monitor!r} must be a number, got "
                f"{type(value).__name__} {value!r:.80}"
            ) from None
        reason = self._update(score)
        if reason is not None:
            loop = runner.train_loop
            if loop is not None:
                loop.stop_training = True
            runner.logger.info(f"EarlyStoppingHook: stopping training: {reason}")

    def _update(self, score: float) -> str | None:
        """Fold ``score`` into the state; return why training should stop, or None."""
        greater = self.rule == "greater"
        if self.check_finite and not math.isfinite(score):
            return f"{self.monitor} = {score} is not finite (best so far: {self.best_score:.6g})"
        threshold = self.stopping_threshold
        if threshold is not None and (score >= threshold if greater else score <= threshold):
            self.best_score = score
            return (
                f"{self.monitor} = {score:.6g} reached stopping_threshold = {threshold:.6g} "
                f"(rule {self.rule!r})"
            )
        if greater:
            improved = score > self.best_score + self.min_delta
        else:
            improved = score < self.best_score - self.min_delta
        if improved:
            self.best_score = score
            self.wait_count = 0
            return None
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return (
                f"{self.monitor} did not improve by more than min_delta = {self.min_delta:g} "
                f"in the last {self.wait_count} validations (best: {self.best_score:.6g})"
            )
        return None

    # --- checkpoints ---------------------------------------------------------------

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Store ``{'best_score': float, 'wait_count': int}`` in ``checkpoint['hook_state']``.

        Raises:
            TypeError: ``checkpoint['hook_state']`` exists and is not a dict.
        """
        hook_state = checkpoint.setdefault("hook_state", {})
        if not isinstance(hook_state, dict):
            raise TypeError(
                "EarlyStoppingHook: checkpoint['hook_state'] must be a dict, got "
                f"{type(hook_state).__name__}"
            )
        hook_state[_STATE_KEY] = {
            "best_score": float(self.best_score),
            "wait_count": int(self.wait_count),
        }

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Restore the best score and wait count, when the checkpoint has them.

        Raises:
            ValueError: The stored state is malformed; nothing is changed then.
        """
        hook_state = checkpoint.get("hook_state")
        if not isinstance(hook_state, dict) or _STATE_KEY not in hook_state:
            return
        state = hook_state[_STATE_KEY]
        where = f"checkpoint['hook_state'][{_STATE_KEY!r}]"
        expected = "a dict with 'best_score' (a number) and 'wait_count' (an int >= 0)"
        if not isinstance(state, dict):
            raise ValueError(f"{where} must be {expected}, got {type(state).__name__}")
        best, wait = state.get("best_score"), state.get("wait_count")
        if not _is_real(best):
            raise ValueError(f"{where}['best_score'] must be a number, got {best!r}")
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise ValueError(f"{where}['wait_count'] must be an int >= 0, got {wait!r}")
        self.best_score = float(best)  # type: ignore[arg-type]
        self.wait_count = wait


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
