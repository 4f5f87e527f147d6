"""init_dist: torchrun end to end, the slurm and mpi environments, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

import camshaft.dist as cd
from camshaft.dist import LaunchError, init_dist
from camshaft.dist._launch import first_slurm_host

TORCH_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
SLURM_VARS = (
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "SLURM_NODELIST",
    "SLURM_JOB_NODELIST",
)
MPI_VARS = ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No launcher variables set; whatever init_dist writes is undone afterwards."""
    for name in TORCH_VARS + SLURM_VARS + MPI_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def fake_init(clean_env: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record init_process_group calls instead of making them."""
    calls: list[dict[str, Any]] = []
    clean_env.setattr(dist, "init_process_group", lambda **kwargs: calls.append(kwargs))
    return calls


def torchrun_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    values = dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    for name, value in {**values, "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)


def test_pytorch_launcher_joins_a_group(clean_env: pytest.MonkeyPatch, dist_helpers: Any) -> None:
    torchrun_env(clean_env, dist_helpers.free_port())
    init_dist("pytorch", backend="gloo", timeout=30)
    try:
        assert cd.is_distributed()
        assert cd.get_dist_info() == (0, 1)
        assert cd.get_backend() == "gloo"
        with pytest.raises(LaunchError, match=r"already exists .* call init_dist once"):
            init_dist("pytorch", backend="gloo")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "missing", ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]
)
def test_a_missing_torchrun_variable_is_named(clean_env: pytest.MonkeyPatch, missing: str) -> None:
    torchrun_env(clean_env, 29500)
    clean_env.delenv(missing)
    with pytest.raises(LaunchError, match=f"needs the environment variable {missing}.*torchrun"):
        init_dist("pytorch", backend="gloo")


@pytest.mark.parametrize(
    ("name", "value"), [("RANK", "zero"), ("WORLD_SIZE", "0"), ("MASTER_PORT", "70000")]
)
def test_malformed_variables_are_named(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    torchrun_env(clean_env, 29500)
    clean_env.setenv(name, value)
    with pytest.raises(LaunchError, match=name):
        init_dist("pytorch", backend="gloo")


def test_slurm_variables_become_torch_variables(
    fake_init: list[dict[str, Any]], clean_env: Any
) -> None:
    for name, value in dict(SLURM_PROCID="5", SLURM_NTASKS="8", SLURM_LOCALID="1").items():
        clean_env.setenv(name, value)
    clean_env.setenv("SLURM_NODELIST", "gpu[017-018,020],login1")
    init_dist("slurm", backend="gloo", timeout=12.5)
    expected = dict(
        RANK="5", WORLD_SIZE="8", LOCAL_RANK="1", MASTER_ADDR="gpu017", MASTER_PORT="29500"
    )
    assert {name: os.environ[name] for name in expected} == expected
    [call] = fake_init
    assert call["backend"] == "gloo"
    assert call["init_method"] == "env://"
    assert call["timeout"].total_seconds() == 12.5


def test_slurm_port_argument_wins_and_master_addr_is_kept(fake_init: Any, clean_env: Any) -> None:
    for name, value in dict(SLURM_PROCID="0", SLURM_NTASKS="2", SLURM_JOB_NODELIST="n1").items():
        clean_env.setenv(name, value)
    clean_env.setenv("MASTER_ADDR", "10.0.0.7")
    clean_env.setenv("MASTER_PORT", "1234")
    init_dist("slurm", backend="gloo", port=4321)
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("10.0.0.7", "4321")
    assert "port" not in fake_init[0]


def test_slurm_without_a_node_list_names_it(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLURM_PROCID", "0")
    clean_env.setenv("SLURM_NTASKS", "1")
    with pytest.raises(LaunchError, match=r"SLURM_NODELIST.*srun"):
        init_dist("slurm", backend="gloo")


def test_mpi_variables_become_torch_variables(fake_init: Any, clean_env: Any) -> None:
    for name, value in dict(zip(MPI_VARS, ["3", "4", "1"], strict=True)).items():
        clean_env.setenv(name, value)
    with pytest.raises(LaunchError, match=r"MASTER_ADDR.*mpirun"):
        init_dist("mpi", backend="gloo")
    clean_env.setenv("MASTER_ADDR", "10.1.1.1")
    init_dist("mpi", backend="gloo")
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_PORT"]) == (
        "3",
        "4",
        "29500",
    )


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [
        ("node7", "node7"),
        ("a1,b2", "a1"),
        ("gpu[003-006,9],cpu1", "gpu003"),
        ("r[1-2]-n[05,7]", "r1-n05"),
    ],
)
def test_first_slurm_host(nodelist: str, host: str) -> None:
    assert first_slurm_host(nodelist) == host


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(launcher="torchrun"), ValueError, r"one of \['pytorch', 'slurm', 'mpi'\]"),
        (dict(launcher="none"), ValueError, "do not call init_dist"),
        (dict(launcher="pytorch", backend=3), TypeError, "`backend`"),
        (
            dict(launcher="pytorch", backend="gloo", timeout=0),
            ValueError,
            "`timeout` must be positive",
        ),
        (
            dict(launcher="pytorch", backend="gloo", timeout="60"),
            TypeError,
            "`timeout` must be seconds",
        ),
    ],
)
def test_bad_arguments_are_refused(
    clean_env: pytest.MonkeyPatch, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        init_dist(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_nccl_without_cuda_says_to_use_gloo(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="pass backend='gloo'"):
        init_dist("pytorch", backend="nccl")


SMOKE_SCRIPT = """
import json, os, sys
import torch
import torch.distributed as dist
from camshaft.dist import all_reduce, get_dist_info, get_local_rank, init_dist

init_dist("pytorch", backend=None if torch.cuda.device_count() >= 2 else "gloo", timeout=60)
try:
    rank, world_size = get_dist_info()
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor([float(rank + 1)], device=device)
    all_reduce(total)
    result = dict(rank=rank, world_size=world_size, local_rank=get_local_rank(), total=total.item())
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as stream:
        json.dump(result, stream)
finally:
    dist.destroy_process_group()
"""


def test_torchrun_smoke(tmp_path: Path, dist_helpers: Any) -> None:
    script = tmp_path / "smoke.py"
    script.write_text(textwrap.dedent(SMOKE_SCRIPT))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port",
        str(dist_helpers.free_port()),
        str(script),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"torchrun did not finish in 120 s:\n{error.stdout}\n{error.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [(r["rank"], r["world_size"], r["local_rank"]) for r in results] == [
        (0, 2, 0),
        (1, 2, 1),
    ]
    assert [r["total"] for r in results] == [3.0, 3.0]
