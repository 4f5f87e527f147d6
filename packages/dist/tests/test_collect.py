"""collect_results: dataset order, padding dropped, three transports, bad input."""

from __future__ import annotations

import os
import shutil
import tempfile
from types import ModuleType
from typing import Any

import pytest
import torch
from torch.utils.data import DistributedSampler

from camshaft.dist import barrier, broadcast_object_list, collect_results


def test_one_process_keeps_the_first_size_results() -> None:
    assert collect_results(["a", "b", "c"], size=2) == ["a", "b"]
    assert collect_results([], size=0) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(results=("a",), size=1), TypeError, "`results` must be a list"),
        (dict(results=["a"], size=1.0), TypeError, "`size` must be an int"),
        (dict(results=["a"], size=True), TypeError, "`size` must be an int"),
        (dict(results=["a"], size=-1), ValueError, ">= 0"),
        (dict(results=["a"], size=2), ValueError, r"`size` \(2\) is larger .* \(1\)"),
        (dict(results=["a"], size=1, device="cuda"), ValueError, "'cpu' or 'gpu'"),
        (dict(results=["a"], size=1, device="gpu", tmpdir="/tmp/x"), ValueError, "tmpdir"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        collect_results(**kwargs)


def collect_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    dataset = list(range(5))  # 5 samples on 2 ranks: DistributedSampler pads one
    indices = list(DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False))
    results = [{"index": i, "score": torch.tensor(float(i))} for i in indices]
    out: dict[str, Any] = {"indices": indices}
    out["cpu"] = collect_results(results, size=len(dataset))
    out["gpu"] = collect_results(results, size=len(dataset), device="gpu")
    shared = [tempfile.mkdtemp() if rank == 0 else ""]
    broadcast_object_list(shared)  # one directory for both ranks, as on a shared disk
    out["files"] = collect_results(results, size=len(dataset), tmpdir=f"{shared[0]}/parts")
    barrier()
    out["left_in_tmpdir"] = sorted(os.listdir(f"{shared[0]}/parts"))
    barrier()
    if rank == 0:
        shutil.rmtree(shared[0])
    # Uneven lists (a sampler without padding) still come back in order.
    out["uneven"] = collect_results(list(range(rank, 5, world_size)), size=5)
    try:
        collect_results(results, size=7)
    except ValueError as error:
        out["too_big"] = str(error)
    return out


def test_two_ranks_collect_in_dataset_order_without_padding(run_distributed: Any) -> None:
    rank0, rank1 = run_distributed(collect_worker)
    assert rank0["indices"] == [0, 2, 4]
    assert rank1["indices"] == [1, 3, 0]
    for key in ("cpu", "gpu", "files"):
        assert [item["index"] for item in rank0[key]] == [0, 1, 2, 3, 4], key
        assert rank1[key] is None
    assert rank0["uneven"] == [0, 1, 2, 3, 4]
    assert rank0["left_in_tmpdir"] == []
    assert rank1["left_in_tmpdir"] == []
    # Every rank raises, not only rank 0, so none is left waiting in a collective.
    for out in (rank0, rank1):
        assert "`size` (7) is larger than the number of results gathered from 2" in out["too_big"]
