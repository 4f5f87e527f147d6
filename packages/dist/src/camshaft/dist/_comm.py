"""Collectives that put tensors where the backend wants them, and do nothing alone.

``torch.distributed`` collectives fail when a tensor sits on a device the backend
cannot read (gloo wants CPU tensors, NCCL CUDA ones) and when no process group
exists. These wrappers:

* move a tensor to the backend's device (and make it contiguous, which the backends
  require) for the collective, and the result back to the tensor's own device (in
  place for :func:`all_reduce` and :func:`broadcast`, so the caller's tensor holds
  the result wherever it lives);
* return the single-process answer when not distributed: :func:`all_reduce` and
  :func:`broadcast` leave the data alone, the gathers return ``[data]``;
* take reduce operations by name (``op='mean'`` included, which torch lacks for
  gloo).

Every rank of the group must call the same collective in the same order, as with
torch itself.
"""

from __future__ import annotations

import secrets
from typing import Any

import torch
import torch.distributed as dist

from camshaft.dist._utils import comm_device_for, get_rank, get_world_size, is_distributed

__all__ = [
    "barrier",
    "all_reduce",
    "all_gather",
    "all_gather_object",
    "broadcast",
    "broadcast_object_list",
    "sync_random_seed",
]

_REDUCE_OPS = ("sum", "mean", "product", "min", "max", "band", "bor", "bxor")


def _check_tensor(data: object, name: str = "data") -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor, got {type(data).__name__}; for other Python "
            "objects use all_gather_object or broadcast_object_list"
        )
    return data


def _torch_reduce_op(op: str | dist.ReduceOp) -> Any:
    if not isinstance(op, str):
        if isinstance(op, dist.ReduceOp):
            return op
        raise TypeError(f"`op` must be a str or torch.distributed.ReduceOp, got {op!r}")
    name = op.lower()
    if name not in _REDUCE_OPS:
        raise ValueError(f"`op` must be one of {list(_REDUCE_OPS)}, got {op!r}")
    if name == "mean":
        return dist.ReduceOp.SUM  # gloo has no AVG; divided afterwards
    return getattr(dist.ReduceOp, name.upper())


def barrier(group: dist.ProcessGroup | None = None) -> None:
    """Block until every process of ``group`` has called ``barrier``; no-op alone.

    Args:
        group: The process group; the default group when None.
    """
    if is_distributed():
        dist.barrier(group)


def all_reduce(
    data: torch.Tensor,
    op: str | dist.ReduceOp = "sum",
    group: dist.ProcessGroup | None = None,
) -> None:
    """Reduce ``data`` across the processes of ``group``, in place.

    Args:
        data: The tensor to reduce; it receives the result, on its own device.
        op: ``'sum'``, ``'mean'``, ``'product'``, ``'min'``, ``'max'``,
            ``'band'``, ``'bor'``, ``'bxor'`` (case-insensitive), or a
            ``torch.distributed.ReduceOp``.
        group: The process group; the default group when None.

    Raises:
        TypeError: ``data`` is not a tensor, or ``op='mean'`` on an integer tensor.
        ValueError: ``op`` is not a known operation.

    Example:
        >>> import torch
        >>> loss = torch.tensor([2.0])
        >>> all_reduce(loss, op='mean')  # alone: unchanged
        >>> loss
        tensor([2.])
    """
    _check_tensor(data)
    torch_op = _torch_reduce_op(op)
    is_mean = isinstance(op, str) and op.lower() == "mean"
    if is_mean and not (data.is_floating_point() or data.is_complex()):
        raise TypeError(
            f"op='mean' needs a floating-point tensor, got dtype {data.dtype}; "
            "convert it with data.float() or reduce with op='sum'"
        )
    world_size = get_world_size(group)
    if world_size == 1:
        return
    work = data.to(comm_device_for(data, group)).contiguous()
    dist.all_reduce(work, op=torch_op, group=group)
    if is_mean:
        work.div_(world_size)
    if work is not data:
        data.copy_(work)


def all_gather(data: torch.Tensor, group: dist.ProcessGroup | None = None) -> list[torch.Tensor]:
    """Gather ``data`` from every process of ``group``.

    Every process must pass a tensor of the same shape and dtype.

    Args:
        data: This process's tensor.
        group: The process group; the default group when None.

    Returns:
        One tensor per rank, in rank order, on ``data``'s device; ``[data]`` when
        not distributed.

    Raises:
        TypeError: ``data`` is not a tensor.
    """
    _check_tensor(data)
    if get_world_size(group) == 1:
        return [data]
    work = data.to(comm_device_for(data, group)).contiguous()
    gathered = [torch.empty_like(work) for _ in range(get_world_size(group))]
    dist.all_gather(gathered, work, group=group)
    return [tensor.to(data.device) for tensor in gathered]


def _check_src(src: object) -> int:
    if isinstance(src, bool) or not isinstance(src, int):
        raise TypeError(f"`src` must be an int rank, got {type(src).__name__}: {src!r}")
    if is_distributed():
        world_size = dist.get_world_size()
        if not 0 <= src < world_size:
            raise ValueError(
                f"`src` must be a global rank in [0, {world_size - 1}], got {src}; "
                "with a sub-group, pass the rank in the default group"
            )
    elif src != 0:
        raise ValueError(f"`src` must be 0 when not distributed (one process), got {src}")
    return src


def broadcast(data: torch.Tensor, src: int = 0, group: dist.ProcessGroup | None = None) -> None:
    """Copy ``data`` from rank ``src`` to every process of ``group``, in place.

    Args:
        data: The tensor to send (on ``src``) or to overwrite (elsewhere); every
            process passes one of the same shape and dtype.
        src: The global rank that sends.
        group: The process group; the default group when None.

    Raises:
        TypeError: ``data`` is not a tensor or ``src`` is not an int.
        ValueError: ``src`` is not a rank of the job.
    """
    _check_tensor(data)
    _check_src(src)
    if get_world_size(group) == 1:
        return
    work = data.to(comm_device_for(data, group)).contiguous()
    dist.broadcast(work, src=src, group=group)
    if work is not data:
        data.copy_(work)


def broadcast_object_list(
    data: list[Any], src: int = 0, group: dist.ProcessGroup | None = None
) -> None:
    """Copy the picklable objects in ``data`` from rank ``src`` to every process, in place.

    Args:
        data: A list of the same length on every process; its items are replaced
            by ``src``'s items.
        src: The global rank that sends.
        group: The process group; the default group when None.

    Raises:
        TypeError: ``data`` is not a list or ``src`` is not an int.
        ValueError: ``src`` is not a rank of the job.

    Example:
        >>> config = [{'lr': 0.1}]
        >>> broadcast_object_list(config)  # alone: unchanged
        >>> config
        [{'lr': 0.1}]
    """
    if not isinstance(data, list):
        raise TypeError(
            f"`data` must be a list (it is filled in place), got {type(data).__name__}; "
            "wrap a single object as [obj]"
        )
    _check_src(src)
    if get_world_size(group) == 1:
        return
    dist.broadcast_object_list(data, src=src, group=group)


def all_gather_object(data: Any, group: dist.ProcessGroup | None = None) -> list[Any]:
    """Gather a picklable object from every process of ``group``.

    Args:
        data: This process's object.
        group: The process group; the default group when None.

    Returns:
        One object per rank, in rank order; ``[data]`` when not distributed.
    """
    world_size = get_world_size(group)
    if world_size == 1:
        return [data]
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, data, group=group)
    return gathered


def sync_random_seed(group: dist.ProcessGroup | None = None) -> int:
    """Return a random seed that is the same on every process of ``group``.

    Rank 0 draws the seed from the operating system's entropy (no global RNG is
    consumed, so seeded runs stay reproducible) and broadcasts it. Samplers use
    it to shuffle identically on every rank when no seed was configured.

    Args:
        group: The process group; the default group when None.

    Returns:
        An int in ``[0, 2**31)``.
    """
    seed = secrets.randbelow(2**31)
    if get_world_size(group) == 1:
        return seed
    src = 0 if group is None else dist.get_global_rank(group, 0)
    holder = torch.tensor([seed if get_rank(group) == 0 else 0], dtype=torch.int64)
    broadcast(holder, src=src, group=group)
    return int(holder.item())
