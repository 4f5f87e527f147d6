"""Gather per-rank evaluation results into one list in dataset order.

During distributed evaluation each rank sees every ``world_size``-th sample: rank
``r`` gets indices ``r, r + W, r + 2W, ...`` (torch's ``DistributedSampler`` without
shuffling, and MMEngine-style samplers). When ``len(dataset)`` is not a multiple of
``W``, ``DistributedSampler`` pads the last round with repeated samples so every
rank has the same count. :func:`collect_results` interleaves the ranks' lists back
into dataset order and cuts the padding off with ``size``.

Three ways to move the results to rank 0:

* ``device='cpu'`` (default): through CPU memory over a gloo group (the default
  group when its backend already handles CPU tensors, else a gloo group created
  once and reused), so results never occupy GPU memory;
* ``device='gpu'``: through the default group as it is (NCCL: GPU memory);
* ``device='cpu'`` with ``tmpdir``: through pickle files in a directory that every
  rank can see (a shared file system across machines); the part files are removed
  afterwards.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from camshaft.dist._comm import all_reduce, barrier
from camshaft.dist._utils import comm_device_for, get_dist_info, get_world_size

__all__ = ["collect_results"]

# (default group it was made for, gloo group): rebuilt when the default group changes.
_cpu_group: tuple[object, dist.ProcessGroup] | None = None


def collect_results(
    results: list[Any],
    size: int,
    device: str = "cpu",
    tmpdir: str | os.PathLike[str] | None = None,
) -> list[Any] | None:
    """Gather every rank's ``results`` on rank 0, in dataset order, without padding.

    Every rank must call it. Rank ``r``'s list is taken to hold the results of
    samples ``r, r + W, r + 2W, ...``; the lists are interleaved round-robin
    (ranks with a shorter list simply run out) and the first ``size`` items kept.

    Args:
        results: This rank's results, one item per sample.
        size: The number of samples in the dataset, i.e. how many items to keep.
        device: ``'cpu'`` to gather through CPU memory, ``'gpu'`` through the
            default process group's device.
        tmpdir: With ``device='cpu'``, gather through pickle files in this
            directory instead (it must be visible to every rank; it is created if
            missing). Must be None with ``device='gpu'``.

    Returns:
        On rank 0, the ``size`` results in dataset order; None on other ranks. When
        not distributed, ``results[:size]``.

    Raises:
        TypeError: ``results`` is not a list or ``size`` is not an int.
        ValueError: ``size`` is negative or larger than the number of results
            gathered from all ranks, ``device`` is unknown, or ``tmpdir`` is given
            with ``device='gpu'``.

    Example:
        >>> collect_results(['a', 'b', 'c'], size=2)  # one process
        ['a', 'b']
    """
    if not isinstance(results, list):
        raise TypeError(
            f"`results` must be a list with one item per sample, got {type(results).__name__}"
        )
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"`size` must be an int (the dataset length), got {size!r}")
    if size < 0:
        raise ValueError(f"`size` must be >= 0 (the dataset length), got {size}")
    if device not in ("cpu", "gpu"):
        raise ValueError(f"`device` must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu" and tmpdir is not None:
        raise ValueError(
            f"`tmpdir` is only used with device='cpu', got tmpdir={str(tmpdir)!r} with "
            "device='gpu'; drop tmpdir or pass device='cpu'"
        )
    rank, world_size = get_dist_info()
    _check_size(size, _total_count(len(results)), world_size)
    if world_size == 1:
        return results[:size]
    if tmpdir is not None:
        parts = _gather_through_files(results, Path(tmpdir), rank, world_size)
    else:
        group = _cpu_gloo_group() if device == "cpu" else None
        gathered: list[Any] | None = [None] * world_size if rank == 0 else None
        dist.gather_object(results, gathered, dst=0, group=group)
        parts = gathered
    if parts is None:
        return None
    return _interleave(parts)[:size]


def _total_count(count: int) -> int:
    """Sum ``count`` over all ranks, so every rank can validate ``size`` alike."""
    if get_world_size() == 1:
        return count
    total = torch.tensor([count], dtype=torch.int64)
    all_reduce(total, op="sum")
    return int(total.item())


def _check_size(size: int, total: int, world_size: int) -> None:
    if size > total:
        raise ValueError(
            f"`size` ({size}) is larger than the number of results gathered from "
            f"{world_size} rank(s) ({total}); pass the dataset length, and check that "
            "every rank returned one result per sample it was given"
        )


def _interleave(parts: list[list[Any]]) -> list[Any]:
    """Round-robin over the ranks' lists: rank 0's first, rank 1's first, ..."""
    ordered: list[Any] = []
    longest = max((len(part) for part in parts), default=0)
    for index in range(longest):
        ordered.extend(part[index] for part in parts if index < len(part))
    return ordered


def _cpu_gloo_group() -> dist.ProcessGroup | None:
    """A group that gathers objects through CPU memory; None means the default group."""
    global _cpu_group
    probe = torch.empty(0)
    if comm_device_for(probe).type == "cpu":
        return None  # the default backend takes CPU tensors already
    default_group = dist.group.WORLD
    if _cpu_group is None or _cpu_group[0] is not default_group:
        _cpu_group = (default_group, dist.new_group(backend="gloo"))
    return _cpu_group[1]


def _gather_through_files(
    results: list[Any], tmpdir: Path, rank: int, world_size: int
) -> list[list[Any]] | None:
    if rank == 0:
        tmpdir.mkdir(parents=True, exist_ok=True)
    barrier()
    part = tmpdir / f"part_{rank}.pkl"
    # Written under a temporary name and renamed, so a reader never sees half a file.
    handle, temp_name = tempfile.mkstemp(dir=tmpdir, prefix=f".part_{rank}.", suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        pickle.dump(results, stream, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temp_name, part)
    barrier()
    parts: list[list[Any]] | None = None
    if rank == 0:
        parts = []
        for index in range(world_size):
            path = tmpdir / f"part_{index}.pkl"
            with path.open("rb") as stream:
                # Files written a moment ago by this job's own ranks, not outside input.
                parts.append(pickle.load(stream))
    barrier()
    part.unlink()
    return parts
