"""MODEL_WRAPPERS and is_model_wrapper: what counts as a wrapper, and a light import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

import camshaft.dist as cd
from camshaft.dist import MODEL_WRAPPERS, is_model_wrapper
from camshaft.registry import Registry, RegistryError


def test_registry_holds_camshaft_and_torch_wrappers() -> None:
    for name in (
        "MMDistributedDataParallel",
        "MMSeparateDistributedDataParallel",
        "MMFullyShardedDataParallel",
    ):
        assert MODEL_WRAPPERS.get(name) is getattr(cd, name)
    assert MODEL_WRAPPERS.get("DistributedDataParallel") is DistributedDataParallel
    assert MODEL_WRAPPERS.get("DataParallel") is DataParallel


def test_torch_fsdp_is_registered_on_first_lookup() -> None:
    from torch.distributed.fsdp import FullyShardedDataParallel

    assert MODEL_WRAPPERS.get("FullyShardedDataParallel") is FullyShardedDataParallel
    assert MODEL_WRAPPERS.get("camshaft.FullyShardedDataParallel") is FullyShardedDataParallel


def test_plain_modules_are_not_wrappers() -> None:
    assert not is_model_wrapper(nn.Linear(2, 2))
    assert is_model_wrapper(DataParallel(nn.Linear(2, 2)))


def test_wrappers_of_downstream_registries_and_subclasses_count() -> None:
    downstream = Registry("model wrapper", parent=MODEL_WRAPPERS, scope="test_dist_downstream")

    @downstream.register_module()
    class MyWrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    class MyDataParallel(DataParallel):
        pass

    assert is_model_wrapper(MyWrapper(nn.Linear(2, 2)))
    assert is_model_wrapper(MyDataParallel(nn.Linear(2, 2)))
    assert not is_model_wrapper(MyWrapper(nn.Linear(2, 2)), registry=Registry("x", scope="x_only"))
    assert MODEL_WRAPPERS.build(dict(type="test_dist_downstream.MyWrapper", module=nn.ReLU()))


def test_an_unregistered_wrapper_type_is_an_error_naming_it() -> None:
    with pytest.raises(RegistryError, match="NotAWrapper"):
        MODEL_WRAPPERS.build(dict(type="NotAWrapper"), default_args={"module": nn.Linear(2, 2)})


def test_registry_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="`registry` must be a Registry"):
        is_model_wrapper(nn.Linear(2, 2), registry="MODEL_WRAPPERS")  # type: ignore[arg-type]


def test_import_does_not_load_torch_fsdp() -> None:
    code = "import sys, camshaft.dist; print('torch.distributed.fsdp' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert output.strip() == "False"
