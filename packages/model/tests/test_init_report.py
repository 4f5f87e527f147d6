"""The init report: a one-line INFO summary, the DEBUG table, and ``init_report()``."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

from camshaft.init import record_init
from camshaft.model import BaseModule, InitReportEntry, _init_report, format_init_report

KAIMING = "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0"
XAVIER = "XavierInit: gain=1, distribution=normal, bias=0"
TOYCONV = "Initialized by user-defined `init_weights` in ToyConv"


# The tutorial's model with a user-defined init_weights, imports changed only.
# fmt: off
class ToyConv(nn.Module):

    def __init__(self):
        super().__init__()
        self.custom_weight = nn.Parameter(torch.empty(1, 1, 1, 1))
        self.custom_bias = nn.Parameter(torch.empty(1))

    def init_weights(self):
        with torch.no_grad():
            self.custom_weight = self.custom_weight.fill_(1)
            self.custom_bias = self.custom_bias.fill_(0)


class ToyNet(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.conv1 = nn.Conv2d(1, 1, 1)
        self.conv2 = nn.Conv2d(1, 1, 1)
        self.custom_conv = ToyConv()


def make_toy_net():
    toy_net = ToyNet(
        init_cfg=[
            dict(
                type='Kaiming',
                layer=['Conv2d'],
                override=dict(name='conv2', type='Xavier')),
        ], )
    return toy_net
# fmt: on


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "camshaft" and r.levelno == level]


def test_info_is_one_summary_line(camshaft_log: pytest.LogCaptureFixture) -> None:
    make_toy_net().init_weights()
    (info,) = records(camshaft_log, logging.INFO)
    assert info.getMessage() == (
        "init_weights(ToyNet): 6 parameters — KaimingInit: 2, XavierInit: 2, "
        "ToyConv.init_weights: 2"
    )
    assert "\n" not in info.getMessage()


def test_debug_is_one_record_holding_the_table(camshaft_log: pytest.LogCaptureFixture) -> None:
    make_toy_net().init_weights()
    (debug,) = records(camshaft_log, logging.DEBUG)
    table = debug.getMessage().split("\n", 1)[1]
    # The tutorial's lines. It prints KaimingInit for conv2.bias, but the Xavier
    # override wrote that bias last (it fills conv2's weight and bias); camshaft.init
    # records what was actually written, so the table says XavierInit.
    assert table == (
        f"conv1.weight - torch.Size([1, 1, 1, 1]):\n{KAIMING}\n\n"
        f"conv1.bias - torch.Size([1]):\n{KAIMING}\n\n"
        f"conv2.weight - torch.Size([1, 1, 1, 1]):\n{XAVIER}\n\n"
        f"conv2.bias - torch.Size([1]):\n{XAVIER}\n\n"
        f"custom_conv.custom_weight - torch.Size([1, 1, 1, 1]):\n{TOYCONV}\n\n"
        f"custom_conv.custom_bias - torch.Size([1]):\n{TOYCONV}\n"
    )


def test_table_is_not_formatted_when_debug_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="camshaft")

    def refuse(entries: object) -> str:
        raise AssertionError("the table was formatted with DEBUG off")

    monkeypatch.setattr(_init_report, "format_init_report", refuse)
    make_toy_net().init_weights()
    assert len(records(caplog, logging.INFO)) == 1
    assert records(caplog, logging.DEBUG) == []


def test_only_the_outermost_call_logs(camshaft_log: pytest.LogCaptureFixture) -> None:
    class Inner(BaseModule):
        def __init__(self) -> None:
            super().__init__(dict(type="Constant", layer="Linear", val=1))
            self.fc = nn.Linear(1, 1)

    class Outer(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.a = Inner()
            self.b = nn.Sequential(Inner())

    Outer().init_weights()
    (info,) = records(camshaft_log, logging.INFO)
    assert info.getMessage().startswith("init_weights(Outer): 4 parameters — ConstantInit: 4")
    assert len(records(camshaft_log, logging.DEBUG)) == 1


def test_init_report_entries() -> None:
    toy_net = make_toy_net()
    toy_net.init_weights()
    entries = toy_net.init_report()
    assert entries[0] == InitReportEntry(
        "conv1.weight", torch.Size([1, 1, 1, 1]), KAIMING, "KaimingInit"
    )
    assert [e.source for e in entries] == [
        "KaimingInit",
        "KaimingInit",
        "XavierInit",
        "XavierInit",
        "ToyConv.init_weights",
        "ToyConv.init_weights",
    ]
    entries.clear()  # a copy: the module's report is unchanged
    assert len(toy_net.init_report()) == 6


def test_format_init_report_layout() -> None:
    entries = [
        InitReportEntry("a.weight", torch.Size([2, 3]), "ConstantInit: val=1, bias=0", "x"),
        InitReportEntry("a.bias", torch.Size([2]), "ConstantInit: val=1, bias=0", "x"),
    ]
    assert format_init_report(entries) == (
        "a.weight - torch.Size([2, 3]):\nConstantInit: val=1, bias=0\n\n"
        "a.bias - torch.Size([2]):\nConstantInit: val=1, bias=0\n"
    )
    assert format_init_report([]) == ""


def test_untouched_parameters_are_reported_as_kept(
    camshaft_log: pytest.LogCaptureFixture,
) -> None:
    net = ToyNet(init_cfg=dict(type="Xavier", override=dict(name="conv1")))
    net.init_weights()
    report = {e.name: e for e in net.init_report()}
    assert report["conv1.weight"].source == "XavierInit"
    kept = report["conv2.weight"]
    assert kept.source == "unchanged"
    assert kept.description == (
        "Not initialized by `init_weights` of ToyNet: kept the value it had before "
        "(no init_cfg entry, user-defined `init_weights` or checkpoint covered it)"
    )
    (info,) = records(camshaft_log, logging.INFO)
    assert info.getMessage() == (
        "init_weights(ToyNet): 6 parameters — XavierInit: 2, unchanged: 2, ToyConv.init_weights: 2"
    )


def test_summary_of_one_parameter_and_of_none(camshaft_log: pytest.LogCaptureFixture) -> None:
    class One(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    class Empty(BaseModule):
        pass

    One().init_weights()
    Empty().init_weights()
    messages = [r.getMessage() for r in records(camshaft_log, logging.INFO)]
    assert messages == [
        "init_weights(One): 1 parameter — unchanged: 1",
        "init_weights(Empty): 0 parameters",
    ]


def test_user_update_init_info_text_is_counted_by_a_short_source() -> None:
    assert _init_report.source_of("by hand") == "by hand"
    long = "set by a very long explanation that goes on and on and on"
    assert _init_report.source_of(long) == long[:37] + "..."
    assert _init_report.source_of("Initialized by user-defined `init_weights` in A") == (
        "A.init_weights"
    )


def test_report_inside_a_user_record_block() -> None:
    toy_net = make_toy_net()
    with record_init() as record:
        toy_net.init_weights()
    assert record.describe(toy_net.conv1.weight) == KAIMING
    assert toy_net.init_report()[4].description == TOYCONV


def test_init_report_before_init_weights_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"ToyNet has no init report: call init_weights"):
        make_toy_net().init_report()


def test_init_report_of_a_child_points_to_the_parent() -> None:
    class Parent(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.child = make_toy_net()

    parent = Parent()
    parent.init_weights()
    with pytest.raises(RuntimeError, match=r"read the parent's init_report\(\)"):
        parent.child.init_report()
    assert next(e.name for e in parent.init_report()) == "child.conv1.weight"


def test_report_survives_a_second_warned_call() -> None:
    toy_net = make_toy_net()
    toy_net.init_weights()
    with pytest.warns(UserWarning, match="already called"):
        toy_net.init_weights()
    assert len(toy_net.init_report()) == 6
