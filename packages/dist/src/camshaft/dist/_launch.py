"""``init_dist``: join the process group that torchrun, srun or mpirun started us in.

camshaft launches nothing itself: the launcher starts one process per device and
describes the job in environment variables; :func:`init_dist` reads them and calls
``torch.distributed.init_process_group`` with ``init_method='env://'``.

* ``'pytorch'``: torchrun (``python -m torch.distributed.run``) sets ``RANK``,
  ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; all five are
  required.
* ``'slurm'``: srun sets ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID`` and
  ``SLURM_NODELIST``; the torch variables are derived from them (``MASTER_ADDR`` is
  the first node of the allocation unless already set, ``MASTER_PORT`` is ``port=``,
  else the environment's, else 29500) and written to ``os.environ``.
* ``'mpi'``: Open MPI's ``OMPI_COMM_WORLD_RANK``/``_SIZE``/``_LOCAL_RANK``, plus a
  ``MASTER_ADDR`` that the user exports (``MASTER_PORT`` defaults to 29500).

With a CUDA backend (NCCL) the process's CUDA device is set to its local rank
before the group is created, so each process drives its own GPU.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from camshaft.dist._errors import LaunchError
from camshaft.dist._utils import _backend_device_types, get_backend, is_distributed

__all__ = ["init_dist"]

_LAUNCHERS = ("pytorch", "slurm", "mpi")
_DEFAULT_PORT = 29500
_LAUNCHER_HINT = {
    "pytorch": "start the script with `torchrun --nproc_per_node=N script.py`",
    "slurm": "start the script with `srun` inside a Slurm allocation",
    "mpi": "start the script with Open MPI's `mpirun`",
}


def init_dist(
    launcher: str,
    backend: str | None = None,
    timeout: float | timedelta | None = None,
    **kwargs: Any,
) -> None:
    """Initialise the default process group from the launcher's environment.

    Args:
        launcher: ``'pytorch'`` (torchrun), ``'slurm'`` (srun) or ``'mpi'`` (mpirun).
        backend: The ``torch.distributed`` backend. None picks ``'nccl'`` when CUDA
            is available and ``'gloo'`` otherwise.
        timeout: How long collectives wait before failing: seconds, or a
            ``timedelta``. None keeps torch's default.
        **kwargs: For ``'slurm'``, ``port`` (the master port); everything else is
            passed to ``torch.distributed.init_process_group``.

    Raises:
        ValueError: ``launcher`` is unknown, ``backend='nccl'`` without CUDA, or
            ``timeout`` is not positive.
        TypeError: an argument has the wrong type.
        LaunchError: a variable the launcher should have set is missing or
            malformed, the local rank has no CUDA device, or a default process
            group already exists.

    Example:
        >>> # in train.py, started with `torchrun --nproc_per_node=2 train.py`
        >>> from camshaft.dist import get_dist_info, init_dist
        >>> init_dist('pytorch')  # doctest: +SKIP
        >>> rank, world_size = get_dist_info()  # doctest: +SKIP
    """
    if not isinstance(launcher, str) or launcher not in _LAUNCHERS:
        hint = (
            "; launcher='none' means one process: do not call init_dist then"
            if launcher == "none"
            else ""
        )
        raise ValueError(f"`launcher` must be one of {list(_LAUNCHERS)}, got {launcher!r}{hint}")
    backend = _resolve_backend(backend)
    if timeout is not None:
        kwargs["timeout"] = _resolve_timeout(timeout)
    if not dist.is_available():
        raise LaunchError(
            "torch.distributed is not available in this build of torch; install a "
            "torch build with distributed support"
        )
    if is_distributed():
        raise LaunchError(
            f"a default process group already exists (backend {get_backend()!r}, world size "
            f"{dist.get_world_size()}); call init_dist once per process, or "
            "torch.distributed.destroy_process_group() first"
        )
    if launcher == "pytorch":
        env = _pytorch_env()
    elif launcher == "slurm":
        env = _slurm_env(kwargs.pop("port", None))
    else:
        env = _mpi_env()
    os.environ.update(env)
    if "cuda" in (_backend_device_types(backend) or []):
        _set_cuda_device(int(env["LOCAL_RANK"]), launcher)
    dist.init_process_group(backend=backend, init_method="env://", **kwargs)


def _resolve_backend(backend: object) -> str:
    if backend is None:
        return "nccl" if torch.cuda.is_available() else "gloo"
    if not isinstance(backend, str) or not backend:
        raise TypeError(f"`backend` must be a non-empty str or None, got {backend!r}")
    if backend.lower() == "nccl" and not torch.cuda.is_available():
        raise ValueError(
            "backend='nccl' needs CUDA, but torch.cuda.is_available() is False here; "
            "pass backend='gloo' (or backend=None) to run on CPU"
        )
    return backend


def _resolve_timeout(timeout: object) -> timedelta:
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(
            f"`timeout` must be seconds (int or float), a timedelta or None, got {timeout!r}"
        )
    if not seconds > 0:
        raise ValueError(f"`timeout` must be positive, got {timeout!r}")
    return timedelta(seconds=seconds)


def _require(name: str, launcher: str) -> str:
    value = os.environ.get(name)
    if value is None or not value.strip():
        raise LaunchError(
            f"init_dist(launcher={launcher!r}) needs the environment variable {name}, which "
            f"is not set; {_LAUNCHER_HINT[launcher]}, which sets it"
        )
    return value.strip()


def _require_int(name: str, launcher: str, minimum: int = 0) -> int:
    value = _require(name, launcher)
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise LaunchError(
            f"environment variable {name}={value!r} must be an integer >= {minimum} for "
            f"init_dist(launcher={launcher!r}); check how the job was started"
        )
    return number


def _check_port(port: object, source: str) -> str:
    text = str(port)
    if isinstance(port, bool) or not text.isdigit() or not 0 < int(text) < 65536:
        raise LaunchError(f"{source} must be a port number in [1, 65535], got {port!r}")
    return text


def _pytorch_env() -> dict[str, str]:
    rank = _require_int("RANK", "pytorch")
    world_size = _require_int("WORLD_SIZE", "pytorch", minimum=1)
    local_rank = _require_int("LOCAL_RANK", "pytorch")
    address = _require("MASTER_ADDR", "pytorch")
    port = _check_port(_require("MASTER_PORT", "pytorch"), "MASTER_PORT")
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "MASTER_ADDR": address,
        "MASTER_PORT": port,
    }


def _slurm_env(port: object) -> dict[str, str]:
    rank = _require_int("SLURM_PROCID", "slurm")
    world_size = _require_int("SLURM_NTASKS", "slurm", minimum=1)
    if "SLURM_LOCALID" in os.environ:
        local_rank = _require_int("SLURM_LOCALID", "slurm")
    else:
        local_rank = rank % max(torch.cuda.device_count(), 1)
    address = os.environ.get("MASTER_ADDR")
    if not address:
        nodelist = os.environ.get("SLURM_NODELIST") or os.environ.get("SLURM_JOB_NODELIST")
        if not nodelist:
            raise LaunchError(
                "init_dist(launcher='slurm') needs SLURM_NODELIST (or SLURM_JOB_NODELIST) to "
                f"find the master node, or MASTER_ADDR; {_LAUNCHER_HINT['slurm']}, which sets it"
            )
        address = first_slurm_host(nodelist)
    if port is not None:
        port_text = _check_port(port, "`port`")
    elif os.environ.get("MASTER_PORT"):
        port_text = _check_port(os.environ["MASTER_PORT"], "MASTER_PORT")
    else:
        port_text = str(_DEFAULT_PORT)
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "MASTER_ADDR": address,
        "MASTER_PORT": port_text,
    }


def _mpi_env() -> dict[str, str]:
    rank = _require_int("OMPI_COMM_WORLD_RANK", "mpi")
    world_size = _require_int("OMPI_COMM_WORLD_SIZE", "mpi", minimum=1)
    local_rank = _require_int("OMPI_COMM_WORLD_LOCAL_RANK", "mpi")
    address = _require("MASTER_ADDR", "mpi")
    port = os.environ.get("MASTER_PORT") or str(_DEFAULT_PORT)
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "MASTER_ADDR": address,
        "MASTER_PORT": _check_port(port, "MASTER_PORT"),
    }


def first_slurm_host(nodelist: str) -> str:
    """Return the first host of a Slurm node list such as ``'gpu[003-006,9],cpu1'``.

    Bracketed ranges expand to their first value (``'gpu[003-006]'`` → ``'gpu003'``);
    several bracket groups in one name are each expanded the same way.
    """
    depth = 0
    first = nodelist
    for index, char in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            first = nodelist[:index]
            break
    host = re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[-,]", m.group(1))[0], first.strip())
    if not host or "[" in host or "]" in host:
        raise LaunchError(
            f"cannot read a host name from the Slurm node list {nodelist!r}; export "
            "MASTER_ADDR with the address of the first node"
        )
    return host


def _set_cuda_device(local_rank: int, launcher: str) -> None:
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise LaunchError(
            f"local rank {local_rank} has no CUDA device: {count} visible to this process. "
            f"Start at most {count} processes per machine (launcher {launcher!r}), or check "
            "CUDA_VISIBLE_DEVICES"
        )
    torch.cuda.set_device(local_rank)
