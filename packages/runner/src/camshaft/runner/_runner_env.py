"""The Runner's environment: launcher, seeds, work_dir, model wrapping and compiling.

Each function does one set-up step the Runner needs before it can train, with the
checks and errors of that step; the Runner calls them in order.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from camshaft.registry import ConfigError

__all__ = [
    "LAUNCHERS",
    "setup_env",
    "set_randomness",
    "prepare_work_dir",
    "wrap_model",
    "compile_model",
    "unwrap_model",
]

LAUNCHERS = ("none", "pytorch", "slurm", "mpi")


def setup_env(launcher: str, env_cfg: Mapping[str, Any] | None) -> tuple[int, int, bool]:
    """Apply ``env_cfg`` and start the process group for ``launcher``.

    Args:
        launcher: ``'none'`` (one process), ``'pytorch'`` (torchrun), ``'slurm'`` or
            ``'mpi'``.
        env_cfg: ``dict(cudnn_benchmark=bool, mp_cfg=dict(mp_start_method=...),
            dist_cfg=dict(backend=..., timeout=...))``; every key optional.

    Returns:
        ``(rank, world_size, started)``: ``started`` is True when this call created the
        process group (so the Runner destroys it on ``close()``).

    Raises:
        ValueError: ``launcher`` is unknown, or ``env_cfg`` has an unknown key.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"`launcher` must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    env = dict(env_cfg or {})
    unknown = set(env) - {"cudnn_benchmark", "mp_cfg", "dist_cfg"}
    if unknown:
        raise ConfigError(
            f"`env_cfg` has unknown keys {sorted(unknown)}; allowed: cudnn_benchmark, "
            "mp_cfg, dist_cfg"
        )
    if env.get("cudnn_benchmark"):
        torch.backends.cudnn.benchmark = True
    mp_cfg = dict(env.get("mp_cfg") or {})
    method = mp_cfg.get("mp_start_method")
    if method is not None:
        import multiprocessing

        if multiprocessing.get_start_method(allow_none=True) != method:
            multiprocessing.set_start_method(method, force=True)
    if mp_cfg.get("opencv_num_threads") is not None:
        os.environ.setdefault("OPENCV_NUM_THREADS", str(mp_cfg["opencv_num_threads"]))
    from camshaft.dist import get_dist_info, init_dist, is_distributed

    started = False
    if launcher != "none" and not is_distributed():
        dist_cfg = dict(env.get("dist_cfg") or {})
        init_dist(launcher, **dist_cfg)
        started = True
    rank, world_size = get_dist_info()
    return rank, world_size, started


def set_randomness(
    seed: int | None = None, deterministic: bool = False, diff_rank_seed: bool = False
) -> int:
    """Seed python, numpy and torch; return the seed used.

    Args:
        seed: The seed; None draws one (shared by all ranks under a process group).
        deterministic: Ask torch for deterministic algorithms (and no cuDNN
            benchmarking).
        diff_rank_seed: Add the rank to the seed, so ranks draw differently.

    Raises:
        TypeError: ``seed`` is not an int or None.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`randomness['seed']` must be an int or None, got {seed!r}")
    from camshaft.dist import get_rank, sync_random_seed

    if seed is None:
        seed = sync_random_seed()
    if diff_rank_seed:
        seed += get_rank()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def prepare_work_dir(
    work_dir: str | os.PathLike[str], timestamp: str | None = None
) -> tuple[Path, str]:
    """Create ``work_dir`` and check it can be written; return it and a timestamp.

    Raises:
        TypeError: ``work_dir`` is not a path.
        PermissionError: the directory cannot be created or written.
    """
    if not isinstance(work_dir, str | os.PathLike):
        raise TypeError(f"`work_dir` must be a path, got {type(work_dir).__name__}: {work_dir!r}")
    path = Path(work_dir).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(
            f"`work_dir` {str(work_dir)!r} cannot be written ({exc.strerror or exc}); "
            "choose a directory you can write to"
        ) from exc
    return path, timestamp or time.strftime("%Y%m%d_%H%M%S", time.localtime())


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model without DDP/FSDP wrappers or ``torch.compile``'s ``OptimizedModule``."""
    from camshaft.dist import is_model_wrapper

    while True:
        inner = getattr(model, "module", None)
        if (is_model_wrapper(model) or isinstance(model, nn.parallel.DistributedDataParallel)) and (
            isinstance(inner, nn.Module)
        ):
            model = inner
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # type: ignore[assignment]
        else:
            return model


def wrap_model(
    model: nn.Module, wrapper_cfg: Mapping[str, Any] | None, distributed: bool
) -> nn.Module:
    """Wrap ``model`` for distributed training (nothing when not distributed).

    Args:
        model: The model, already on its device.
        wrapper_cfg: ``cfg.model_wrapper_cfg`` (e.g.
            ``dict(type='MMSeparateDistributedDataParallel')``); None gives
            ``MMDistributedDataParallel``.
        distributed: Whether a process group is running.
    """
    if not distributed:
        return model
    from camshaft.dist import MODEL_WRAPPERS

    cfg = dict(wrapper_cfg or {"type": "MMDistributedDataParallel"})
    cfg.setdefault("type", "MMDistributedDataParallel")
    if cfg["type"] in ("MMDistributedDataParallel", "MMSeparateDistributedDataParallel") and (
        torch.cuda.is_available()
        and "device_ids" not in cfg
        and next(model.parameters(), torch.empty(0)).is_cuda
    ):
        cfg["device_ids"] = [torch.cuda.current_device()]
    cfg["module"] = model
    wrapped: nn.Module = MODEL_WRAPPERS.build(cfg)
    return wrapped


def compile_model(model: nn.Module, compile_cfg: bool | Mapping[str, Any] | None) -> None:
    """Compile the forward of ``model`` in place when ``cfg.compile`` asks for it.

    ``train_step``/``val_step`` keep calling ``model(...)``, so compiling the
    module's ``forward`` is enough, and the module itself (its state-dict keys) is
    unchanged: checkpoints never carry ``_orig_mod.``.

    Raises:
        TypeError: ``compile_cfg`` is neither a bool nor a dict.
    """
    if not compile_cfg:
        return
    if compile_cfg is True:
        kwargs: dict[str, Any] = {}
    elif isinstance(compile_cfg, Mapping):
        kwargs = dict(compile_cfg)
    else:
        raise TypeError(
            "`cfg.compile` must be a bool or a dict of torch.compile arguments, "
            f"got {compile_cfg!r}"
        )
    target = unwrap_model(model)
    target.forward = torch.compile(target.forward, **kwargs)


def _wrapper_paths(model: nn.Module) -> list[str]:
    """Names of submodules that are DDP-style wrappers, shallowest first.

    ``MMSeparateDistributedDataParallel`` wraps each child of a GAN in place.
    """
    from camshaft.dist import is_model_wrapper

    # Every wrapper keeps the model it wraps as its child ``module``; testing for that
    # child first (a dict lookup, no call) spares the registry walk for the others.
    return [
        name
        for name, module in model.named_modules()
        if name
        and "module" in module._modules
        and (is_model_wrapper(module) or isinstance(module, nn.parallel.DistributedDataParallel))
    ]


def plain_state_dict(model: nn.Module) -> dict[str, Any]:
    """``model.state_dict()`` without the ``.module.`` of wrapped children.

    A model whose children were wrapped in place (separate DDP for GANs) then saves
    the same keys as when it trains in one process.
    """
    state = model.state_dict()
    # Only keys holding ".module." can change: without one (the usual case), the tree
    # walk looking for wrappers is not needed. One join tests every key in one call.
    try:
        unwrapped = ".module." not in "\n".join(state)
    except TypeError:  # a key that is not a str: leave it to the walk below
        unwrapped = False
    if unwrapped:
        return state
    paths = _wrapper_paths(model)
    if not paths:
        return state
    plain: dict[str, Any] = {}
    for key, value in state.items():
        for path in reversed(paths):  # deepest first: its name holds the outer `module.`
            prefix = f"{path}.module."
            if key.startswith(prefix):
                key = f"{path}.{key[len(prefix) :]}"
        plain[key] = value
    return plain


def wrapped_key_patterns(model: nn.Module) -> list[tuple[str, str]]:
    """``revise_keys`` pairs that map plain checkpoint keys onto wrapped children."""
    import re

    return [
        (rf"^{re.escape(path)}\.(?!module\.)", f"{path}.module.") for path in _wrapper_paths(model)
    ]
