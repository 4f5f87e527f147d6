"""RuntimeInfoHook: keeps the message hub's runtime facts and per-iteration scalars current.

Everything the log processor, the visualizer and other hooks read from
``runner.message_hub`` about *where the run is* is written here, under MMEngine's
key names:

* info ``'cfg'``, ``'seed'``, ``'experiment_name'``, ``'camshaft_version'`` and
  ``'camshaft_versions'`` once, before the run;
* info ``'epoch'``, ``'iter'``, ``'max_epochs'``, ``'max_iters'``, ``'dataset_meta'``
  before training, ``'epoch'`` before each epoch and ``'iter'`` before each iteration;
* info ``'loop_stage'`` (``'train'``, ``'val'`` or ``'test'``) while a loop runs;
* scalars ``'train/lr'`` (``'train/<name>.lr'`` for an ``OptimWrapperDict``) before
  each iteration and ``'train/<key>'`` for every logged output after it;
* scalars ``'val/<metric>'`` / ``'test/<metric>'`` after evaluation (non-scalar
  metrics go to info under the same key).

The two per-iteration stages bind the hub's methods and the wrapper's ``get_lr``
once, in ``before_train``, so each iteration costs a handful of calls and no
``.item()``: tensors are handed to the hub as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from camshaft.runner._registry import HOOKS
from camshaft.runner._versions import camshaft_versions
from camshaft.runner.hooks._hook import Hook, _DataBatch

__all__ = ["RuntimeInfoHook"]


# (message_hub.update_info, message_hub.update_scalar, optim_wrapper.get_lr, the
# optim wrapper when its first group's rate can be read without get_lr(), else None)
_Bound = tuple[Callable[..., None], Callable[..., None], Callable[[], Mapping[str, Any]], Any]


@HOOKS.register_module()
class RuntimeInfoHook(Hook):
    """Write the run's position, learning rates, outputs and metrics to the message hub.

    It takes no arguments and runs before every other hook (priority
    ``VERY_HIGH``), so hooks called later in the same stage see current values.
    The Runner registers it by default.

    Example:
        >>> from camshaft.runner.hooks._runtime_info_hook import RuntimeInfoHook
        >>> hook = RuntimeInfoHook()
        >>> 'before_train_iter' in hook.get_triggered_stages()
        True
        >>> # during training, after iteration 4 of a run:
        >>> # runner.message_hub.get_info('iter') == 4
        >>> # runner.message_hub.get_scalar('train/lr').current() == 0.01
    """

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self._bound: _Bound | None = None
        self._stage_before_val: Any = None
        self._last_lr: dict[str, float] = {}  # the first group's rate last recorded, by key
        self._last_rates: Mapping[str, Any] | None = None  # get_lr() at the last change
        self._next_iter: int | None = None  # runner.iter at the next before_train_iter
        self._last_plain_lr: Any = None  # the 'lr' last recorded through the fast path

    # --- whole run -------------------------------------------------------------------

    def before_run(self, runner: Any) -> None:
        """Record the config text, seed, experiment name and camshaft versions (info)."""
        versions = camshaft_versions()
        runner.message_hub.update_info_dict(
            {
                "cfg": _cfg_text(runner.cfg),
                "seed": runner.seed,
                "experiment_name": runner.experiment_name,
                "camshaft_version": versions.get("camshaft-runner", "unknown"),
                "camshaft_versions": versions,
            }
        )

    def before_train(self, runner: Any) -> None:
        """Record the counters and the run length; the train dataset's ``metainfo`` if any.

        Also binds the methods the per-iteration stages call.
        """
        hub = runner.message_hub
        hub.update_info("loop_stage", "train")
        hub.update_info("epoch", runner.epoch)
        hub.update_info("iter", runner.iter)
        hub.update_info("max_epochs", runner.max_epochs)
        hub.update_info("max_iters", runner.max_iters)
        dataset = getattr(runner.train_dataloader, "dataset", None)
        metainfo = getattr(dataset, "metainfo", None)
        if metainfo is not None:
            hub.update_info("dataset_meta", metainfo)
        self._bind(runner)

    def after_train(self, runner: Any) -> None:
        """Leave the ``'train'`` loop stage."""
        runner.message_hub.pop_info("loop_stage")

    def before_val(self, runner: Any) -> None:
        """Enter the ``'val'`` loop stage, remembering the stage it interrupts."""
        self._stage_before_val = runner.message_hub.get_info("loop_stage")
        runner.message_hub.update_info("loop_stage", "val")

    def after_val(self, runner: Any) -> None:
        """Return to the interrupted stage (validation inside training), or leave it."""
        if self._stage_before_val is None:
            runner.message_hub.pop_info("loop_stage")
        else:
            runner.message_hub.update_info("loop_stage", self._stage_before_val)
            self._stage_before_val = None

    def before_test(self, runner: Any) -> None:
        """Enter the ``'test'`` loop stage."""
        runner.message_hub.update_info("loop_stage", "test")

    def after_test(self, runner: Any) -> None:
        """Leave the ``'test'`` loop stage."""
        runner.message_hub.pop_info("loop_stage")

    # --- training --------------------------------------------------------------------

    def before_train_epoch(self, runner: Any) -> None:
        """Record ``'epoch'`` (epochs completed so far)."""
        runner.message_hub.update_info("epoch", runner.epoch)
        self._next_iter = None

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: _DataBatch = None) -> None:
        """Record ``'iter'`` and the first param group's learning rate of each optimizer.

        ``optim_wrapper.get_lr()`` gives ``{'lr': [...]}`` for an ``OptimWrapper`` and
        ``{'<name>.lr': [...], ...}`` for an ``OptimWrapperDict``; each key becomes
        the scalar ``'train/<key>'``.
        """
        bound = self._bound
        if bound is None:
            bound = self._bind(runner)
        update_info, update_scalar, get_lr, plain_wrapper = bound
        # Counted here rather than read through runner.iter (two property calls): a
        # training loop calls this stage once per iteration and advances iter by one.
        # The runner's count is read again at the start of every epoch.
        iteration = self._next_iter
        if iteration is None:
            iteration = runner.iter
        self._next_iter = iteration + 1
        update_info("iter", iteration)
        if plain_wrapper is not None:
            # One OptimWrapper: 'lr' is its first group's rate, read with no call. A
            # constant rate is recorded once: readers use the latest value.
            lr = plain_wrapper.optimizer.param_groups[0]["lr"]
            if lr != self._last_plain_lr:
                self._last_plain_lr = lr
                update_scalar("train/lr", lr)
            return
        rates = get_lr()  # OptimWrapperDict.get_lr() builds a new dict each call
        # One comparison of the whole dict (no call) covers an iteration where none changed.
        if rates != self._last_rates:
            self._last_rates = rates
            last = self._last_lr
            for name, values in rates.items():
                lr = values[0]
                if last.get(name) != lr:
                    last[name] = lr
                    update_scalar("train/" + name, lr)

    def after_train_iter(
        self,
        runner: Any,
        batch_idx: int,
        data_batch: _DataBatch = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Record every item of ``outputs`` as the scalar ``'train/<key>'``, as given.

        Floats and 0-d tensors are stored without ``.item()``; the hub converts them
        when a log line reads them.
        """
        if outputs is None:
            return
        bound = self._bound
        if bound is None:
            bound = self._bind(runner)
        update_scalar = bound[1]
        for key in outputs:  # not .items(): a call of its own, every iteration
            update_scalar("train/" + key, outputs[key])

    # --- evaluation ------------------------------------------------------------------

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Record each metric as the scalar ``'val/<key>'`` (info when not a scalar)."""
        _record_metrics(runner.message_hub, "val/", metrics)

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Record each metric as the scalar ``'test/<key>'`` (info when not a scalar)."""
        _record_metrics(runner.message_hub, "test/", metrics)

    # --- helpers ---------------------------------------------------------------------

    def _bind(self, runner: Any) -> _Bound:
        hub = runner.message_hub
        optim_wrapper = runner.optim_wrapper
        get_lr = getattr(optim_wrapper, "get_lr", None)
        if not callable(get_lr):
            raise TypeError(
                "runner.optim_wrapper must be an OptimWrapper or OptimWrapperDict with "
                f"get_lr(); got {type(optim_wrapper).__name__}: {optim_wrapper!r:.100}"
            )
        from camshaft.runner.optim import OptimWrapper

        plain = (
            optim_wrapper
            if isinstance(optim_wrapper, OptimWrapper)
            and type(optim_wrapper).get_lr is OptimWrapper.get_lr
            else None
        )
        self._bound = (hub.update_info, hub.update_scalar, get_lr, plain)
        self._last_lr = {}
        self._last_rates = None
        self._last_plain_lr = None
        self._next_iter = None
        return self._bound


def _record_metrics(hub: Any, prefix: str, metrics: Mapping[str, Any] | None) -> None:
    """Put scalar metrics in the hub's scalars, others in its info; none is resumed."""
    if not metrics:
        return
    for key, value in metrics.items():
        if _is_scalar(value):
            hub.update_scalar(prefix + key, value, resumed=False)
        else:
            hub.update_info(prefix + key, value, resumed=False)


def _is_scalar(value: Any) -> bool:
    """Whether ``value`` is a number, or a tensor or array holding exactly one."""
    if isinstance(value, int | float):
        return True
    numel = getattr(value, "numel", None)  # torch.Tensor
    if callable(numel):
        return bool(numel() == 1)
    size = getattr(value, "size", None)  # numpy arrays and scalars
    if isinstance(size, int) and hasattr(value, "dtype"):
        return size == 1
    return False


def _cfg_text(cfg: Any) -> str:
    """The config as text: ``pretty_text`` for a Config, ``str`` otherwise, '' for None."""
    if cfg is None:
        return ""
    text = getattr(cfg, "pretty_text", None)
    return text if isinstance(text, str) else str(cfg)
