"""The init record: who set each parameter last, and that recording is opt-in."""

# dict(type=...) is the init_cfg vocabulary under test, so C408 is off here.

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from camshaft.init import (
    ConstantInit,
    InitRecord,
    KaimingInit,
    initialize,
    record_init,
    update_init_info,
)


class WithScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(2, 2))
        self.bias = nn.Parameter(torch.empty(2))
        self.scale = nn.Parameter(torch.ones(2))


def test_initializer_records_exactly_the_tensors_it_wrote() -> None:
    net = nn.Sequential(WithScale(), nn.Linear(2, 2, bias=False))
    init = ConstantInit(val=1, layer=["WithScale", "Linear"])
    with record_init() as record:
        init(net)
    assert record.describe(net[0].weight) == "ConstantInit: val=1, bias=0"
    assert record.describe(net[0].bias) == "ConstantInit: val=1, bias=0"
    assert record.describe(net[0].scale) is None
    assert record.describe(net[1].weight) == "ConstantInit: val=1, bias=0"
    assert len(record) == 3


def test_update_init_info_marks_every_parameter_and_wins_when_later() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), WithScale())
    with record_init() as record:
        initialize(net, dict(type="Kaiming", layer="Conv2d"))
        update_init_info(net[1], "Initialized by user-defined `init_weights` in WithScale")
        update_init_info(net[0], "by hand")
    assert record.describe(net[0].weight) == "by hand"
    assert {record.describe(p) for p in net[1].parameters()} == {
        "Initialized by user-defined `init_weights` in WithScale"
    }


def test_initializer_after_update_wins() -> None:
    conv = nn.Conv2d(1, 1, 1)
    with record_init() as record:
        update_init_info(conv, "by hand")
        KaimingInit(layer="Conv2d")(conv)
    assert record.describe(conv.weight) == str(KaimingInit())


def test_nothing_is_recorded_outside_record_init() -> None:
    conv = nn.Conv2d(1, 1, 1)
    KaimingInit(layer="Conv2d")(conv)
    update_init_info(conv, "by hand")  # no record active: a no-op
    with record_init() as record:
        pass
    assert len(record) == 0
    assert record.describe(conv.weight) is None


def test_nested_record_init_shares_the_outer_record() -> None:
    conv = nn.Conv2d(1, 1, 1)
    with record_init() as outer:
        with record_init() as inner:
            update_init_info(conv, "inner")
        assert inner is outer
        update_init_info(conv, "outer")
    assert outer.describe(conv.weight) == "outer"
    with record_init() as fresh:
        assert fresh is not outer


def test_record_is_cleared_after_an_exception() -> None:
    conv = nn.Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError), record_init():
        raise RuntimeError("boom")
    with record_init() as record:
        assert len(record) == 0
    update_init_info(conv, "after")
    assert record.describe(conv.weight) is None


def test_records_are_by_identity_not_by_value() -> None:
    a = nn.Parameter(torch.zeros(2))
    b = nn.Parameter(torch.zeros(2))
    record = InitRecord()
    record.mark(a, "a")
    assert record.describe(a) == "a"
    assert record.describe(b) is None
    assert a in record
    assert b not in record
    record.mark(a, "again")
    assert list(record.items()) == [(a, "again")]
    assert "1 tensors" in repr(record)


def test_meta_tensors_are_not_recorded() -> None:
    linear = nn.Linear(2, 2, device="meta")
    with record_init() as record:
        KaimingInit(layer="Linear")(linear)
    assert len(record) == 0


def test_other_threads_do_not_see_the_record() -> None:
    conv = nn.Conv2d(1, 1, 1)

    def work() -> None:
        update_init_info(conv, "from a thread")

    with record_init() as record:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert record.describe(conv.weight) is None


def test_update_init_info_bad_input() -> None:
    with pytest.raises(TypeError, match=r"`module` must be an nn\.Module, got str"):
        update_init_info("conv", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`init_info` must be a str, got 3"):
        update_init_info(nn.Linear(1, 1), 3)  # type: ignore[arg-type]
