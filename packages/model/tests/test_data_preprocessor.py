"""BaseDataPreprocessor: keeps the batch's structure, moves what can move, follows the module."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple
from typing import Any, NamedTuple

import pytest
import torch
from torch import nn

from camshaft.model import MODELS, BaseDataPreprocessor


class Point(NamedTuple):
    x: torch.Tensor
    label: str


LegacyPair = namedtuple("LegacyPair", ["first", "second"])


@dataclasses.dataclass
class Sample:
    image: torch.Tensor
    meta: dict[str, Any]
    scale: float = 1.0
    area: torch.Tensor = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.area = torch.tensor(float(self.image.numel()))


@dataclasses.dataclass(frozen=True)
class FrozenSample:
    image: torch.Tensor
    tag: str = "x"


class RecordingSample:
    """An MMEngine-style data sample: has ``.to``; records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def to(self, *args: Any, **kwargs: Any) -> RecordingSample:
        self.calls.append((args, kwargs))
        return self


# --- construction and registration ---------------------------------------------


def test_registered_in_models_and_built_by_name() -> None:
    built = MODELS.build(dict(type="BaseDataPreprocessor", non_blocking=True))
    assert isinstance(built, BaseDataPreprocessor)
    assert built._non_blocking is True


def test_non_blocking_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"`non_blocking` must be a bool, got str: 'yes'"):
        BaseDataPreprocessor(non_blocking="yes")  # type: ignore[arg-type]


def test_device_anchor_stays_out_of_the_state_dict() -> None:
    preprocessor = BaseDataPreprocessor()
    assert preprocessor.state_dict() == {}
    assert list(preprocessor.parameters()) == []
    # Loading a checkpoint saved before the anchor existed works strictly.
    preprocessor.load_state_dict({}, strict=True)


def test_device_follows_to_on_the_module_and_its_parent() -> None:
    preprocessor = BaseDataPreprocessor()
    assert preprocessor.device == torch.device("cpu")
    parent = nn.Sequential(preprocessor)
    parent.to("meta")
    assert preprocessor.device == torch.device("meta")
    parent.to_empty(device="cpu")  # how a model built on "meta" is materialised
    assert preprocessor.device == torch.device("cpu")


# --- cast_data over every container kind ----------------------------------------


def test_tensors_are_moved_and_leaves_pass_through() -> None:
    preprocessor = BaseDataPreprocessor().to("meta")
    array = bytearray(b"leaf")
    out = preprocessor.cast_data([torch.ones(2), "text", b"raw", None, 3, 2.5, True, array])
    assert isinstance(out, list)
    assert out[0].device == torch.device("meta")
    assert out[1:7] == ["text", b"raw", None, 3, 2.5, True]
    assert out[7] is array


def test_numpy_arrays_pass_through() -> None:
    # numpy is optional for camshaft-model: only users who have it can pass arrays.
    np = pytest.importorskip("numpy")
    array = np.zeros(3)
    out = BaseDataPreprocessor().to("meta").cast_data({"array": array})
    assert out["array"] is array


def test_mappings_become_dicts_and_sequences_keep_their_type() -> None:
    preprocessor = BaseDataPreprocessor().to("meta")
    batch = OrderedDict(inputs=(torch.ones(1), torch.ones(2)), samples=[torch.ones(3)])
    out = preprocessor(batch)
    assert type(out) is dict
    assert list(out) == ["inputs", "samples"]
    assert type(out["inputs"]) is tuple
    assert type(out["samples"]) is list
    assert all(t.device.type == "meta" for t in (*out["inputs"], *out["samples"]))


def test_nested_namedtuple_in_dict_in_list() -> None:
    preprocessor = BaseDataPreprocessor().to("meta")
    batch = [{"point": Point(torch.ones(2), "cat"), "pair": LegacyPair(torch.ones(1), 7)}]
    out = preprocessor(batch)
    point, pair = out[0]["point"], out[0]["pair"]
    assert type(point) is Point
    assert point.x.device.type == "meta"
    assert point.label == "cat"
    assert type(pair) is LegacyPair
    assert pair.first.device.type == "meta"
    assert pair.second == 7


def test_dataclass_is_rebuilt_with_cast_fields_including_init_false() -> None:
    preprocessor = BaseDataPreprocessor().to("meta")
    sample = Sample(image=torch.ones(2, 2), meta={"mask": torch.zeros(2)}, scale=0.5)
    out = preprocessor(sample)
    assert type(out) is Sample
    assert out is not sample
    assert out.image.device.type == "meta"
    assert out.meta["mask"].device.type == "meta"
    assert out.scale == 0.5
    assert out.area.device.type == "meta"  # the init=False field is cast too
    assert sample.image.device.type == "cpu"  # the input is not modified


def test_frozen_dataclass() -> None:
    preprocessor = BaseDataPreprocessor().to("meta")
    out = preprocessor([FrozenSample(torch.ones(1), tag="y")])
    assert type(out[0]) is FrozenSample
    assert out[0].image.device.type == "meta"
    assert out[0].tag == "y"


def test_tensors_already_on_the_device_come_back_as_they_are() -> None:
    inputs, targets = torch.ones(2, 3), torch.zeros(2)
    out = BaseDataPreprocessor()([inputs, targets])
    assert type(out) is list
    assert out[0] is inputs
    assert out[1] is targets


@pytest.mark.parametrize("as_list", [True, False])
def test_a_cpu_preprocessor_moves_tensors_that_are_not_on_the_cpu(as_list: bool) -> None:
    # The CPU's shortcut (``is_cpu``) must not keep a tensor from another device: the
    # move of a "meta" tensor is attempted, and fails, as it would for any device.
    elsewhere = torch.empty(2, device="meta")
    batch = [torch.ones(1), elsewhere] if as_list else elsewhere
    with pytest.raises(NotImplementedError, match="meta"):
        BaseDataPreprocessor()(batch)


def test_sequences_of_tensors_on_the_device_keep_their_type_and_are_copied() -> None:
    preprocessor = BaseDataPreprocessor()
    inputs, targets = torch.zeros(2, 3), torch.ones(2)
    batch = [inputs, [targets, "name"], None]
    out = preprocessor(batch)
    assert type(out) is list
    assert out is not batch
    assert out[0] is inputs
    assert out[1] == [targets, "name"]
    assert out[1] is not batch[1]
    assert out[2] is None
    as_tuple = preprocessor((inputs, targets))
    assert type(as_tuple) is tuple
    assert as_tuple == (inputs, targets)


def test_forward_uses_an_overridden_cast_data() -> None:
    class Doubling(BaseDataPreprocessor):
        def cast_data(self, data: Any) -> Any:
            return [item * 2 for item in data]

    out = Doubling()([torch.ones(2)])
    assert torch.equal(out[0], torch.full((2,), 2.0))


def test_objects_with_to_are_moved_without_non_blocking_by_default() -> None:
    sample = RecordingSample()
    preprocessor = BaseDataPreprocessor()
    out = preprocessor(dict(data_samples=[sample]))
    assert out["data_samples"][0] is sample
    assert sample.calls == [((torch.device("cpu"),), {})]


def test_non_blocking_is_passed_through_to_every_to_call() -> None:
    sample = RecordingSample()
    preprocessor = BaseDataPreprocessor(non_blocking=True)
    preprocessor(dict(inputs=torch.ones(1), data_samples=[sample]))
    assert sample.calls == [((torch.device("cpu"),), {"non_blocking": True})]


def test_classes_in_the_batch_are_values_not_movable_objects() -> None:
    preprocessor = BaseDataPreprocessor()
    assert preprocessor([torch.Tensor, RecordingSample]) == [torch.Tensor, RecordingSample]


def test_training_flag_does_not_change_the_base_behaviour() -> None:
    preprocessor = BaseDataPreprocessor()
    batch = (torch.arange(3),)
    assert torch.equal(preprocessor(batch, training=True)[0], preprocessor(batch)[0])


# --- GPU --------------------------------------------------------------------------


@pytest.mark.gpu
def test_preprocessor_follows_cuda_and_cpu() -> None:
    preprocessor = BaseDataPreprocessor()
    preprocessor.cuda()
    assert preprocessor.device.type == "cuda"
    out = preprocessor(dict(inputs=[torch.ones(2)], meta=Point(torch.ones(1), "a")))
    assert out["inputs"][0].is_cuda
    assert out["meta"].x.is_cuda
    preprocessor.cpu()
    assert preprocessor.device == torch.device("cpu")
    assert preprocessor(torch.ones(1)).device == torch.device("cpu")
    on_cpu = torch.ones(1)
    out = preprocessor([torch.ones(2, device="cuda"), on_cpu])
    assert out[0].is_cpu
    assert out[1] is on_cpu


@pytest.mark.gpu
def test_non_blocking_copy_from_pinned_memory_is_correct() -> None:
    preprocessor = BaseDataPreprocessor(non_blocking=True).cuda()
    host = torch.arange(1 << 20, dtype=torch.float32).pin_memory()
    moved = preprocessor(dict(inputs=host))["inputs"]
    torch.cuda.synchronize()
    assert moved.is_cuda
    assert torch.equal(moved.cpu(), host)
