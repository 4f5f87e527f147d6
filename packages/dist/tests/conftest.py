"""Fixtures for the camshaft.dist tests: helpers, real process groups, a launcher.

* ``dist_helpers``: the ``_dist_helpers`` module (toy models, the optimizer-wrapper
  double), imported by path so that test files never import each other.
* ``process_group``: a one-process gloo group in the test process itself, destroyed
  afterwards; enough for construction, bad-input and logging tests.
* ``run_distributed``: runs a module-level ``worker(rank, world_size, helpers)`` of
  the calling test file in ``world_size`` real processes (gloo on CPU) and returns
  their results, one per rank. The job runs in its own session with a time limit and
  is killed as a whole when it overruns, so a hang fails the test.
"""

from __future__ import annotations

import inspect
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch.distributed as dist

HELPERS_PATH = Path(__file__).with_name("_dist_helpers.py")


def _load_helpers() -> ModuleType:
    import importlib.util

    name = "_camshaft_dist_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HELPERS_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def dist_helpers() -> ModuleType:
    """The ``_dist_helpers`` module."""
    return _load_helpers()


@pytest.fixture
def process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A gloo process group of one process (this one), torn down after the test."""
    helpers = _load_helpers()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(helpers.free_port()))
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)
    dist.init_process_group("gloo", init_method="env://")
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(
    worker: Callable[..., Any],
    world_size: int,
    timeout: float,
    preload: tuple[str, ...],
    out_dir: Path,
) -> list[Any]:
    test_file = inspect.getfile(worker)
    command = [
        sys.executable,
        str(HELPERS_PATH),
        test_file,
        worker.__name__,
        str(world_size),
        str(out_dir),
        str(timeout),
        *preload,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, so a kill reaches the workers
    )
    try:
        output, _ = process.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{worker.__name__} hung for {timeout + 30}s and was killed:\n{output}")
    if process.returncode != 0:
        pytest.fail(f"{worker.__name__} failed (exit {process.returncode}):\n{output}")
    results = []
    for rank in range(world_size):
        with (out_dir / f"rank{rank}.pkl").open("rb") as stream:
            results.append(pickle.load(stream))
    return results


@pytest.fixture
def run_distributed(tmp_path: Path) -> Callable[..., list[Any]]:
    """Return ``run(worker, world_size=2, timeout=60, preload=()) -> [rank 0's result, ...]``.

    ``preload`` names modules to import once before the workers are forked (for
    example ``'torch._dynamo'``, which DDP imports), so they do not each pay for it.
    """

    def run(
        worker: Callable[..., Any],
        world_size: int = 2,
        timeout: float = 60,
        preload: tuple[str, ...] = (),
    ) -> list[Any]:
        out_dir = tmp_path / f"dist_{worker.__name__}"
        out_dir.mkdir()
        return _run(worker, world_size, timeout, preload, out_dir)

    return run
