"""Load a state dict into a module: all or nothing per tensor, one report for every problem.

The rules :func:`load_state_dict` obeys:

* Every problem is found *before* anything is copied: keys the model has and the
  checkpoint lacks (missing), keys the checkpoint has and the model lacks
  (unexpected), and tensors whose shape differs (mismatched). They are reported
  together in one readable message, never one at a time.
* ``strict=True`` with any problem raises :class:`CheckpointError` with that report
  and loads nothing. Otherwise the report is a warning and every matching tensor is
  loaded; a mismatched tensor is skipped whole, never half-copied.
* Tensors on the ``meta`` device are *assigned* (``assign=True`` semantics, cast to
  the model's dtype): a model built under ``torch.device("meta")`` takes the
  checkpoint's (memory-mapped) tensors without a second allocation. Every other
  tensor is copied in place, so the parameter objects an optimizer holds stay valid.
* ``num_batches_tracked`` buffers of batch norms are not reported missing (old
  checkpoints lack them; MMEngine ignores them too).

The copying itself is done by ``nn.Module.load_state_dict``, so modules that
customise ``_load_from_state_dict`` or register load hooks behave as with plain torch.
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from camshaft.init._errors import CheckpointError

__all__ = ["IncompatibleKeys", "load_state_dict"]

_SHOWN = 20  # keys listed per section before "... and N more"


@dataclass
class IncompatibleKeys:
    """What :func:`load_state_dict` loaded, and what did not fit.

    Attributes:
        missing_keys: In the model, not in the state dict; left unchanged.
        unexpected_keys: In the state dict, not in the model; ignored.
        mismatched_keys: ``(key, checkpoint_shape, model_shape)`` for tensors whose
            shapes differ, left unchanged. ``checkpoint_shape`` is None when the
            checkpoint holds something that is not a tensor under that key.
        loaded_keys: Keys whose values were loaded into the model.
    """

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple[int, ...] | None, tuple[int, ...]]] = field(
        default_factory=list
    )
    loaded_keys: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        """True when nothing was missing, unexpected or mismatched."""
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_keys)

    def report(self) -> str:
        """The problems as indented sections, or ``""`` when there are none."""
        lines: list[str] = []
        if self.missing_keys:
            lines.append(
                f"missing keys ({len(self.missing_keys)}; in the model, not in the "
                "checkpoint; left unchanged):"
            )
            lines += _listing(self.missing_keys)
        if self.unexpected_keys:
            lines.append(
                f"unexpected keys ({len(self.unexpected_keys)}; in the checkpoint, not in "
                "the model; ignored):"
            )
            lines += _listing(self.unexpected_keys)
        if self.mismatched_keys:
            lines.append(
                f"shape mismatches ({len(self.mismatched_keys)}; skipped, the model's "
                "tensors left unchanged):"
            )
            lines += _listing([_describe_mismatch(*item) for item in self.mismatched_keys])
        return "\n".join(lines)


def load_state_dict(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    strict: bool = False,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None = None,
) -> IncompatibleKeys:
    """Load ``state_dict`` into ``module``, reporting every mismatch at once.

    Args:
        module: The module to load into.
        state_dict: Keys as ``module.state_dict()`` names them; a ``_metadata``
            attribute (as torch writes) is honoured.
        strict: Raise instead of warning when anything is missing, unexpected or
            mismatched; nothing is loaded then.
        logger: Where the warning goes: a ``logging.Logger``/``LoggerAdapter``, a
            logger name (``"current"`` means the ``camshaft`` logger, ``"silent"``
            drops the report), or None for ``warnings.warn``.

    Returns:
        What was loaded and what was not.

    Raises:
        TypeError: An argument has the wrong type.
        CheckpointError: ``strict`` and the keys or shapes differ (nothing loaded), or
            torch failed while copying.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> result = load_state_dict(net, {"weight": torch.zeros(2, 2)})
        >>> result.missing_keys
        ['bias']
    """
    return _load_state_dict(module, state_dict, strict, logger, source=None, stacklevel=3)


def _load_state_dict(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    strict: bool,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None,
    source: str | None,
    stacklevel: int,
    on_copied: Callable[[list[torch.Tensor]], object] | None = None,
) -> IncompatibleKeys:
    """:func:`load_state_dict`, naming ``source`` (a file) in the report when given.

    ``stacklevel`` is the caller's depth for ``warnings.warn``, counted from here.
    ``on_copied`` is called with each module's source tensors right after torch has
    copied them in place (not for assigned tensors).
    """
    _check_arguments(module, state_dict, strict, logger)
    result, copy_part, assign_part = _plan(module, state_dict)
    what = f"checkpoint {source!r}" if source else "the state dict"
    report = "" if result.is_clean else result.report() + _no_match_hint(state_dict, result)
    if report and strict:
        raise CheckpointError(
            f"strict=True: nothing was loaded, because {what} does not match "
            f"{type(module).__name__}:\n{report}\nFix: rename checkpoint keys with "
            "revise_keys=[(pattern, replacement)], or pass strict=False to load "
            "the tensors that match."
        )
    metadata = getattr(state_dict, "_metadata", None)
    try:
        # Copy before assign: both passes read the metadata, and each gets its own copy.
        if copy_part:
            handles = _notify_after_copy(module, copy_part, on_copied) if on_copied else []
            try:
                module.load_state_dict(_with_metadata(copy_part, metadata), strict=False)
            finally:
                for handle in handles:
                    handle.remove()
        if assign_part:
            module.load_state_dict(_with_metadata(assign_part, metadata), strict=False, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"loading {what} into {type(module).__name__} failed while copying tensors "
            f"(tensors before the failure were loaded): {exc}"
        ) from exc
    if report:
        _emit(
            f"{what} does not fully match {type(module).__name__}; everything else was "
            f"loaded:\n{report}",
            logger,
            stacklevel + 1,
        )
    return result


def _check_arguments(module: object, state_dict: object, strict: object, logger: object) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"`state_dict` must be a mapping of names to tensors, got {type(state_dict).__name__}"
        )
    if not isinstance(strict, bool):
        raise TypeError(f"`strict` must be a bool, got {strict!r}")
    if logger is not None and not isinstance(logger, str | logging.Logger | logging.LoggerAdapter):
        raise TypeError(
            "`logger` must be a logging.Logger, a LoggerAdapter, a logger name or None, got "
            f"{type(logger).__name__}: {logger!r}"
        )


def _plan(
    module: nn.Module, state_dict: Mapping[str, Any]
) -> tuple[IncompatibleKeys, dict[str, Any], dict[str, Any]]:
    """Sort every key into a problem, a tensor to copy, or a tensor to assign (meta)."""
    own = module.state_dict(keep_vars=True)
    result = IncompatibleKeys()
    copy_part: dict[str, Any] = {}
    assign_part: dict[str, Any] = {}
    for key, value in state_dict.items():
        if key not in own:
            result.unexpected_keys.append(key)
            continue
        target = own[key]
        if isinstance(target, torch.Tensor):
            if not isinstance(value, torch.Tensor):
                result.mismatched_keys.append((key, None, tuple(target.shape)))
                continue
            if not _same_shape(value, target):
                result.mismatched_keys.append((key, tuple(value.shape), tuple(target.shape)))
                continue
            if target.is_meta:
                assign_part[key] = value if value.dtype == target.dtype else value.to(target.dtype)
                result.loaded_keys.append(key)
                continue
        copy_part[key] = value
        result.loaded_keys.append(key)
    result.missing_keys = [
        key for key in own if key not in state_dict and not key.endswith("num_batches_tracked")
    ]
    return result, copy_part, assign_part


def _notify_after_copy(
    module: nn.Module, copy_part: dict[str, Any], on_copied: Callable[[list[torch.Tensor]], object]
) -> list[RemovableHandle]:
    """Temporary post-load hooks calling ``on_copied`` as each module finishes loading.

    torch runs a module's load post-hooks right after the module (and its children)
    has been copied, so the callback sees each module's tensors once they are no
    longer needed, while the rest of the model is still loading.
    """
    sources: dict[int, tuple[nn.Module, list[torch.Tensor]]] = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        head = f"{prefix}." if prefix else ""
        names = [name for name, _ in sub.named_parameters(recurse=False)]
        names += [name for name, _ in sub.named_buffers(recurse=False)]
        found = [copy_part[head + name] for name in names if head + name in copy_part]
        tensors = [t for t in found if isinstance(t, torch.Tensor)]
        if tensors:
            sources.setdefault(id(sub), (sub, []))[1].extend(tensors)

    def hook_for(tensors: list[torch.Tensor]) -> Callable[[nn.Module, Any], None]:
        def hook(_module: nn.Module, _incompatible: Any) -> None:
            on_copied(tensors)

        return hook

    return [
        sub.register_load_state_dict_post_hook(hook_for(tensors))
        for sub, tensors in sources.values()
    ]


def _same_shape(value: torch.Tensor, target: torch.Tensor) -> bool:
    if nn.parameter.is_lazy(target):
        return True
    if target.dim() == 0 and tuple(value.shape) == (1,):  # torch's 0.3 -> 0.4 compatibility
        return True
    return value.shape == target.shape


def _with_metadata(part: dict[str, Any], metadata: Any) -> OrderedDict[str, Any]:
    """``part`` carrying a private copy of ``metadata`` (torch writes into it when assigning)."""
    out: OrderedDict[str, Any] = OrderedDict(part)
    if isinstance(metadata, Mapping):
        copied = OrderedDict(
            (k, dict(v) if isinstance(v, Mapping) else v) for k, v in metadata.items()
        )
        out._metadata = copied  # type: ignore[attr-defined]
    return out


def _no_match_hint(state_dict: Mapping[str, Any], result: IncompatibleKeys) -> str:
    """A hint for the common case where a prefix makes every key miss."""
    if result.loaded_keys or not state_dict or not result.missing_keys:
        return ""
    ckpt_key = next(iter(state_dict))
    model_key = result.missing_keys[0]
    return (
        f"\nNo key matched: the checkpoint has keys like {ckpt_key!r}, the model like "
        f"{model_key!r}. Strip or rename a prefix with revise_keys=[(r'^prefix\\.', '')] "
        "or PretrainedInit(prefix=...)."
    )


def _listing(items: list[str]) -> list[str]:
    shown = [f"    {item}" for item in items[:_SHOWN]]
    if len(items) > _SHOWN:
        shown.append(f"    ... and {len(items) - _SHOWN} more")
    return shown


def _describe_mismatch(
    key: str, checkpoint_shape: tuple[int, ...] | None, model_shape: tuple[int, ...]
) -> str:
    if checkpoint_shape is None:
        return f"{key}: checkpoint holds a non-tensor value, model has shape {list(model_shape)}"
    return f"{key}: checkpoint shape {list(checkpoint_shape)}, model shape {list(model_shape)}"


def _emit(
    message: str,
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None,
    stacklevel: int,
) -> None:
    """Send a warning where ``logger`` says (see :func:`load_state_dict`)."""
    if logger is None:
        warnings.warn(message, UserWarning, stacklevel=stacklevel)
    elif isinstance(logger, str):
        if logger != "silent":
            logging.getLogger("camshaft" if logger == "current" else logger).warning(message)
    else:
        logger.warning(message)
