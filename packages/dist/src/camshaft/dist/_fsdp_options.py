"""Turn the config forms of FSDP options into what FSDP2's ``fully_shard`` takes.

Configs are data, so they name options with strings and dicts; MMEngine configs name
FSDP1's (``sharding_strategy='FULL_SHARD'``, ``mixed_precision=dict(param_dtype=
'bfloat16')``, ``auto_wrap_policy=dict(type='size_based_auto_wrap_policy', ...)``).
FSDP2 has other knobs (``reshard_after_forward``, ``MixedPrecisionPolicy``, calling
``fully_shard`` bottom-up instead of an auto-wrap policy). Each function here maps
one option and refuses, with the reason, what FSDP2 cannot do. ``torch.distributed.fsdp``
is imported inside the functions, never when camshaft.dist is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from torch.distributed.fsdp import MixedPrecisionPolicy, OffloadPolicy

__all__ = [
    "resolve_sharding_strategy",
    "resolve_mixed_precision",
    "resolve_offload",
    "resolve_auto_wrap_policy",
    "resolve_ignored_params",
    "check_backward_prefetch",
    "apply_auto_wrap",
]

_DTYPES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
}
# strategy -> (reshard_after_forward, hybrid); None keeps FSDP2's default, which
# reshards every module but the root, as FSDP1's FULL_SHARD does.
_STRATEGIES: dict[str, tuple[bool | None, bool]] = {
    "FULL_SHARD": (None, False),
    "SHARD_GRAD_OP": (False, False),
    "HYBRID_SHARD": (None, True),
    "_HYBRID_SHARD_ZERO2": (False, True),
}
_POLICY_NAMES = ("size_based", "transformer", "lambda", "module_classes")


def resolve_sharding_strategy(strategy: object) -> tuple[bool | None, bool]:
    """Map an FSDP1 sharding strategy to ``(reshard_after_forward, hybrid)``."""
    if strategy is None:
        return _STRATEGIES["FULL_SHARD"]
    name = getattr(strategy, "name", strategy)  # a torch ShardingStrategy member
    if not isinstance(name, str):
        raise TypeError(
            f"`sharding_strategy` must be a str or torch ShardingStrategy, got {strategy!r}"
        )
    if name.upper() == "NO_SHARD":
        raise ValueError(
            "sharding_strategy='NO_SHARD' replicates every parameter, which is DDP; use "
            "model_wrapper_cfg=dict(type='MMDistributedDataParallel') instead"
        )
    if name.upper() not in _STRATEGIES:
        raise ValueError(f"`sharding_strategy` must be one of {list(_STRATEGIES)}, got {name!r}")
    return _STRATEGIES[name.upper()]


def _dtype(value: object, key: str) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[value.lower().removeprefix("torch.")]
    raise ValueError(
        f"`mixed_precision['{key}']` must be a torch.dtype or one of {sorted(_DTYPES)}, "
        f"got {value!r}"
    )


def resolve_mixed_precision(
    mixed_precision: object,
) -> tuple[MixedPrecisionPolicy | None, torch.dtype | None]:
    """Return ``(mp_policy, buffer_dtype)`` from a str, dict or policy object.

    A str names the parameter dtype. A dict takes ``param_dtype``, ``reduce_dtype``,
    ``output_dtype``, ``cast_forward_inputs`` and FSDP1's ``buffer_dtype`` (FSDP2
    does not cast buffers, so the caller casts them once, before sharding).
    """
    from torch.distributed.fsdp import MixedPrecision, MixedPrecisionPolicy

    if mixed_precision is None:
        return None, None
    if isinstance(mixed_precision, MixedPrecisionPolicy):
        return mixed_precision, None
    if isinstance(mixed_precision, str):
        return MixedPrecisionPolicy(param_dtype=_dtype(mixed_precision, "param_dtype")), None
    if isinstance(mixed_precision, MixedPrecision):  # FSDP1's dataclass
        mixed_precision = {
            "param_dtype": mixed_precision.param_dtype,
            "reduce_dtype": mixed_precision.reduce_dtype,
            "buffer_dtype": mixed_precision.buffer_dtype,
        }
    if not isinstance(mixed_precision, dict):
        raise TypeError(
            "`mixed_precision` must be None, a dtype name, a dict such as "
            "dict(param_dtype='bfloat16', reduce_dtype='float32'), or a "
            f"MixedPrecisionPolicy, got {type(mixed_precision).__name__}"
        )
    allowed = {"param_dtype", "reduce_dtype", "output_dtype", "buffer_dtype", "cast_forward_inputs"}
    unknown = sorted(set(mixed_precision) - allowed)
    if unknown:
        raise ValueError(
            f"`mixed_precision` has keys FSDP2 does not support: {unknown}; allowed: "
            f"{sorted(allowed)}"
        )
    dtypes = {
        key: _dtype(mixed_precision.get(key), key) for key in allowed - {"cast_forward_inputs"}
    }
    policy = MixedPrecisionPolicy(
        param_dtype=dtypes["param_dtype"],
        reduce_dtype=dtypes["reduce_dtype"],
        output_dtype=dtypes["output_dtype"],
        cast_forward_inputs=bool(mixed_precision.get("cast_forward_inputs", True)),
    )
    return policy, dtypes["buffer_dtype"]


def resolve_offload(cpu_offload: object) -> OffloadPolicy | None:
    """Map ``cpu_offload`` (bool, dict of ``CPUOffloadPolicy`` args, FSDP1 ``CPUOffload``)."""
    from torch.distributed.fsdp import CPUOffload, CPUOffloadPolicy, OffloadPolicy

    if cpu_offload is None or cpu_offload is False:
        return None
    if cpu_offload is True:
        return CPUOffloadPolicy()
    if isinstance(cpu_offload, OffloadPolicy):
        return cpu_offload
    if isinstance(cpu_offload, CPUOffload):
        return CPUOffloadPolicy() if cpu_offload.offload_params else None
    if isinstance(cpu_offload, dict):
        options = dict(cpu_offload)
        if not options.pop("offload_params", True):
            return None
        return CPUOffloadPolicy(**options)
    raise TypeError(
        f"`cpu_offload` must be None, a bool, a dict like dict(pin_memory=True), or an "
        f"OffloadPolicy, got {type(cpu_offload).__name__}"
    )


def check_backward_prefetch(backward_prefetch: object) -> None:
    """Accept what FSDP2 does anyway (prefetch before backward); refuse the rest."""
    name = getattr(backward_prefetch, "name", backward_prefetch)
    if name is None or (isinstance(name, str) and name.upper() == "BACKWARD_PRE"):
        return
    raise ValueError(
        f"`backward_prefetch` must be None or 'BACKWARD_PRE', got {backward_prefetch!r}: "
        "FSDP2 always prefetches the next all-gather before the current backward "
        "(FSDP1's BACKWARD_PRE); drop the option"
    )


def _classes_named(names: Iterable[object], module: nn.Module, key: str) -> set[type[nn.Module]]:
    """Resolve class names (or classes) against the classes found in ``module``."""
    found = {type(sub).__name__: type(sub) for sub in module.modules()}
    classes: set[type[nn.Module]] = set()
    for name in [names] if isinstance(names, (str, type)) else names:
        if isinstance(name, type):
            classes.add(name)
        elif isinstance(name, str) and name in found:
            classes.add(found[name])
        else:
            raise ValueError(
                f"`auto_wrap_policy['{key}']` names {name!r}, which is no class of a "
                f"submodule of {type(module).__name__}; classes present: {sorted(found)}"
            )
    return classes


def resolve_auto_wrap_policy(policy: object, module: nn.Module) -> Callable[..., bool] | None:
    """Return an FSDP1-style policy ``policy(module, recurse, nonwrapped_numel) -> bool``.

    Accepts a callable, a name (``'size_based'``, ``'size_based_auto_wrap_policy'``
    or torch's dotted path) or a dict with ``type`` naming one and its keyword
    arguments; ``transformer_layer_cls`` and ``module_classes`` may list class names.
    """
    from torch.distributed.fsdp import wrap

    if policy is None or (callable(policy) and not isinstance(policy, type)):
        return policy
    if isinstance(policy, str):
        config: dict[str, Any] = {"type": policy}
    elif isinstance(policy, dict) and "type" in policy:
        config = dict(policy)
    else:
        raise TypeError(
            "`auto_wrap_policy` must be None, a callable, a policy name or a dict with "
            f"'type', e.g. dict(type='size_based', min_num_params=1e6); got {policy!r}"
        )
    kind = config.pop("type")
    if callable(kind) and not isinstance(kind, type):
        return functools.partial(kind, **config)
    short = str(kind).rsplit(".", 1)[-1].removesuffix("_auto_wrap_policy")
    short = "module_classes" if short == "ModuleWrapPolicy" else short
    if short not in _POLICY_NAMES:
        raise ValueError(
            f"`auto_wrap_policy` type must be one of {list(_POLICY_NAMES)}, got {kind!r}"
        )
    if short == "size_based":
        if "min_num_params" in config:
            config["min_num_params"] = int(config["min_num_params"])
        return functools.partial(wrap.size_based_auto_wrap_policy, **config)
    if short == "lambda":
        return functools.partial(wrap.lambda_auto_wrap_policy, **config)
    key = "transformer_layer_cls" if short == "transformer" else "module_classes"
    if key not in config:
        raise ValueError(f"auto_wrap_policy type {kind!r} needs `{key}`: the classes to shard")
    classes = _classes_named(config.pop(key), module, key)
    if config:
        raise ValueError(f"auto_wrap_policy type {kind!r} got unknown keys {sorted(config)}")
    if short == "module_classes":
        return wrap.ModuleWrapPolicy(classes)
    return functools.partial(wrap.transformer_auto_wrap_policy, transformer_layer_cls=classes)


def resolve_ignored_params(ignored_modules: object, module: nn.Module) -> set[nn.Parameter]:
    """The parameters of ``ignored_modules`` (submodules, or their dotted names)."""
    if ignored_modules is None:
        return set()
    if isinstance(ignored_modules, (str, nn.Module)) or not isinstance(ignored_modules, Iterable):
        raise TypeError(
            "`ignored_modules` must be a list of submodules or their names, "
            f"got {ignored_modules!r}"
        )
    named = dict(module.named_modules())
    params: set[nn.Parameter] = set()
    for item in ignored_modules:
        if isinstance(item, str):
            if item not in named:
                raise ValueError(
                    f"`ignored_modules` names {item!r}, which is no submodule of "
                    f"{type(module).__name__}; e.g. {sorted(named)[1:6]}"
                )
            item = named[item]
        if not isinstance(item, nn.Module):
            raise TypeError(f"`ignored_modules` items must be str or nn.Module, got {item!r}")
        params.update(item.parameters())
    return params


def apply_auto_wrap(
    root: nn.Module, policy: Callable[..., bool], shard: Callable[[nn.Module], None]
) -> None:
    """Call ``shard`` bottom-up on the submodules ``policy`` selects, as FSDP1 would wrap them.

    ``policy(module, True, numel)`` decides whether to look inside a module and
    ``policy(module, False, numel)`` whether to shard it, where ``numel`` counts the
    parameters not already in a sharded descendant. The root is left to the caller.
    """

    def visit(module: nn.Module) -> int:
        total = sum(param.numel() for param in module.parameters())
        remaining = total
        if policy(module, True, total):
            remaining = sum(param.numel() for param in module.parameters(recurse=False))
            remaining += sum(visit(child) for child in module.children())
        if module is not root and policy(module, False, remaining):
            shard(module)
            return 0
        return remaining

    visit(root)
