"""Who am I in the job: rank, world size, local rank, backend and its device.

Every function here answers for a single process too, so code written for a
distributed job runs unchanged without one: with no process group, the rank is 0,
the world size 1, and :func:`master_only` functions always run.

"Distributed" means ``torch.distributed`` is built into this torch *and* a default
process group has been initialised (by :func:`~camshaft.dist.init_dist` or by
``torch.distributed.init_process_group`` directly).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "get_local_size",
    "get_dist_info",
    "is_main_process",
    "master_only",
    "get_backend",
    "get_comm_device",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# The device each known backend moves tensors through. Backends missing here
# (ucc, custom ones) are trusted with tensors wherever they are.
_BACKEND_DEVICE = {"gloo": "cpu", "mpi": "cpu", "nccl": "cuda", "xccl": "xpu"}


def is_distributed() -> bool:
    """Return whether a default process group exists in this process.

    Returns:
        True once ``init_dist`` (or ``torch.distributed.init_process_group``) has
        run and until the group is destroyed.
    """
    return dist.is_available() and dist.is_initialized()


def get_rank(group: dist.ProcessGroup | None = None) -> int:
    """Return this process's rank in ``group`` (the default group when None).

    Args:
        group: The process group to ask about.

    Returns:
        The rank, or 0 when not distributed.
    """
    return dist.get_rank(group) if is_distributed() else 0


def get_world_size(group: dist.ProcessGroup | None = None) -> int:
    """Return the number of processes in ``group`` (the default group when None).

    Args:
        group: The process group to ask about.

    Returns:
        The world size, or 1 when not distributed.
    """
    return dist.get_world_size(group) if is_distributed() else 1


def get_dist_info(group: dist.ProcessGroup | None = None) -> tuple[int, int]:
    """Return ``(rank, world_size)`` in ``group``, ``(0, 1)`` when not distributed.

    Args:
        group: The process group to ask about.

    Returns:
        This process's rank and the number of processes.

    Example:
        >>> get_dist_info()  # no process group in a plain Python session
        (0, 1)
    """
    return get_rank(group), get_world_size(group)


def is_main_process(group: dist.ProcessGroup | None = None) -> bool:
    """Return whether this process has rank 0 in ``group``.

    Args:
        group: The process group to ask about.

    Returns:
        True on rank 0, and always True when not distributed.
    """
    return get_rank(group) == 0


def _int_from_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} must be an integer; check the launcher "
            "(torchrun, srun) that set it"
        ) from None


def get_local_rank() -> int:
    """Return this process's rank among the processes on its machine.

    Read from ``LOCAL_RANK``, which torchrun sets and ``init_dist`` sets for the
    slurm and mpi launchers. Without it the global rank is returned, which is
    right when every process runs on one machine.

    Returns:
        The local rank, or 0 when not distributed.

    Raises:
        ValueError: ``LOCAL_RANK`` is set but not an integer.
    """
    if not is_distributed():
        return 0
    local_rank = _int_from_env("LOCAL_RANK")
    return get_rank() if local_rank is None else local_rank


def get_local_size() -> int:
    """Return the number of processes on this process's machine.

    Read from ``LOCAL_WORLD_SIZE`` (set by torchrun); without it the world size
    is returned, which is right when every process runs on one machine.

    Returns:
        The local world size, or 1 when not distributed.

    Raises:
        ValueError: ``LOCAL_WORLD_SIZE`` is set but not an integer.
    """
    if not is_distributed():
        return 1
    local_size = _int_from_env("LOCAL_WORLD_SIZE")
    return get_world_size() if local_size is None else local_size


def master_only(func: Callable[_P, _R]) -> Callable[_P, _R | None]:
    """Decorate ``func`` so that it runs on rank 0 only and returns None elsewhere.

    Other ranks do not wait for rank 0; follow with :func:`barrier` when they must.

    Args:
        func: The function to restrict to the main process.

    Returns:
        The wrapped function.

    Example:
        >>> @master_only
        ... def save_report(text: str) -> str:
        ...     return f"saved {text}"
        >>> save_report("ok")  # a single process is the main process
        'saved ok'
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        if is_main_process():
            return func(*args, **kwargs)
        return None

    return wrapper


def get_backend(group: dist.ProcessGroup | None = None) -> str | None:
    """Return the backend of ``group`` (e.g. ``'nccl'``, ``'gloo'``), None when not distributed.

    Args:
        group: The process group to ask about.

    Returns:
        The backend name as torch reports it (``'cpu:gloo,cuda:nccl'`` for a group
        created without a backend on a CUDA machine), or None.
    """
    return str(dist.get_backend(group)) if is_distributed() else None


def _backend_device_types(backend: str) -> list[str] | None:
    """The device types ``backend`` takes tensors on, preferred first; None for "any"."""
    if ":" in backend:  # "cpu:gloo,cuda:nccl": one backend per device type
        return [part.split(":", 1)[0].strip() for part in backend.split(",")]
    device_type = _BACKEND_DEVICE.get(backend.lower())
    return None if device_type is None else [device_type]


def _device_of_type(device_type: str) -> torch.device:
    if device_type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    if device_type == "xpu":
        return torch.device("xpu", torch.xpu.current_device())
    return torch.device(device_type)


def get_comm_device(group: dist.ProcessGroup | None = None) -> torch.device:
    """Return the device that ``group``'s backend communicates through.

    ``'nccl'`` gives the current CUDA device, ``'gloo'`` and ``'mpi'`` the CPU; a
    group with one backend per device type gives its first device type. When not
    distributed, or for a backend this function does not know, the CPU.

    Args:
        group: The process group to ask about.

    Returns:
        The device to put tensors on before a collective.
    """
    backend = get_backend(group)
    device_types = None if backend is None else _backend_device_types(backend)
    return _device_of_type(device_types[0]) if device_types else torch.device("cpu")


def comm_device_for(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.device:
    """Return where ``tensor`` must be for a collective on ``group``: its own device if allowed."""
    backend = get_backend(group)
    device_types = None if backend is None else _backend_device_types(backend)
    if not device_types or tensor.device.type in device_types:
        return tensor.device
    return _device_of_type(device_types[0])
