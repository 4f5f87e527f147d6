"""EMAHook: keep a weight average of the model and validate, test and publish with it.

The hook builds an averaged model (:class:`~camshaft.model.ExponentialMovingAverage`
by default, any ``BaseAveragedModel`` registered in ``MODELS``) around
``runner.unwrapped_model`` and folds the live weights into it after every training
iteration. Validation and test run on the averaged weights: they are swapped into the
model before the epoch and swapped out after it, so training goes on from its own
weights, bit for bit.

Checkpoint scheme (MMEngine's, so checkpoints move between the two):

* ``checkpoint['state_dict']`` holds the averaged weights under the model's own keys:
  it is what a user evaluates or deploys, with no EMA-specific loading code.
* ``checkpoint['ema_state_dict']`` is the averaged model's ``state_dict`` with every
  ``'module.<key>'`` entry exchanged for the live model's ``<key>``: ``'steps'`` (the
  update count) plus the *training* weights. Exchanging the ``module.`` entries of the
  two dicts back gives the live ``state_dict`` and the averaged model's ``state_dict``.
* Buffers that the average does not average (``update_buffers=False``: the average
  copies them from the model at every update) are saved as the live buffers in both
  places, so the evaluated checkpoint carries the same buffers validation used.

Loading (``after_load_checkpoint``) undoes the exchange in the checkpoint dict,
restores the averaged model and copies the training weights back into the model, so
resuming continues both exactly. A checkpoint without ``'ema_state_dict'`` starts the
average from the weights just loaded into the model, with a warning. torch and
camshaft.model are imported on first use, so importing the hooks stays cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from camshaft.runner._registry import HOOKS
from camshaft.runner.hooks._hook import Hook, _DataBatch

if TYPE_CHECKING:
    import torch
    from torch import nn

    from camshaft.model import BaseAveragedModel

__all__ = ["EMAHook"]

_PREFIX = "module."
_Pairs = list[tuple["torch.Tensor", "torch.Tensor"]]


@HOOKS.register_module()
class EMAHook(Hook):
    """Average the model's weights during training; validate, test and save the average.

    Args:
        ema_type: The averaged model to build: a name registered in
            ``camshaft.model.MODELS`` or the class itself. Defaults to
            ``'ExponentialMovingAverage'``.
        strict_load: Require the keys of a loaded ``'ema_state_dict'`` to match the
            averaged model (and the training weights in it to match the model)
            exactly. Defaults to True.
        begin_iter: Average from this training iteration on (the update after
            iteration ``begin_iter - 1``); before it the average just copies the
            model. Defaults to 0.
        begin_epoch: Average from this epoch on (0-based); before it the average just
            copies the model. Only one of ``begin_iter`` and ``begin_epoch`` may be
            set. Defaults to 0.
        **ema_kwargs: Passed to the averaged model (``momentum``, ``interval``,
            ``device``, ``update_buffers``, ``gamma`` ...).

    Raises:
        TypeError: An argument has the wrong type, or ``ema_kwargs`` holds
            ``model`` (the hook passes ``runner.unwrapped_model``).
        ValueError: ``begin_iter`` or ``begin_epoch`` is negative, or both are set.

    Example:
        >>> hook = EMAHook(momentum=0.001, begin_epoch=1)
        >>> hook.ema_cfg
        {'type': 'ExponentialMovingAverage', 'momentum': 0.001}

        In a config: ``custom_hooks = [dict(type='EMAHook', momentum=0.0002)]``.
    """

    priority = "NORMAL"

    def __init__(
        self,
        ema_type: str | type = "ExponentialMovingAverage",
        strict_load: bool = True,
        begin_iter: int = 0,
        begin_epoch: int = 0,
        **ema_kwargs: Any,
    ) -> None:
        if not isinstance(ema_type, str | type):
            raise TypeError(
                "EMAHook: `ema_type` must be the name of an averaged model registered in "
                "camshaft.model.MODELS (e.g. 'ExponentialMovingAverage') or the class, "
                f"got {type(ema_type).__name__} {ema_type!r}"
            )
        if not isinstance(strict_load, bool):
            raise TypeError(
                f"EMAHook: `strict_load` must be a bool, got {type(strict_load).__name__} "
                f"{strict_load!r}"
            )
        _check_begin("begin_iter", begin_iter)
        _check_begin("begin_epoch", begin_epoch)
        if begin_iter and begin_epoch:
            raise ValueError(
                f"EMAHook: set `begin_iter` or `begin_epoch`, not both; got "
                f"begin_iter={begin_iter} and begin_epoch={begin_epoch}"
            )
        if "model" in ema_kwargs:
            raise TypeError(
                "EMAHook: do not pass `model`; the hook averages runner.unwrapped_model"
            )
        self.ema_cfg: dict[str, Any] = dict(type=ema_type, **ema_kwargs)
        self.strict_load = strict_load
        self.begin_iter = begin_iter
        self.begin_epoch = begin_epoch
        self.enabled_by_epoch = begin_epoch > 0
        self.ema_model: BaseAveragedModel | None = None
        self.src_model: nn.Module | None = None
        self._swapped = False  # True while the model holds the averaged weights
        self._warned_no_ema = False
        self._copy_pairs: _Pairs | None = None  # every param and buffer: (averaged, live)
        self._swap_pairs: _Pairs | None = None  # what validation swaps: (averaged, live)

    # --- building ------------------------------------------------------------------

    def before_run(self, runner: Any) -> None:
        """Build the averaged model around ``runner.unwrapped_model``.

        A second call for the same model (``runner.test()`` after ``train()``) keeps
        the average built by the first.

        Raises:
            camshaft.registry.RegistryError: ``ema_type`` names no registered model.
            TypeError: ``ema_type`` built something that is not a ``BaseAveragedModel``.
        """
        self._ensure_built(runner)

    def _ensure_built(self, runner: Any) -> BaseAveragedModel:
        model = runner.unwrapped_model
        if self.ema_model is not None and self.src_model is model:
            return self.ema_model
        from camshaft.model import MODELS, BaseAveragedModel

        ema_model = MODELS.build(dict(self.ema_cfg), default_args=dict(model=model))
        if not isinstance(ema_model, BaseAveragedModel):
            raise TypeError(
                f"EMAHook: `ema_type`={self.ema_cfg['type']!r} built a "
                f"{type(ema_model).__name__}; expected a camshaft.model.BaseAveragedModel "
                "subclass such as 'ExponentialMovingAverage'"
            )
        self.ema_model, self.src_model = ema_model, model
        self._swapped = False
        self._copy_pairs = _match(ema_model.module, model, buffers=True)
        self._swap_pairs = _match(ema_model.module, model, buffers=ema_model.update_buffers)
        return ema_model

    def before_train(self, runner: Any) -> None:
        """Refuse a ``begin_iter`` / ``begin_epoch`` that the run never reaches.

        Raises:
            ValueError: ``begin_iter > runner.max_iters``, or, in an epoch-based run,
                ``begin_epoch > runner.max_epochs``.
        """
        self._ensure_built(runner)
        if self.enabled_by_epoch:
            if runner.train_loop.by_epoch and self.begin_epoch > runner.max_epochs:
                raise ValueError(
                    f"EMAHook: `begin_epoch` must be <= max_epochs ({runner.max_epochs}), "
                    f"got {self.begin_epoch}; the average would never start"
                )
        elif self.begin_iter > runner.max_iters:
            raise ValueError(
                f"EMAHook: `begin_iter` must be <= max_iters ({runner.max_iters}), got "
                f"{self.begin_iter}; the average would never start"
            )

    # --- training ------------------------------------------------------------------

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: _DataBatch = None, outputs: Any = None
    ) -> None:
        """Fold the live weights into the average, or copy them before it begins."""
        ema_model = self.ema_model
        if ema_model is None:
            ema_model = self._ensure_built(runner)
        if runner.iter + 1 >= self.begin_iter and runner.epoch >= self.begin_epoch:
            ema_model.update_parameters(self.src_model)  # type: ignore[arg-type]
        else:
            self._copy_live_into_average()

    def _copy_live_into_average(self) -> None:
        import torch

        assert self._copy_pairs is not None
        with torch.no_grad():
            for averaged, live in self._copy_pairs:
                averaged.copy_(live)

    # --- validation and test: run on the averaged weights ---------------------------

    def before_val_epoch(self, runner: Any) -> None:
        """Swap the averaged weights into the model for validation."""
        self._swap_in(runner)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Swap the training weights back into the model."""
        self._swap_out()

    def before_test_epoch(self, runner: Any) -> None:
        """Swap the averaged weights into the model for testing."""
        self._swap_in(runner)

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Swap the training weights back into the model."""
        self._swap_out()

    def _swap_in(self, runner: Any) -> None:
        self._ensure_built(runner)
        if not self._swapped:
            self._swap()

    def _swap_out(self) -> None:
        if self._swapped:
            self._swap()

    def _swap(self) -> None:
        """Exchange the values of the averaged and the live tensors (exact: copies only).

        Parameters always; buffers only when the average averages them
        (``update_buffers=True``). Otherwise the average's buffers are mere copies of
        the model's, and the model keeps its own (e.g. freshly synchronised ones).
        """
        import torch

        assert self._swap_pairs is not None
        with torch.no_grad():
            for averaged, live in self._swap_pairs:
                saved = live.detach().clone()
                live.copy_(averaged)
                averaged.copy_(saved)
        self._swapped = not self._swapped

    # --- checkpoints ---------------------------------------------------------------

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Put the averaged weights in ``'state_dict'`` and the rest in ``'ema_state_dict'``.

        See the module docstring for the scheme.

        Raises:
            KeyError: ``checkpoint['state_dict']`` is missing or lacks keys of the
                averaged model (it must be ``runner.unwrapped_model``'s state dict).
        """
        ema_model = self._ensure_built(runner)
        state = _state_dict_of(checkpoint)
        ema_state = ema_model.state_dict()
        names = _paired_names(ema_state, state, "before_save_checkpoint")
        copied = set() if ema_model.update_buffers else _buffer_names(ema_model.module)
        for name in names:
            key = _PREFIX + name
            if name in copied:
                ema_state[key] = state[name]  # the live buffer, in both places
            elif not self._swapped:
                ema_state[key], state[name] = state[name], ema_state[key]
            # While swapped (a save during validation) the model already holds the
            # averaged weights and the average the live ones: nothing to exchange.
        checkpoint["ema_state_dict"] = ema_state

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Restore the average and give the model its training weights back.

        With ``'ema_state_dict'`` in ``checkpoint``: the exchange made at save time is
        undone in the dict (afterwards ``checkpoint['state_dict']`` holds the live
        weights), the averaged model loads its state, and the live weights are loaded
        into ``runner.unwrapped_model``. Without it: a warning (once), and the average
        restarts from the model's current (just loaded) weights.

        Raises:
            KeyError: ``checkpoint['state_dict']`` is missing or lacks keys that
                ``'ema_state_dict'`` has.
            RuntimeError: With ``strict_load``, keys do not match the averaged model or
                the model; in any mode, shapes differ. Nothing is changed then.
        """
        ema_model = self._ensure_built(runner)
        ema_state = checkpoint.get("ema_state_dict")
        if ema_state is None:
            if not self._warned_no_ema:
                warnings.warn(
                    "EMAHook: the checkpoint has no 'ema_state_dict' (saved without "
                    "EMAHook?); the average starts from the loaded model weights",
                    UserWarning,
                    stacklevel=2,
                )
                self._warned_no_ema = True
            self._copy_live_into_average()
            self._swapped = False
            return
        if not isinstance(ema_state, MutableMapping):
            raise TypeError(
                "EMAHook: checkpoint['ema_state_dict'] must be a state dict, got "
                f"{type(ema_state).__name__}"
            )
        state = _state_dict_of(checkpoint)
        names = _paired_names(ema_state, state, "after_load_checkpoint")
        restored = dict(ema_state)
        restored.update({_PREFIX + name: state[name] for name in names})
        live = {name: ema_state[_PREFIX + name] for name in names}
        model = self.src_model
        assert model is not None
        _check_loadable(ema_model, restored, self.strict_load, "the averaged model")
        _check_loadable(model, live, self.strict_load, "runner.unwrapped_model")
        for name in names:  # undo the exchange in the checkpoint dict itself
            key = _PREFIX + name
            ema_state[key], state[name] = state[name], ema_state[key]
        ema_model.load_state_dict(ema_state, strict=self.strict_load)
        model.load_state_dict(live, strict=self.strict_load)
        self._swapped = False  # both sides were just overwritten


def _check_begin(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"EMAHook: `{name}` must be an int >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"EMAHook: `{name}` must be an int >= 0, got {value}")


def _match(averaged: nn.Module, live: nn.Module, buffers: bool) -> _Pairs:
    """Pair the averaged copy's tensors with the live model's, by name."""
    mine: dict[str, torch.Tensor] = dict(averaged.named_parameters())
    theirs: dict[str, torch.Tensor] = dict(live.named_parameters())
    if buffers:
        mine.update(averaged.named_buffers())
        theirs.update(live.named_buffers())
    if mine.keys() != theirs.keys():
        raise ValueError(
            "EMAHook: runner.unwrapped_model no longer matches the averaged model: "
            f"missing {sorted(mine.keys() - theirs.keys())[:5]}, unexpected "
            f"{sorted(theirs.keys() - mine.keys())[:5]}"
        )
    return [(tensor, theirs[name]) for name, tensor in mine.items()]


def _buffer_names(module: nn.Module) -> set[str]:
    return {name for name, _ in module.named_buffers()}


def _state_dict_of(checkpoint: Mapping[str, Any]) -> MutableMapping[str, Any]:
    state = checkpoint.get("state_dict")
    if not isinstance(state, MutableMapping):
        raise KeyError(
            "EMAHook: checkpoint['state_dict'] must be the model's state dict, got "
            f"{'nothing' if state is None else type(state).__name__}"
        )
    return state


def _paired_names(ema_state: Mapping[str, Any], state: Mapping[str, Any], stage: str) -> list[str]:
    """The model keys behind the ``module.*`` keys of ``ema_state``; all must be in ``state``."""
    names = [key[len(_PREFIX) :] for key in ema_state if key.startswith(_PREFIX)]
    missing = [name for name in names if name not in state]
    if missing:
        raise KeyError(
            f"EMAHook.{stage}: checkpoint['state_dict'] lacks {len(missing)} key(s) of the "
            f"averaged model, e.g. {missing[:5]}; expected the state dict of "
            "runner.unwrapped_model (no 'module.' prefix). Nothing was changed."
        )
    return names


def _check_loadable(module: nn.Module, given: Mapping[str, Any], strict: bool, what: str) -> None:
    """Raise before loading when ``given`` cannot load into ``module`` in full."""
    expected = module.state_dict()
    problems: list[str] = []
    if strict:
        missing = sorted(expected.keys() - given.keys())
        unexpected = sorted(given.keys() - expected.keys())
        if missing:
            problems.append(f"missing keys {missing[:5]}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected[:5]}")
    for key, value in given.items():
        target = expected.get(key)
        shape = getattr(value, "shape", None)
        if target is not None and shape is not None and shape != target.shape:
            problems.append(
                f"{key}: shape {tuple(shape)} in the checkpoint, {tuple(target.shape)} here"
            )
    if problems:
        raise RuntimeError(
            f"EMAHook.after_load_checkpoint: the checkpoint does not fit {what}: "
            + "; ".join(problems[:8])
            + ". Nothing was loaded (strict_load=False tolerates key mismatches)."
        )
