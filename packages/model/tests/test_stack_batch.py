"""stack_batch: pads all but the first dimension, right/bottom, to a divisor; validates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from camshaft.model import stack_batch


def _reference(tensors: list[torch.Tensor], divisor: int, value: float) -> torch.Tensor:
    """Pad each tensor with F.pad and stack: the slow way, for comparison."""
    ndim = tensors[0].ndim
    target = [-(-max(t.shape[d] for t in tensors) // divisor) * divisor for d in range(1, ndim)]
    padded = []
    for tensor in tensors:
        pad: list[int] = []
        for d in reversed(range(1, ndim)):
            pad += [0, target[d - 1] - tensor.shape[d]]
        padded.append(F.pad(tensor, pad, value=value))
    return torch.stack(padded)


def test_equal_shapes_are_stacked_unchanged() -> None:
    tensors = [torch.randn(3, 4, 4) for _ in range(3)]
    assert torch.equal(stack_batch(tensors), torch.stack(tensors))


@pytest.mark.parametrize("divisor", [1, 4, 32])
@pytest.mark.parametrize("value", [0, -1.5])
def test_matches_pad_then_stack(divisor: int, value: float) -> None:
    tensors = [torch.randn(3, 5, 7), torch.randn(3, 6, 4), torch.randn(3, 2, 9)]
    out = stack_batch(tensors, pad_size_divisor=divisor, pad_value=value)
    assert torch.equal(out, _reference(tensors, divisor, value))
    assert all(size % divisor == 0 for size in out.shape[2:])


def test_divisor_pads_even_equal_shapes() -> None:
    out = stack_batch([torch.ones(1, 5, 5), torch.ones(1, 5, 5)], pad_size_divisor=8)
    assert out.shape == (2, 1, 8, 8)
    assert out[:, :, 5:].abs().sum() == 0
    assert out[:, :, :5, :5].eq(1).all()


def test_one_and_three_trailing_dimensions() -> None:
    flat = stack_batch([torch.ones(2), torch.ones(2)], pad_size_divisor=3)
    assert flat.shape == (2, 2)  # the only dimension is the first: never padded
    video = stack_batch([torch.ones(3, 2, 4, 4), torch.ones(3, 3, 5, 4)], pad_size_divisor=2)
    assert video.shape == (2, 3, 4, 6, 4)
    assert torch.equal(video, _reference([torch.ones(3, 2, 4, 4), torch.ones(3, 3, 5, 4)], 2, 0))


def test_keeps_dtype_and_gradient() -> None:
    images = [torch.randint(0, 255, (3, 4, 5), dtype=torch.uint8), torch.zeros(3, 6, 2).byte()]
    assert stack_batch(images, pad_value=7).dtype == torch.uint8
    leaf = torch.ones(1, 2, 2, requires_grad=True)
    stack_batch([leaf, torch.ones(1, 3, 3)]).sum().backward()
    assert leaf.grad is not None
    assert torch.equal(leaf.grad, torch.ones(1, 2, 2))


def test_accepts_a_tuple() -> None:
    assert stack_batch((torch.ones(1, 2), torch.ones(1, 3))).shape == (2, 1, 3)


# --- bad input ----------------------------------------------------------------------


def test_empty_list() -> None:
    with pytest.raises(ValueError, match=r"`tensor_list` must hold at least one tensor"):
        stack_batch([])


def test_not_a_list() -> None:
    with pytest.raises(TypeError, match=r"`tensor_list` must be a list of tensors, got Tensor"):
        stack_batch(torch.ones(2, 3, 3))  # type: ignore[arg-type]


def test_non_tensor_element() -> None:
    with pytest.raises(TypeError, match=r"`tensor_list\[1\]` must be a torch.Tensor, got list"):
        stack_batch([torch.ones(1, 2), [1, 2]])  # type: ignore[list-item]


def test_ndim_mismatch_names_both_shapes() -> None:
    with pytest.raises(
        ValueError, match=r"\(1, 2\) \(2-d\).*`tensor_list\[1\]` has shape \(1, 2, 2\)"
    ):
        stack_batch([torch.ones(1, 2), torch.ones(1, 2, 2)])


def test_first_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match=r"first dimension \(channels\) is not padded"):
        stack_batch([torch.ones(3, 2, 2), torch.ones(1, 2, 2)])


def test_zero_dimensional_tensor() -> None:
    with pytest.raises(ValueError, match=r"`tensor_list\[0\]` must have at least one dimension"):
        stack_batch([torch.tensor(1.0)])


def test_dtype_mismatch() -> None:
    with pytest.raises(ValueError, match=r"`tensor_list\[1\]` is torch.float64 on cpu"):
        stack_batch([torch.ones(1, 2), torch.ones(1, 2, dtype=torch.float64)])


@pytest.mark.parametrize("divisor", [0, -4])
def test_pad_size_divisor_below_one(divisor: int) -> None:
    with pytest.raises(ValueError, match=rf"`pad_size_divisor` must be an int >= 1, got {divisor}"):
        stack_batch([torch.ones(1, 2)], pad_size_divisor=divisor)


@pytest.mark.parametrize("divisor", [2.0, True, "4"])
def test_pad_size_divisor_not_an_int(divisor: object) -> None:
    with pytest.raises(TypeError, match=r"`pad_size_divisor` must be an int >= 1, got"):
        stack_batch([torch.ones(1, 2)], pad_size_divisor=divisor)  # type: ignore[arg-type]


def test_pad_value_not_a_number() -> None:
    with pytest.raises(TypeError, match=r"`pad_value` must be an int or a float, got str: '0'"):
        stack_batch([torch.ones(1, 2)], pad_value="0")  # type: ignore[arg-type]


@pytest.mark.gpu
def test_on_the_gpu_matches_the_cpu_result() -> None:
    tensors = [torch.randn(3, 5, 7), torch.randn(3, 6, 4)]
    on_gpu = stack_batch([t.cuda() for t in tensors], pad_size_divisor=4, pad_value=2)
    assert on_gpu.is_cuda
    assert torch.equal(on_gpu.cpu(), stack_batch(tensors, pad_size_divisor=4, pad_value=2))
