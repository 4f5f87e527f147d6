"""``MMFullyShardedDataParallel``: FSDP2 (``fully_shard``) behind MMEngine's wrapper API.

MMEngine's class subclasses FSDP1 (``FullyShardedDataParallel``), which torch has
since superseded by FSDP2: ``torch.distributed.fsdp.fully_shard`` (public since torch
2.6; ``torch.distributed._composable.fsdp`` in 2.4 and 2.5, used as a fallback).
FSDP2 shards each parameter as a ``DTensor`` in place and adds hooks to the module,
rather than wrapping it in a flat-parameter object. This wrapper builds on FSDP2 only
and keeps MMEngine's constructor arguments, translated by ``_fsdp_options``:

* ``sharding_strategy``: ``'FULL_SHARD'`` (default), ``'SHARD_GRAD_OP'``,
  ``'HYBRID_SHARD'`` (shard within a machine, replicate across machines; needs
  ``LOCAL_WORLD_SIZE``) and ``'_HYBRID_SHARD_ZERO2'``; ``'NO_SHARD'`` is refused
  (that is DDP).
* ``auto_wrap_policy``: FSDP1 policies decide which submodules get their own
  ``fully_shard`` call, bottom-up, before the root's.
* ``mixed_precision``, ``cpu_offload``, ``ignored_modules``, ``process_group``.

Rules it keeps: the optimizer must be built *after* wrapping (the parameters become
DTensors); ``no_sync()`` skips the gradient reduce-scatter for the backward of the
forwards run inside it, as DDP's does, so the optimizer wrapper's accumulation works
unchanged; ``train_step``, ``val_step`` and ``test_step`` all run the forward through
the sharded model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from camshaft.dist import _fsdp_options as options
from camshaft.dist._comm import broadcast
from camshaft.dist._registry import MODEL_WRAPPERS
from camshaft.dist._utils import get_comm_device
from camshaft.dist._wrapper_utils import (
    base_model_of,
    check_optim_wrapper,
    check_wrappable,
    run_forward,
)
from camshaft.model import OptimWrapperProtocol

__all__ = ["MMFullyShardedDataParallel"]

_FSDP2_KWARGS = ("mesh", "reshard_after_forward", "mp_policy", "offload_policy")
_PASSTHROUGH = ("shard_placement_fn", "ignored_params")


def _fsdp2() -> Any:
    """The module holding ``fully_shard`` and ``FSDPModule`` in this torch."""
    from torch.distributed import fsdp

    if hasattr(fsdp, "fully_shard"):
        return fsdp
    from torch.distributed._composable import fsdp as composable  # torch 2.4 and 2.5

    return composable


@MODEL_WRAPPERS.register_module()
class MMFullyShardedDataParallel(nn.Module):
    """Shard a model's parameters, gradients and optimizer state across ranks (FSDP2).

    Args:
        module: The model, usually a ``camshaft.model.BaseModel``; it is sharded in
            place. It must not be wrapped or sharded already.
        process_group: Shard across this group instead of the default one.
        sharding_strategy: ``'FULL_SHARD'``, ``'SHARD_GRAD_OP'``, ``'HYBRID_SHARD'``,
            ``'_HYBRID_SHARD_ZERO2'`` or torch's ``ShardingStrategy``; None is
            ``'FULL_SHARD'``.
        cpu_offload: True, a dict of ``CPUOffloadPolicy`` arguments, or a policy.
        auto_wrap_policy: Which submodules to shard as their own unit: a callable
            ``policy(module, recurse, nonwrapped_numel)``, a name (``'size_based'``)
            or a dict such as ``dict(type='transformer', transformer_layer_cls=
            ['Block'])`` (class names are looked up in the model). None shards the
            whole model as one unit.
        backward_prefetch: None or ``'BACKWARD_PRE'`` (what FSDP2 always does).
        mixed_precision: A dtype name for the parameters (``'bfloat16'``), a dict
            with ``param_dtype``, ``reduce_dtype``, ``output_dtype``,
            ``buffer_dtype`` (floating buffers are cast once, before sharding), or a
            ``MixedPrecisionPolicy``.
        ignored_modules: Submodules (or their names) whose parameters stay
            unsharded and unsynchronised.
        param_init_fn: Called as ``param_init_fn(module)`` after sharding when the
            model was built on the ``meta`` device, once its storage is allocated.
        use_orig_params: Must be True (FSDP2 always keeps the original parameters).
        sync_module_states: Broadcast rank 0's parameters and buffers before
            sharding, so every rank starts from the same weights.
        **kwargs: FSDP2's own ``mesh``, ``reshard_after_forward``, ``mp_policy``,
            ``offload_policy``, ``shard_placement_fn`` and ``ignored_params``.

    Raises:
        TypeError: ``module`` is not a module or is wrapped already; an option has
            the wrong type; an unknown keyword argument.
        ValueError: an option's value is not supported by FSDP2, or conflicts with
            another.
        RuntimeError: no default process group exists.

    Example:
        >>> # after init_dist('pytorch'), in every process:
        >>> fsdp = MMFullyShardedDataParallel(  # doctest: +SKIP
        ...     model, mixed_precision='bfloat16',
        ...     auto_wrap_policy=dict(type='transformer', transformer_layer_cls=['Block']))
        >>> optimizer = torch.optim.AdamW(fsdp.parameters())  # doctest: +SKIP
    """

    def __init__(
        self,
        module: nn.Module,
        process_group: dist.ProcessGroup | None = None,
        sharding_strategy: Any = None,
        cpu_offload: Any = None,
        auto_wrap_policy: Any = None,
        backward_prefetch: Any = None,
        mixed_precision: Any = None,
        ignored_modules: Any = None,
        param_init_fn: Callable[[nn.Module], None] | None = None,
        use_orig_params: bool = True,
        sync_module_states: bool = False,
        **kwargs: Any,
    ) -> None:
        check_wrappable(module, type(self).__name__)
        fsdp = _fsdp2()
        if isinstance(module, fsdp.FSDPModule):
            raise TypeError(
                f"{type(self).__name__}: `module` was already sharded with fully_shard; "
                "pass the unsharded model"
            )
        unknown = sorted(set(kwargs) - set(_FSDP2_KWARGS) - set(_PASSTHROUGH))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unsupported keyword arguments {unknown}; FSDP2 "
                f"takes {list(_FSDP2_KWARGS + _PASSTHROUGH)} besides MMEngine's arguments"
            )
        if use_orig_params is not True:
            raise ValueError(
                f"`use_orig_params` must be True with FSDP2 (it always keeps the original "
                f"parameters), got {use_orig_params!r}"
            )
        if not isinstance(sync_module_states, bool):
            raise TypeError(f"`sync_module_states` must be a bool, got {sync_module_states!r}")
        if param_init_fn is not None and not callable(param_init_fn):
            raise TypeError(f"`param_init_fn` must be callable or None, got {param_init_fn!r}")
        options.check_backward_prefetch(backward_prefetch)
        shard_kwargs, hybrid, buffer_dtype = _translate(
            module, kwargs, sharding_strategy, mixed_precision, cpu_offload, ignored_modules
        )
        if shard_kwargs.get("mesh") is None:
            shard_kwargs["mesh"] = _build_mesh(process_group, hybrid)
        elif process_group is not None or hybrid:
            raise ValueError(
                "`mesh` already says where to shard; drop `process_group` and the HYBRID "
                "sharding strategy, or drop `mesh`"
            )
        policy = options.resolve_auto_wrap_policy(auto_wrap_policy, module)
        on_meta = any(t.device.type == "meta" for t in [*module.parameters(), *module.buffers()])
        if on_meta and param_init_fn is None:
            raise ValueError(
                "the model has tensors on the meta device; pass param_init_fn=fn, called as "
                "fn(module) after sharding to initialise the allocated storage"
            )

        if sync_module_states:
            _broadcast_states(module, process_group)
        if buffer_dtype is not None:
            for buffer in module.buffers():
                if buffer.is_floating_point():
                    buffer.data = buffer.data.to(buffer_dtype)

        def shard(submodule: nn.Module) -> None:
            fsdp.fully_shard(submodule, **shard_kwargs)

        if policy is not None:
            options.apply_auto_wrap(module, policy, shard)
        preprocessor = getattr(module, "data_preprocessor", None)
        if (
            isinstance(preprocessor, nn.Module)
            and not isinstance(preprocessor, fsdp.FSDPModule)
            and any(True for _ in preprocessor.parameters())
        ):
            shard(preprocessor)  # it is called outside the root's forward, so needs its own
        shard(module)
        if on_meta and param_init_fn is not None:
            device_type = shard_kwargs["mesh"].device_type
            module.to_empty(device="cpu" if device_type == "cpu" else get_comm_device())
            param_init_fn(module)
        super().__init__()
        self.module = module
        self._sync_requested = True
        self._sync_applied = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the sharded model, first applying the gradient-sync state of ``no_sync``."""
        if self._sync_requested is not self._sync_applied:
            self.module.set_requires_gradient_sync(self._sync_requested)  # type: ignore[operator]
            self._sync_applied = self._sync_requested
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip the gradient reduce-scatter for the backward of forwards run inside.

        The state is applied when the forward runs and holds for its backward, like
        DDP's ``no_sync``; the next forward outside the block synchronises again,
        including the gradients accumulated meanwhile.

        Yields:
            None.
        """
        previous = self._sync_requested
        self._sync_requested = False
        try:
            yield
        finally:
            self._sync_requested = previous

    def train_step(self, data: Any, optim_wrapper: OptimWrapperProtocol) -> dict[str, torch.Tensor]:
        """Preprocess, run the sharded ``'loss'`` forward, and update the parameters.

        Args:
            data: The batch from the DataLoader: a dict or a list/tuple.
            optim_wrapper: Updates the parameters; its ``optim_context(self)``
                surrounds preprocessing and the forward.

        Returns:
            The log variables from the model's ``parse_losses``.

        Raises:
            TypeError: the model lacks ``data_preprocessor`` or ``parse_losses``,
                or ``optim_wrapper`` lacks the wrapper methods.
        """
        model = base_model_of(self.module, type(self).__name__)
        check_optim_wrapper(optim_wrapper, type(self).__name__)
        with optim_wrapper.optim_context(self):
            data = model.data_preprocessor(data, True)
            losses = run_forward(self, data, mode="loss")
        parsed_loss, log_vars = model.parse_losses(losses)
        optim_wrapper.update_params(parsed_loss)
        result: dict[str, torch.Tensor] = log_vars
        return result

    def val_step(self, data: Any) -> Any:
        """Preprocess (``training=False``) and run the sharded ``'predict'`` forward."""
        model = base_model_of(self.module, type(self).__name__)
        return run_forward(self, model.data_preprocessor(data, False), mode="predict")

    def test_step(self, data: Any) -> Any:
        """Preprocess (``training=False``) and run the sharded ``'predict'`` forward."""
        model = base_model_of(self.module, type(self).__name__)
        return run_forward(self, model.data_preprocessor(data, False), mode="predict")


def _translate(
    module: nn.Module,
    kwargs: dict[str, Any],
    sharding_strategy: object,
    mixed_precision: object,
    cpu_offload: object,
    ignored_modules: object,
) -> tuple[dict[str, Any], bool, torch.dtype | None]:
    """Return ``(fully_shard kwargs, hybrid, buffer_dtype)`` from both forms of options."""
    reshard, hybrid = options.resolve_sharding_strategy(sharding_strategy)
    mp_policy, buffer_dtype = options.resolve_mixed_precision(mixed_precision)
    shard_kwargs: dict[str, Any] = {key: kwargs[key] for key in _PASSTHROUGH if key in kwargs}
    shard_kwargs["mesh"] = kwargs.get("mesh")
    for key, value, given, mmengine_name in (
        ("reshard_after_forward", reshard, sharding_strategy, "sharding_strategy"),
        ("mp_policy", mp_policy, mixed_precision, "mixed_precision"),
        ("offload_policy", options.resolve_offload(cpu_offload), cpu_offload, "cpu_offload"),
    ):
        if key in kwargs and given not in (None, False):
            raise ValueError(
                f"pass either FSDP2's `{key}` or `{mmengine_name}`, not both; "
                f"got {key}={kwargs[key]!r} and {mmengine_name}={given!r}"
            )
        value = kwargs.get(key, value)
        if value is not None:
            shard_kwargs[key] = value
    ignored = options.resolve_ignored_params(ignored_modules, module)
    if ignored:
        shard_kwargs["ignored_params"] = ignored | set(shard_kwargs.get("ignored_params", ()))
    return shard_kwargs, hybrid, buffer_dtype


def _build_mesh(process_group: dist.ProcessGroup | None, hybrid: bool) -> Any:
    from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

    device_type = get_comm_device(process_group).type
    if not hybrid:
        group = process_group if process_group is not None else dist.group.WORLD
        if group is None:
            raise RuntimeError("no default process group; call init_dist first")
        return DeviceMesh.from_group(group, device_type)
    if process_group is not None:
        raise ValueError("`process_group` cannot be combined with a HYBRID_SHARD strategy")
    world_size = dist.get_world_size()
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "0"))
    if local_size < 1 or world_size % local_size:
        raise ValueError(
            f"HYBRID_SHARD shards within a machine and needs LOCAL_WORLD_SIZE (set by "
            f"torchrun) dividing the world size {world_size}; got "
            f"LOCAL_WORLD_SIZE={os.environ.get('LOCAL_WORLD_SIZE')!r}"
        )
    shape = (world_size // local_size, local_size)
    return init_device_mesh(device_type, shape, mesh_dim_names=("replicate", "shard"))


def _broadcast_states(module: nn.Module, group: dist.ProcessGroup | None) -> None:
    src = 0 if group is None else dist.get_global_rank(group, 0)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.device.type != "meta":
                broadcast(tensor.data, src=src, group=group)
