"""Tests for convert_sync_batchnorm / revert_sync_batchnorm."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from camshaft.model import convert_sync_batchnorm, revert_sync_batchnorm

_CASES = [
    (nn.BatchNorm1d, (6, 4)),
    (nn.BatchNorm1d, (6, 4, 5)),
    (nn.BatchNorm2d, (6, 4, 5, 3)),
    (nn.BatchNorm3d, (6, 4, 3, 2, 2)),
]


def _trained(bn_cls: type[nn.Module], shape: tuple[int, ...], **kwargs: object) -> nn.Module:
    """A batch norm with non-trivial affine parameters and running statistics."""
    torch.manual_seed(0)
    bn = bn_cls(shape[1], **kwargs)
    bn.train()
    for _ in range(3):
        bn(torch.randn(shape) * 3 + 1)
    if getattr(bn, "affine", False):
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    return bn


def _has_sync(model: nn.Module) -> bool:
    return any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


@pytest.mark.parametrize(("bn_cls", "shape"), _CASES)
def test_round_trip_gives_identical_outputs_in_eval(
    bn_cls: type[nn.Module], shape: tuple[int, ...]
) -> None:
    model = nn.Sequential(nn.Identity(), _trained(bn_cls, shape)).eval()
    inputs = torch.randn(shape)
    expected = model(inputs)

    synced = convert_sync_batchnorm(copy.deepcopy(model))
    assert isinstance(synced[1], nn.SyncBatchNorm)
    reverted = revert_sync_batchnorm(synced)
    assert not _has_sync(reverted)
    assert isinstance(reverted[1], nn.modules.batchnorm._BatchNorm)
    assert torch.equal(reverted(inputs), expected)


@pytest.mark.parametrize(("bn_cls", "shape"), _CASES)
def test_running_stats_and_params_are_carried_exactly(
    bn_cls: type[nn.Module], shape: tuple[int, ...]
) -> None:
    original = _trained(bn_cls, shape)
    reference = copy.deepcopy(original)
    sync = convert_sync_batchnorm(original)
    sync.weight.requires_grad_(False)
    layer = revert_sync_batchnorm(sync)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(layer, name), getattr(reference, name)), name
    assert int(layer.num_batches_tracked) == 3
    # shared, not copied: an optimizer built over the sync layer still reaches it
    assert layer.weight is sync.weight
    assert not layer.weight.requires_grad
    assert layer.bias.requires_grad
    assert (layer.eps, layer.momentum, layer.affine, layer.track_running_stats) == (
        reference.eps,
        reference.momentum,
        True,
        True,
    )


def test_reverted_layer_trains_like_the_original_batchnorm() -> None:
    reference = _trained(nn.BatchNorm2d, (4, 3, 5, 5), momentum=0.3, eps=1e-3)
    layer = revert_sync_batchnorm(convert_sync_batchnorm(copy.deepcopy(reference)))
    layer.train()
    inputs = torch.randn(4, 3, 5, 5)
    assert torch.equal(layer(inputs), reference(inputs))
    assert torch.equal(layer.running_mean, reference.running_mean)
    assert torch.equal(layer.running_var, reference.running_var)
    assert int(layer.num_batches_tracked) == 4


def test_nested_layers_are_all_reverted_and_the_root_kept() -> None:
    model = nn.Module()
    model.stem = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    model.blocks = nn.ModuleList([nn.Sequential(nn.BatchNorm1d(2)), nn.ReLU()])
    model.heads = nn.ModuleDict({"cls": nn.BatchNorm3d(2)})
    keys = list(model.state_dict())

    synced = convert_sync_batchnorm(model)
    assert isinstance(synced.blocks[0][0], nn.SyncBatchNorm)
    reverted = revert_sync_batchnorm(synced)
    assert reverted is model
    assert not _has_sync(reverted)
    assert list(reverted.state_dict()) == keys
    assert isinstance(reverted.heads["cls"], nn.modules.batchnorm._BatchNorm)
    assert isinstance(reverted.stem[0], nn.Conv2d)


def test_a_shared_sync_layer_becomes_one_shared_layer() -> None:
    shared = nn.SyncBatchNorm(2)
    model = nn.ModuleList([nn.Sequential(shared), shared])
    reverted = revert_sync_batchnorm(model)
    assert not _has_sync(reverted)
    assert reverted[0][0] is reverted[1]


def test_root_sync_layer_returns_a_new_module_with_its_flags() -> None:
    sync = nn.SyncBatchNorm(3, momentum=None)
    sync.eval()
    sync.qconfig = "marker"  # type: ignore[assignment]
    layer = revert_sync_batchnorm(sync)
    assert layer is not sync
    assert not isinstance(layer, nn.SyncBatchNorm)
    assert not layer.training
    assert layer.momentum is None
    assert layer.qconfig == "marker"


def test_training_flag_is_per_layer() -> None:
    model = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2)))
    model.train()
    model[1].eval()
    reverted = revert_sync_batchnorm(model)
    assert reverted.training
    assert reverted[0].training
    assert not reverted[1].training


def test_layers_without_affine_or_running_stats() -> None:
    reference = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    layer = revert_sync_batchnorm(convert_sync_batchnorm(copy.deepcopy(reference)))
    assert layer.weight is None
    assert layer.running_mean is None
    assert not any(t.is_meta for t in [*layer.parameters(), *layer.buffers()])
    inputs = torch.randn(4, 3, 2, 2)
    assert torch.equal(layer.eval()(inputs), reference.eval()(inputs))


def test_dtype_is_kept() -> None:
    model = nn.Sequential(nn.BatchNorm2d(3)).double()
    reverted = revert_sync_batchnorm(convert_sync_batchnorm(model))
    assert all(t.dtype == torch.float64 for t in reverted.parameters())
    assert reverted[0].running_var.dtype == torch.float64
    assert reverted.eval()(torch.randn(2, 3, 4, 4, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.gpu
def test_device_is_kept_on_cuda() -> None:
    model = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3))).cuda()
    reverted = revert_sync_batchnorm(model)
    assert all(t.is_cuda for t in [*reverted.parameters(), *reverted.buffers()])
    assert reverted.eval()(torch.randn(2, 3, 4, 4, device="cuda")).is_cuda


def test_convert_accepts_mmengine_positional_implementation() -> None:
    layer = convert_sync_batchnorm(nn.BatchNorm1d(2), "torch")
    assert isinstance(layer, nn.SyncBatchNorm)


# --- bad input ------------------------------------------------------------------------


def test_reverted_layer_refuses_one_dimensional_input() -> None:
    layer = revert_sync_batchnorm(nn.SyncBatchNorm(3))
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got 1 \(shape \(3,\)\)"):
        layer(torch.randn(3))


@pytest.mark.parametrize("function", [revert_sync_batchnorm, convert_sync_batchnorm])
def test_non_module_is_refused(function: object) -> None:
    with pytest.raises(TypeError, match=r"`module` must be a torch\.nn\.Module, got list"):
        function([nn.BatchNorm1d(2)])  # type: ignore[operator]


def test_convert_refuses_other_implementations() -> None:
    with pytest.raises(ValueError, match="`implementation` must be 'torch', got 'mmcv'"):
        convert_sync_batchnorm(nn.BatchNorm1d(2), implementation="mmcv")
