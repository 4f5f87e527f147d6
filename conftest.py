"""Repository-wide pytest setup: the ``gpu`` marker gate.

Tests that need CUDA carry ``@pytest.mark.gpu``. Where CUDA is absent they are
skipped with a reason, so CPU CI stays green; ``nox -s gpu`` selects exactly them
with ``-m gpu`` and refuses to run at all on a machine without CUDA.
torch is imported only when a gpu-marked test was collected, so the registry's
torch-free test run never pays for it.
"""

from __future__ import annotations

import pytest


def _cuda_skip_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "needs torch with CUDA; torch is not installed"
    if not torch.cuda.is_available():
        return "needs a CUDA device; none is available (run `nox -s gpu` on a GPU machine)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = _cuda_skip_reason()
    if reason is None:
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=reason))
