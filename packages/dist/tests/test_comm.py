"""Rank helpers and collectives: the single-process answers, bad input, and two real ranks."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest
import torch

import camshaft.dist as cd

# --- one process, no group --------------------------------------------------------


def test_rank_helpers_answer_for_a_single_process() -> None:
    assert not cd.is_distributed()
    assert (cd.get_rank(), cd.get_world_size(), cd.get_dist_info()) == (0, 1, (0, 1))
    assert (cd.get_local_rank(), cd.get_local_size()) == (0, 1)
    assert cd.is_main_process()
    assert cd.get_backend() is None
    assert cd.get_comm_device() == torch.device("cpu")


def test_master_only_runs_on_the_main_process_and_keeps_the_name() -> None:
    @cd.master_only
    def report(value: int) -> int:
        """Docstring kept."""
        return value * 2

    assert report(21) == 42
    assert report.__name__ == "report"
    assert report.__doc__ == "Docstring kept."


def test_collectives_leave_data_alone_without_a_group() -> None:
    tensor = torch.tensor([1.0, 2.0])
    cd.all_reduce(tensor, op="mean")
    cd.broadcast(tensor)
    cd.barrier()
    assert torch.equal(tensor, torch.tensor([1.0, 2.0]))
    assert cd.all_gather(tensor)[0] is tensor
    objects = [{"a": 1}]
    cd.broadcast_object_list(objects)
    assert objects == [{"a": 1}]
    assert cd.all_gather_object("x") == ["x"]
    seed = cd.sync_random_seed()
    assert isinstance(seed, int)
    assert 0 <= seed < 2**31


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: cd.all_reduce([1.0]), TypeError, "must be a torch.Tensor"),
        (lambda: cd.all_reduce(torch.ones(1), op="average"), ValueError, "'average'"),
        (lambda: cd.all_reduce(torch.ones(1), op=3), TypeError, "`op`"),
        (lambda: cd.all_reduce(torch.ones(1, dtype=torch.int64), op="mean"), TypeError, "int64"),
        (lambda: cd.all_gather(3), TypeError, "must be a torch.Tensor"),
        (lambda: cd.broadcast(torch.ones(1), src=1), ValueError, "`src` must be 0"),
        (lambda: cd.broadcast(torch.ones(1), src="0"), TypeError, "`src`"),
        (lambda: cd.broadcast_object_list(("a",)), TypeError, "must be a list"),
    ],
)
def test_collectives_reject_bad_input(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_reduce_op_names_are_case_insensitive_and_torch_ops_pass() -> None:
    tensor = torch.ones(2)
    cd.all_reduce(tensor, op="MAX")
    cd.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    assert torch.equal(tensor, torch.ones(2))


def test_helpers_report_a_one_process_group(process_group: None) -> None:
    assert cd.is_distributed()
    assert cd.get_dist_info() == (0, 1)
    assert cd.get_backend() == "gloo"
    assert cd.get_comm_device() == torch.device("cpu")


# --- two real ranks ------------------------------------------------------------------


def comm_worker(rank: int, world_size: int, h: ModuleType) -> dict[str, Any]:
    out: dict[str, Any] = {"dist_info": cd.get_dist_info(), "local_rank": cd.get_local_rank()}
    out["local_size"] = cd.get_local_size()
    out["main"] = cd.is_main_process()
    out["master_only"] = cd.master_only(lambda: rank)()

    summed = torch.tensor([float(rank + 1), 10.0])
    cd.all_reduce(summed)
    out["sum"] = summed
    mean = torch.tensor([float(rank)], dtype=torch.float64)
    cd.all_reduce(mean, op="mean")
    out["mean"] = mean
    biggest = torch.tensor([rank * 5], dtype=torch.int64)
    cd.all_reduce(biggest, op="max")
    out["max"] = biggest
    transposed = torch.arange(6.0).reshape(2, 3).t()  # not contiguous: moved and copied back
    cd.all_reduce(transposed)
    out["transposed"] = transposed
    out["gathered"] = cd.all_gather(torch.full((2,), float(rank)))
    sent = torch.full((3,), float(rank + 7))
    cd.broadcast(sent, src=1)
    out["broadcast"] = sent

    objects: list[Any] = [{"rank": rank, "text": "hello" * rank}, None]
    cd.broadcast_object_list(objects, src=0)
    out["objects"] = objects
    out["gathered_objects"] = cd.all_gather_object({"rank": rank, "items": list(range(rank))})
    out["seeds"] = cd.all_gather_object(cd.sync_random_seed())
    cd.barrier()
    return out


def test_collectives_agree_across_two_ranks(run_distributed: Any) -> None:
    results = run_distributed(comm_worker)
    for rank, out in enumerate(results):
        assert out["dist_info"] == (rank, 2)
        assert out["local_rank"] == rank
        assert out["local_size"] == 2
        assert out["main"] is (rank == 0)
        assert out["master_only"] == (0 if rank == 0 else None)
        assert torch.equal(out["sum"], torch.tensor([3.0, 20.0]))
        assert torch.equal(out["mean"], torch.tensor([0.5], dtype=torch.float64))
        assert torch.equal(out["max"], torch.tensor([5]))
        assert torch.equal(out["transposed"], torch.arange(6.0).reshape(2, 3).t() * 2)
        assert [t.tolist() for t in out["gathered"]] == [[0.0, 0.0], [1.0, 1.0]]
        assert torch.equal(out["broadcast"], torch.full((3,), 8.0))
        assert out["objects"] == [{"rank": 0, "text": ""}, None]
        assert out["gathered_objects"] == [{"rank": 0, "items": []}, {"rank": 1, "items": [0]}]
    seeds = [out["seeds"] for out in results]
    assert seeds[0] == seeds[1]
    assert seeds[0][0] == seeds[0][1]


def hanging_worker(rank: int, world_size: int, h: ModuleType) -> None:
    if rank == 0:
        cd.barrier()  # rank 1 never joins: it is stuck elsewhere
    else:
        time.sleep(300)


def test_a_hung_collective_fails_instead_of_blocking(run_distributed: Any) -> None:
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="hanging_worker failed"):
        run_distributed(hanging_worker, timeout=3)
    assert time.monotonic() - start < 60
