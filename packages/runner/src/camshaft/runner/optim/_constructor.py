"""``DefaultOptimWrapperConstructor``: a wrapper from a config, with per-parameter options.

``optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, weight_decay=1e-4), ...)``
names the optimizer and the wrapper; ``paramwise_cfg`` splits the parameters into
groups with their own learning rate and weight decay. The rules, in the order they
are applied to each parameter (``name`` is its full dotted name, as
``model.named_parameters()`` spells it):

1. A frozen parameter (``requires_grad=False``) gets a group with no options.
2. ``custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=0.5), ...}``: the longest key
   that is a substring of ``name`` wins (ties: the alphabetically first); its
   ``lr_mult``/``decay_mult`` multiply the optimizer's ``lr``/``weight_decay``, every
   entry of its dict is copied into the group (so the group records ``lr_mult``), and
   rules 3-4 are skipped for the parameter.
3. Learning rate: ``bias_lr_mult`` for every ``bias`` outside normalization layers and
   deformable convs; ``dcn_offset_lr_mult`` for the offset convs of deformable convs.
4. Weight decay, first match only: ``norm_decay_mult`` (parameters of normalization
   layers), ``bias_decay_mult`` (other biases), ``dwconv_decay_mult`` (depth-wise
   ``Conv2d``), ``flat_decay_mult`` (any other one-dimensional parameter).
5. ``bypass_duplicate=True`` drops a parameter already placed in a group (shared
   weights); otherwise torch refuses a parameter that appears twice.

These are MMEngine's rules and keys. Differences: a custom key is matched against the
full name (MMEngine prepends a dot to the names of the root module's own
parameters); ``nn.RMSNorm`` counts as a normalization layer; deformable convs are
recognised by class name (``DeformConv2d``, ``ModulatedDeformConv2d`` and their
subclasses), so mmcv need not be importable; a custom key that matches no parameter
is warned about, and an unknown ``paramwise_cfg`` option or a multiplier without the
``lr``/``weight_decay`` it multiplies is an error.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from camshaft.registry import RegistryError
from camshaft.runner._registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from camshaft.runner.optim._optim_wrapper import OptimWrapper

__all__ = ["DefaultOptimWrapperConstructor"]

_logger = logging.getLogger(__name__)

_NORM_LAYERS: tuple[type[nn.Module], ...] = (
    _BatchNorm,
    _InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_DCN_NAMES = frozenset({"DeformConv2d", "ModulatedDeformConv2d"})
_LR_MULTS = ("bias_lr_mult", "dcn_offset_lr_mult")
_DECAY_MULTS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult", "flat_decay_mult")
_OPTIONS = ("custom_keys", *_LR_MULTS, *_DECAY_MULTS, "bypass_duplicate")


def _is_dcn(module: nn.Module) -> bool:
    return any(cls.__name__ in _DCN_NAMES for cls in type(module).__mro__)


def _check_mult(value: object, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{where}` must be a number >= 0, got {value!r}.")


def _first_argument(cls: Any) -> str:
    """The name of the optimizer's first argument (``params`` for torch's).

    Remembered per class: ``inspect.signature`` costs some 200 calls. The answer is
    keyed by the class's ``__init__`` and ``__new__`` too, so a class patched since is
    inspected afresh.
    """
    try:
        return _signature_first_argument(cls, cls.__init__, cls.__new__)
    except TypeError:  # an unhashable callable: inspect it each time
        return _signature_first_argument.__wrapped__(cls, cls.__init__, cls.__new__)


@functools.lru_cache(maxsize=64)
def _signature_first_argument(cls: Any, init: object, new: object) -> str:
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return "params"
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if parameters and parameters[0].kind in keyword_kinds:
        return parameters[0].name
    return "params"


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DefaultOptimWrapperConstructor:
    """Build an optimizer and its wrapper for a model, applying ``paramwise_cfg``.

    The module docstring states the per-parameter rules.

    Args:
        optim_wrapper_cfg: The wrapper config: ``optimizer=dict(type=..., lr=...)``
            (``type`` a name in ``OPTIMIZERS`` or the class), an optional wrapper
            ``type`` (default ``'OptimWrapper'``) and the wrapper's arguments
            (``accumulative_counts``, ``clip_grad``, ...). Not modified.
        paramwise_cfg: Per-parameter options (see the module docstring), or None.
            May also be given as ``optim_wrapper_cfg['paramwise_cfg']``.

    Raises:
        TypeError: a config is not a dict, or ``optimizer.type`` is neither a name
            nor a class.
        ValueError: ``optimizer`` is missing or holds ``params``, an option is
            unknown or out of range, or a multiplier lacks the ``lr`` or
            ``weight_decay`` it multiplies.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
        >>> constructor = DefaultOptimWrapperConstructor(
        ...     dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4)),
        ...     paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={'0.': dict(lr_mult=0.5)}))
        >>> optim_wrapper = constructor(model)
        >>> [group['lr'] for group in optim_wrapper.param_groups]
        [0.05, 0.05, 0.1, 0.1]
    """

    def __init__(
        self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(optim_wrapper_cfg, Mapping):
            raise TypeError(
                f"`optim_wrapper_cfg` must be a dict, got {type(optim_wrapper_cfg).__name__}: "
                f"{optim_wrapper_cfg!r:.200}."
            )
        self.optim_wrapper_cfg: dict[str, Any] = dict(optim_wrapper_cfg)
        if "paramwise_cfg" in self.optim_wrapper_cfg:
            if paramwise_cfg is not None:
                raise ValueError(
                    "`paramwise_cfg` is given twice: as an argument and inside "
                    "`optim_wrapper_cfg`; keep one."
                )
            paramwise_cfg = self.optim_wrapper_cfg.pop("paramwise_cfg")
        optimizer_cfg = self.optim_wrapper_cfg.pop("optimizer", None)
        if not isinstance(optimizer_cfg, Mapping) or "type" not in optimizer_cfg:
            raise ValueError(
                f"`optim_wrapper` needs an 'optimizer' dict with a 'type', got "
                f"optimizer={optimizer_cfg!r:.200}. Example: "
                "optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))."
            )
        if "params" in optimizer_cfg:
            raise ValueError(
                "`optim_wrapper.optimizer` must not set 'params': the constructor takes them "
                "from the model (use `paramwise_cfg` to give groups their own options)."
            )
        optimizer_type = optimizer_cfg["type"]
        if not isinstance(optimizer_type, str) and not callable(optimizer_type):
            raise TypeError(
                f"`optim_wrapper.optimizer.type` must be a registered name or an optimizer "
                f"class, got {type(optimizer_type).__name__}: {optimizer_type!r}."
            )
        self.optimizer_cfg: dict[str, Any] = dict(optimizer_cfg)
        if paramwise_cfg is not None and not isinstance(paramwise_cfg, Mapping):
            raise TypeError(
                f"`paramwise_cfg` must be a dict or None, got {type(paramwise_cfg).__name__}: "
                f"{paramwise_cfg!r:.200}."
            )
        self.paramwise_cfg: dict[str, Any] = {} if paramwise_cfg is None else dict(paramwise_cfg)
        self.base_lr: Any = self.optimizer_cfg.get("lr")
        self.base_wd: Any = self.optimizer_cfg.get("weight_decay")
        self._validate_cfg()

    def _validate_cfg(self) -> None:
        """Check ``paramwise_cfg`` against the optimizer config (see class Raises)."""
        cfg = self.paramwise_cfg
        if type(self) is DefaultOptimWrapperConstructor:  # subclasses may add options
            for key in cfg:
                if key not in _OPTIONS:
                    close = difflib.get_close_matches(str(key), _OPTIONS, n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ValueError(
                        f"`paramwise_cfg` has an unknown option {key!r}; known options are "
                        f"{list(_OPTIONS)}.{hint}"
                    )
        custom_keys = cfg.get("custom_keys", {})
        if not isinstance(custom_keys, Mapping):
            raise TypeError(
                f"`paramwise_cfg.custom_keys` must be a dict of name -> options, got "
                f"{custom_keys!r:.200}. Example: custom_keys={{'backbone': dict(lr_mult=0.1)}}."
            )
        lr_users = [key for key in _LR_MULTS if cfg.get(key) is not None]
        decay_users = [key for key in _DECAY_MULTS if cfg.get(key) is not None]
        for key, options in custom_keys.items():
            if not isinstance(key, str) or not isinstance(options, Mapping):
                raise TypeError(
                    f"`paramwise_cfg.custom_keys` must map str to dict, got {key!r}: "
                    f"{options!r:.200}. Example: custom_keys={{'backbone': dict(lr_mult=0.1)}}."
                )
            for mult in ("lr_mult", "decay_mult"):
                if mult in options:
                    _check_mult(options[mult], f"paramwise_cfg.custom_keys[{key!r}].{mult}")
            if "lr_mult" in options:
                lr_users.append(f"custom_keys[{key!r}].lr_mult")
            if "decay_mult" in options:
                decay_users.append(f"custom_keys[{key!r}].decay_mult")
        for key in (*_LR_MULTS, *_DECAY_MULTS):
            if cfg.get(key) is not None:
                _check_mult(cfg[key], f"paramwise_cfg.{key}")
        if not isinstance(cfg.get("bypass_duplicate", False), bool):
            raise TypeError(
                f"`paramwise_cfg.bypass_duplicate` must be a bool, got {cfg['bypass_duplicate']!r}."
            )
        checks = ((lr_users, self.base_lr, "lr"), (decay_users, self.base_wd, "weight_decay"))
        for users, base, name in checks:
            if users and base is None:
                raise ValueError(
                    f"`paramwise_cfg` option {users[0]} multiplies the optimizer's {name}, but "
                    f"`optim_wrapper.optimizer` sets no {name!r}; set it explicitly, e.g. "
                    f"optimizer=dict(type={self.optimizer_cfg['type']!r}, {name}=...)."
                )

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer for ``model``'s parameters and wrap it.

        Args:
            model: The model (a DDP-style wrapper is unwrapped through ``.module``).

        Returns:
            The wrapper named by ``optim_wrapper_cfg['type']`` (default ``OptimWrapper``).

        Raises:
            TypeError: ``model`` is not an ``nn.Module``.
            RegistryError: the optimizer or wrapper ``type`` is not registered; the
                message lists the closest registered names.
            BuildError: the optimizer or the wrapper rejected its arguments.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}.")
        inner = getattr(model, "module", None)
        module = inner if isinstance(inner, nn.Module) else model
        optimizer_cls = self._optimizer_class()
        params: list[Any]
        if self.paramwise_cfg:
            params = []
            self.add_params(params, module)
            self._warn_unmatched_keys(module)
        else:
            params = list(module.parameters())
        optimizer_cfg = {**self.optimizer_cfg, "type": optimizer_cls}
        optimizer_cfg[_first_argument(optimizer_cls)] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault("type", "OptimWrapper")
        wrapper: OptimWrapper = OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args={"optimizer": optimizer}
        )
        return wrapper

    def _optimizer_class(self) -> Any:
        """Resolve ``optimizer.type`` to a class, with the closest names when unknown."""
        optimizer_type = self.optimizer_cfg["type"]
        if not isinstance(optimizer_type, str):
            return optimizer_type  # a class (checked in __init__)
        with OPTIMIZERS.switch_scope_and_registry(None) as registry:
            found = registry.get(optimizer_type)
            if found is not None:
                return found
            names: list[str] = []
            searched: list[str] = []
            current: Any = registry
            while current is not None:
                names.extend(current.module_dict)
                searched.append(repr(current.scope))
                current = current.parent
        close = difflib.get_close_matches(optimizer_type, names, n=5) or difflib.get_close_matches(
            optimizer_type.lower(), [name.lower() for name in names], n=5
        )
        closest = f" Closest registered names: {', '.join(map(repr, close))}." if close else ""
        raise RegistryError(
            f"`optim_wrapper.optimizer.type` {optimizer_type!r} is not a registered optimizer "
            f"(registry 'optimizer', scopes searched: {', '.join(searched)}).{closest} "
            "torch.optim's optimizers are registered by class name; register your own with "
            "@OPTIMIZERS.register_module(), or pass the class itself as type=."
        )

    def add_params(
        self,
        params: list[dict[str, Any]],
        module: nn.Module,
        prefix: str = "",
        is_dcn_module: bool | None = None,
    ) -> None:
        """Append one param group per parameter of ``module`` (recursively) to ``params``.

        Args:
            params: The param groups built so far; extended in place.
            module: The module whose parameters are added.
            prefix: ``module``'s dotted name in the model ('' for the model itself).
            is_dcn_module: Whether ``module`` is a child of a deformable conv.
        """
        seen = {id(param) for group in params for param in group["params"]}
        self._add_params(params, module, prefix, bool(is_dcn_module), seen)

    def _add_params(
        self,
        params: list[dict[str, Any]],
        module: nn.Module,
        prefix: str,
        in_dcn: bool,
        seen: set[int],
    ) -> None:
        cfg = self.paramwise_cfg
        custom_keys: Mapping[str, Mapping[str, Any]] = cfg.get("custom_keys", {})
        ordered_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        is_norm = isinstance(module, _NORM_LAYERS)
        is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
        for name, param in module.named_parameters(recurse=False):
            full_name = f"{prefix}.{name}" if prefix else name
            if id(param) in seen and cfg.get("bypass_duplicate", False):
                warnings.warn(
                    f"{full_name} is the same parameter as one already added; skipped "
                    "because paramwise_cfg.bypass_duplicate=True.",
                    stacklevel=3,
                )
                continue
            seen.add(id(param))
            group: dict[str, Any] = {"params": [param]}
            params.append(group)
            if not param.requires_grad:
                continue
            key = next((key for key in ordered_keys if key in full_name), None)
            if key is not None:
                options = custom_keys[key]
                if "lr_mult" in options:
                    group["lr"] = self.base_lr * options["lr_mult"]
                if "decay_mult" in options and self.base_wd is not None:
                    group["weight_decay"] = self.base_wd * options["decay_mult"]
                group.update(options)
            else:
                self._apply_rules(group, module, name, param, prefix, in_dcn, is_norm, is_dwconv)
            if _logger.isEnabledFor(logging.DEBUG):
                options_text = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
                _logger.debug("paramwise_options -- %s: %s", full_name, options_text or "default")
        child_in_dcn = _is_dcn(module)
        for child_name, child in module.named_children():
            child_prefix = f"{prefix}.{child_name}" if prefix else child_name
            self._add_params(params, child, child_prefix, child_in_dcn, seen)

    def _apply_rules(
        self,
        group: dict[str, Any],
        module: nn.Module,
        name: str,
        param: torch.Tensor,
        prefix: str,
        in_dcn: bool,
        is_norm: bool,
        is_dwconv: bool,
    ) -> None:
        """Rules 3-4 of the module docstring, for a parameter no custom key matched."""
        cfg = self.paramwise_cfg
        bias_lr_mult = cfg.get("bias_lr_mult")
        if name == "bias" and not (is_norm or in_dcn) and bias_lr_mult is not None:
            group["lr"] = self.base_lr * bias_lr_mult
        offset_mult = cfg.get("dcn_offset_lr_mult")
        if (
            offset_mult is not None
            and in_dcn
            and "conv_offset" in prefix
            and isinstance(module, nn.Conv2d)
        ):
            group["lr"] = self.base_lr * offset_mult
        if self.base_wd is None:
            return
        norm_mult, bias_mult = cfg.get("norm_decay_mult"), cfg.get("bias_decay_mult")
        dwconv_mult, flat_mult = cfg.get("dwconv_decay_mult"), cfg.get("flat_decay_mult")
        if is_norm and norm_mult is not None:
            group["weight_decay"] = self.base_wd * norm_mult
        elif name == "bias" and not in_dcn and bias_mult is not None:
            group["weight_decay"] = self.base_wd * bias_mult
        elif is_dwconv and dwconv_mult is not None:
            group["weight_decay"] = self.base_wd * dwconv_mult
        elif param.ndim == 1 and not in_dcn and flat_mult is not None:
            group["weight_decay"] = self.base_wd * flat_mult

    def _warn_unmatched_keys(self, module: nn.Module) -> None:
        """Warn about each ``custom_keys`` entry that is in no parameter's name."""
        custom_keys = self.paramwise_cfg.get("custom_keys", {})
        names = [name for name, _ in module.named_parameters(remove_duplicate=False)]
        for key in custom_keys:
            if any(key in name for name in names):
                continue
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.4)
            hint = f" Closest parameter names: {', '.join(map(repr, close))}." if close else ""
            warnings.warn(
                f"paramwise_cfg.custom_keys[{key!r}] matches no parameter of "
                f"{type(module).__name__}, so it changes nothing. Keys are matched as "
                f"substrings of the full parameter names (model.named_parameters()).{hint}",
                stacklevel=3,
            )
