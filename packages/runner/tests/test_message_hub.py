"""MessageHub and HistoryBuffer: statistics, bounded memory, lazy tensors, plain state."""

from __future__ import annotations

import gc
import io
import math
import warnings
import weakref
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from camshaft.runner.logging import HistoryBuffer, MessageHub

# --- statistics ------------------------------------------------------------------------


def test_windowed_statistics_follow_mmengine() -> None:
    buffer = HistoryBuffer()
    for value in (1.0, 4.0, 2.0, 8.0):
        buffer.update(value)
    assert buffer.current() == 8.0
    assert buffer.mean() == pytest.approx(3.75)
    assert buffer.mean(2) == pytest.approx(5.0)
    assert buffer.max() == 8.0
    assert buffer.max(3) == 8.0
    assert buffer.min(2) == 2.0
    assert buffer.mean(100) == pytest.approx(3.75)  # a window longer than the history
    assert buffer.statistics("mean", window_size=2) == pytest.approx(5.0)
    assert all(isinstance(x, float) for x in (buffer.mean(), buffer.max(), buffer.current()))


def test_mean_divides_the_sum_of_values_by_the_sum_of_counts() -> None:
    buffer = HistoryBuffer([2.0, 6.0], [2, 2])
    assert buffer.mean() == pytest.approx(2.0)  # (2 + 6) / (2 + 2), as MMEngine
    values, counts = buffer.data
    np.testing.assert_array_equal(values, [2.0, 6.0])
    np.testing.assert_array_equal(counts, [2.0, 2.0])


def test_data_of_an_all_ones_history_reports_counts_of_one() -> None:
    buffer = HistoryBuffer([1.0, 2.0], [1, 1])
    np.testing.assert_array_equal(buffer.data[1], [1.0, 1.0])


def test_buffer_is_bounded_and_whole_history_statistics_stay_exact() -> None:
    buffer = HistoryBuffer(max_length=100)
    values = [float(v) for v in range(5000)]
    for value in values:
        buffer.update(value)
    assert buffer._values.shape == (100,)  # memory stops growing at max_length...
    assert len(buffer._pending) < 1024  # ...and at most one chunk waits in the queue
    assert len(buffer) == 100
    np.testing.assert_array_equal(buffer.data[0], values[-100:])
    assert buffer.mean() == pytest.approx(sum(values) / 5000)  # evicted values count
    assert buffer.min() == 0.0
    assert buffer.mean(5000) == pytest.approx(sum(values) / 5000)
    assert buffer.mean(10) == pytest.approx(sum(values[-10:]) / 10)
    assert buffer.min(50) == 4950.0
    assert buffer.current() == 4999.0


def test_ring_keeps_order_after_wrapping_with_counts() -> None:
    buffer = HistoryBuffer(max_length=3)
    for value, count in [(1.0, 1), (2.0, 2), (3.0, 1), (4.0, 4), (5.0, 1)]:
        buffer.update(value, count)
    values, counts = buffer.data
    np.testing.assert_array_equal(values, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(counts, [1.0, 4.0, 1.0])
    assert buffer.mean() == pytest.approx(15.0 / 9.0)


def test_register_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        HistoryBuffer, "_statistics_methods", dict(HistoryBuffer._statistics_methods)
    )

    @HistoryBuffer.register_statistics
    def spread(buffer: HistoryBuffer, window_size: int | None = None) -> float:
        return buffer.max(window_size) - buffer.min(window_size)

    assert HistoryBuffer([1.0, 5.0, 3.0], [1, 1, 1]).statistics("spread") == 4.0


def test_statistics_bad_input() -> None:
    buffer = HistoryBuffer()
    with pytest.raises(ValueError, match="empty"):
        buffer.current()
    with pytest.raises(ValueError, match="empty"):
        buffer.mean()
    buffer.update(1.0)
    with pytest.raises(ValueError, match="window_size"):
        buffer.mean(0)
    with pytest.raises(TypeError, match="window_size"):
        buffer.max("3")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="median"):
        buffer.statistics("median")
    with pytest.raises(ValueError, match="max_length"):
        HistoryBuffer(max_length=0)
    with pytest.raises(ValueError, match="same length"):
        HistoryBuffer([1.0, 2.0], [1])


# --- tensors stay lazy -----------------------------------------------------------------


class SyncSpy(torch.Tensor):
    """A tensor that records every torch function called on it."""

    calls: ClassVar[list[str]] = []

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        cls.calls.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


SYNCING = {"item", "tolist", "__float__", "__int__", "__bool__", "numpy", "cpu", "to", "__format__"}


def test_tensors_are_never_converted_during_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = MessageHub("lazy")
    original_item = torch.Tensor.item

    def forbidden_item(self: torch.Tensor) -> Any:
        raise AssertionError("update_scalar called .item()")

    monkeypatch.setattr(torch.Tensor, "item", forbidden_item)
    SyncSpy.calls.clear()
    for step in range(2500):  # crosses the 1024-tensor compaction twice
        hub.update_scalar("train/loss", torch.tensor(float(step)).as_subclass(SyncSpy))
    assert not SYNCING & set(SyncSpy.calls), sorted(SYNCING & set(SyncSpy.calls))
    monkeypatch.setattr(torch.Tensor, "item", original_item)
    buffer = hub.get_scalar("train/loss")
    assert buffer.current() == 2499.0
    assert buffer.mean(10) == pytest.approx(sum(range(2490, 2500)) / 10)
    assert len(buffer) == 2500


def test_one_conversion_serves_every_key_of_a_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = MessageHub("batched")
    for step in range(20):
        for key in ("train/loss", "train/loss_cls", "train/acc"):
            hub.update_scalar(key, torch.tensor(float(step)))
    conversions = []
    original = torch.Tensor.tolist

    def counting_tolist(self: torch.Tensor) -> Any:
        conversions.append(self.shape)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting_tolist)
    assert hub.get_scalar("train/loss").mean(5) == pytest.approx(17.0)
    assert hub.get_scalar("train/acc").current() == 19.0
    assert hub.get_scalar("train/loss_cls").max() == 19.0
    assert len(conversions) == 1  # one host copy for the 60 values of the three keys


class _ReportsAnotherDevice(torch.Tensor):
    """CPU data that says it is elsewhere, to take the accelerator path on a CPU machine."""

    @property
    def is_cpu(self) -> bool:  # type: ignore[override]
        return False


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    reads = {"item": 0, "tolist": 0}
    for name in reads:
        original = getattr(torch.Tensor, name)

        def counting(self: torch.Tensor, _name: str = name, _original: Any = original) -> Any:
            reads[_name] += 1
            return _original(self)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return reads


def test_a_few_cpu_tensors_are_read_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log line's ten CPU losses: ten ``.item()`` reads, no stack, same values."""
    hub = MessageHub("few_cpu")
    for step in range(10):
        hub.update_scalar("train/loss", torch.tensor(step + 0.5))
        hub.update_scalar("train/time", step / 4)
    hub.update_scalar("train/acc", torch.tensor(3, dtype=torch.int64))
    hub.update_scalar("train/acc", torch.tensor([0.25], dtype=torch.bfloat16))
    reads = _count_reads(monkeypatch)
    assert hub.get_scalar("train/loss").mean(4) == pytest.approx(8.0)
    assert reads == {"item": 12, "tolist": 0}  # the sibling's two tensors came along
    np.testing.assert_array_equal(hub.get_scalar("train/acc").data[0], [3.0, 0.25])
    np.testing.assert_array_equal(hub.get_scalar("train/loss").data[0], np.arange(10) + 0.5)
    assert hub.get_scalar("train/time").current() == 9 / 4


def test_a_few_cpu_tensors_keep_their_counts_and_order(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = HistoryBuffer()
    buffer.update(torch.tensor(1.0))
    buffer.update(2.0, count=3)
    buffer.update(torch.tensor(4.0))
    reads = _count_reads(monkeypatch)
    values, counts = buffer.data
    np.testing.assert_array_equal(values, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(counts, [1.0, 3.0, 1.0])
    assert reads == {"item": 2, "tolist": 0}


def test_more_cpu_tensors_than_the_limit_are_stacked(monkeypatch: pytest.MonkeyPatch) -> None:
    from camshaft.runner.logging._tensor_batch import CPU_ITEM_LIMIT

    buffer = HistoryBuffer()
    for step in range(CPU_ITEM_LIMIT + 1):
        buffer.update(torch.tensor(float(step)))
    reads = _count_reads(monkeypatch)
    assert buffer.current() == float(CPU_ITEM_LIMIT)
    assert reads == {"item": 0, "tolist": 1}


def test_a_tensor_off_the_cpu_sends_the_few_to_one_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = HistoryBuffer()
    buffer.update(torch.tensor(1.0))
    buffer.update(torch.tensor(2.0).as_subclass(_ReportsAnotherDevice))
    reads = _count_reads(monkeypatch)
    assert buffer.mean() == 1.5
    assert reads["item"] == 0
    # The stacked copy is a subclass tensor: its tolist() passes through the patch twice.
    assert reads["tolist"] >= 1


def test_unread_tensors_are_bounded_and_mixed_chunks_keep_order() -> None:
    buffer = HistoryBuffer(max_length=1000)
    for step in range(70_000):  # past the 65536-value limit on queued tensors
        buffer.update(torch.tensor(float(step)) if step % 3 else float(step))
    assert buffer._pending_n < 65_536 + 1024
    assert buffer.current() == 69_999.0
    np.testing.assert_array_equal(buffer.data[0], np.arange(69_000, 70_000))
    assert buffer.mean() == pytest.approx(69_999 / 2)


def test_floats_and_tensors_keep_their_order_and_dtypes_mix() -> None:
    buffer = HistoryBuffer()
    buffer.update(1.0)
    buffer.update(torch.tensor(2, dtype=torch.int64))
    buffer.update(3)
    buffer.update(torch.tensor([4.0], dtype=torch.bfloat16))
    buffer.update(np.float32(5.0))
    buffer.update(torch.tensor(True))
    np.testing.assert_array_equal(buffer.data[0], [1.0, 2.0, 3.0, 4.0, 5.0, 1.0])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_counts_other_than_one_keep_their_place_after_many_ones(as_tensor: bool) -> None:
    buffer = HistoryBuffer()
    counts = [3 if step in (1500, 2099) else 1 for step in range(2100)]  # past two chunks
    for step, count in enumerate(counts):
        buffer.update(torch.tensor(float(step)) if as_tensor else float(step), count)
    values, saved_counts = buffer.data
    np.testing.assert_array_equal(values, np.arange(2100.0))
    np.testing.assert_array_equal(saved_counts, counts)
    assert buffer.mean() == pytest.approx(sum(range(2100)) / sum(counts))
    assert buffer.mean(600) == pytest.approx(sum(range(1500, 2100)) / (600 + 4))


def test_queued_tensors_of_several_buffers_convert_in_order() -> None:
    hub = MessageHub("several")
    for step in range(30):
        hub.update_scalar("train/loss", torch.tensor(float(step)))
        hub.update_scalar("train/time", float(step) / 10)
        if step % 2:
            hub.update_scalar("train/mixed", torch.tensor(float(step)))
        else:
            hub.update_scalar("train/mixed", float(step))
    np.testing.assert_array_equal(hub.get_scalar("train/loss").data[0], np.arange(30.0))
    np.testing.assert_allclose(hub.get_scalar("train/time").data[0], np.arange(30.0) / 10)
    np.testing.assert_array_equal(hub.get_scalar("train/mixed").data[0], np.arange(30.0))


@pytest.mark.gpu
def test_tensors_on_several_devices_in_one_buffer_keep_their_order() -> None:
    buffer = HistoryBuffer()
    for step in range(10):
        buffer.update(torch.tensor(float(step), device="cuda" if step % 3 else "cpu"))
    np.testing.assert_array_equal(buffer.data[0], np.arange(10.0))


def test_a_logged_view_does_not_keep_its_base_alive() -> None:
    big = torch.arange(1_000_000, dtype=torch.float32)
    alive = weakref.ref(big)
    buffer = HistoryBuffer()
    buffer.update(big[7])
    del big
    gc.collect()
    assert alive() is None
    assert buffer.current() == 7.0


def test_a_loss_that_requires_grad_is_stored_detached() -> None:
    weight = torch.ones(3, requires_grad=True)
    hub = MessageHub("grad")
    hub.update_scalar("train/loss", (weight * 2).sum())
    assert not any(t.requires_grad for t in hub.get_scalar("train/loss")._pending)  # type: ignore[union-attr]
    assert hub.get_scalar("train/loss").current() == 6.0


@pytest.mark.gpu
def test_cuda_tensors_are_stored_without_a_device_sync() -> None:
    hub = MessageHub("cuda")
    values = torch.arange(300, device="cuda", dtype=torch.float32)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for value in values:
            hub.update_scalar("train/loss", value * 1.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert hub.get_scalar("train/loss").current() == 299.0


# --- the hub ---------------------------------------------------------------------------


def test_update_scalars_gives_the_history_of_separate_updates() -> None:
    batched, separate = MessageHub("batched-updates"), MessageHub("separate-updates")
    for step in range(40):
        items = {"train/loss": torch.tensor(float(step)), "train/lr": {"value": 0.1, "count": 2}}
        batched.update_scalars(items)
        separate.update_scalar("train/loss", items["train/loss"])
        separate.update_scalar("train/lr", 0.1, count=2)
    for key in ("train/loss", "train/lr"):
        pairs = zip(batched.get_scalar(key).data, separate.get_scalar(key).data, strict=True)
        for left, right in pairs:
            np.testing.assert_array_equal(left, right)
    assert batched.state_dict()["resumed_keys"] == separate.state_dict()["resumed_keys"]


def test_update_scalars_accepts_values_and_value_count_dicts() -> None:
    hub = MessageHub("scalars")
    hub.update_scalars({"train/loss": 0.5, "train/acc": {"value": torch.tensor(6.0), "count": 3}})
    assert hub.get_scalar("train/loss").current() == 0.5
    assert hub.get_scalar("train/acc").mean() == pytest.approx(2.0)
    assert list(hub.log_scalars) == ["train/loss", "train/acc"]


def test_runtime_info() -> None:
    hub = MessageHub("info")
    hub.update_info("epoch", 3)
    hub.update_info_dict({"iter": 30, "max_iters": 100})
    assert hub.get_info("epoch") == 3
    assert hub.get_info("missing", default="x") == "x"
    assert hub.runtime_info == {"epoch": 3, "iter": 30, "max_iters": 100}
    assert hub.pop_info("iter") == 30
    assert hub.get_info("iter") is None


@pytest.mark.parametrize(
    ("value", "count", "error", "match"),
    [
        ("0.5", 1, TypeError, r"update_scalar\(key='train/loss'\).*str"),
        (torch.ones(2), 1, ValueError, r"train/loss.*one element"),
        (np.ones(3), 1, ValueError, r"train/loss.*one element"),
        (1.0, 0, ValueError, r"train/loss.*count.*>= 1"),
        (1.0, 1.5, TypeError, r"train/loss.*count"),
        (1.0, True, TypeError, r"train/loss.*count"),
    ],
)
def test_update_scalar_bad_input(value: Any, count: Any, error: type, match: str) -> None:
    hub = MessageHub("bad")
    with pytest.raises(error, match=match):
        hub.update_scalar("train/loss", value, count)
    assert "train/loss" not in hub.log_scalars  # a rejected first value creates nothing


def test_other_bad_input() -> None:
    hub = MessageHub("bad")
    with pytest.raises(TypeError, match="key must be a str"):
        hub.update_scalar(3, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"log_dict\['loss'\].*'value'"):
        hub.update_scalars({"loss": {"count": 2}})
    with pytest.raises(TypeError, match="log_dict"):
        hub.update_scalars([("loss", 1.0)])  # type: ignore[arg-type]
    hub.update_scalar("loss", 1.0)
    with pytest.raises(KeyError, match=r"'acc'.*\['loss'\]"):
        hub.get_scalar("acc")
    with pytest.raises(ValueError, match=r"resumed=True.*resumed=False"):
        hub.update_scalar("loss", 2.0, resumed=False)


# --- state dict ------------------------------------------------------------------------


def test_state_dict_loads_with_weights_only_and_round_trips() -> None:
    hub = MessageHub("saved")
    for step in range(5):
        hub.update_scalar("train/loss", torch.tensor(float(step)))
    hub.update_scalar("train/acc", 0.5, count=4)
    hub.update_scalar("train/time", 0.1, resumed=False)
    hub.update_info("epoch", 2)
    hub.update_info("dataset_meta", {"classes": ("cat", "dog"), "ids": np.arange(2)})
    hub.update_info("confusion", torch.eye(2))
    hub.update_info("skipped", object(), resumed=False)
    stream = io.BytesIO()
    torch.save({"message_hub": hub.state_dict()}, stream)
    stream.seek(0)
    state = torch.load(stream, weights_only=True)["message_hub"]
    assert "train/time" not in state["log_scalars"]
    assert "skipped" not in state["runtime_info"]
    assert state["runtime_info"]["dataset_meta"] == {"classes": ("cat", "dog"), "ids": [0, 1]}

    restored = MessageHub("restored")
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.get_scalar("train/loss").data[0], range(5))
    assert restored.get_scalar("train/acc").mean() == pytest.approx(0.125)
    assert restored.get_info("epoch") == 2
    assert torch.equal(restored.get_info("confusion"), torch.eye(2))
    restored.update_scalar("train/loss", 5.0)  # the restored buffer keeps working
    assert restored.get_scalar("train/loss").mean() == pytest.approx(2.5)


def test_whole_history_totals_survive_a_resume() -> None:
    hub = MessageHub("long")
    buffer = HistoryBuffer(max_length=10)
    hub.load_state_dict({"log_scalars": {}, "runtime_info": {}, "resumed_keys": {}})
    for value in range(100):
        buffer.update(float(value))
    restored = HistoryBuffer.from_state_dict(buffer.state_dict())
    assert restored.mean() == pytest.approx(49.5)
    assert restored.min() == 0.0


def test_state_dict_warns_about_values_it_cannot_save() -> None:
    hub = MessageHub("warn")
    hub.update_info("handle", object())
    with pytest.warns(UserWarning, match=r"'handle'.*resumed=False"):
        state = hub.state_dict()
    assert "handle" not in state["runtime_info"]


def test_load_state_dict_bad_input() -> None:
    hub = MessageHub("load")
    with pytest.raises(ValueError, match=r"lacks \['resumed_keys'\]"):
        hub.load_state_dict({"log_scalars": {}, "runtime_info": {}})
    with pytest.raises(ValueError, match=r"log_scalars'\]\['loss'\].*malformed"):
        hub.load_state_dict(
            {"log_scalars": {"loss": [1.0]}, "runtime_info": {}, "resumed_keys": {}}
        )
    with pytest.raises(TypeError, match="state_dict"):
        hub.load_state_dict([1, 2])  # type: ignore[arg-type]


def test_load_from_another_hub_copies_it() -> None:
    source = MessageHub("source")
    source.update_scalar("loss", torch.tensor(1.0))
    source.update_info("iter", 7)
    target = MessageHub("target")
    target.load_state_dict(source)
    source.update_scalar("loss", 3.0)
    assert len(target.get_scalar("loss")) == 1
    assert target.get_info("iter") == 7


# --- named instances -------------------------------------------------------------------


def test_get_instance_and_current_instance() -> None:
    assert not MessageHub.check_instance_created("first")
    first = MessageHub.get_instance("first")
    second = MessageHub.get_instance("second")
    assert MessageHub.get_instance("first") is first
    assert MessageHub.get_current_instance() is second  # the most recently created
    assert first.instance_name == "first"
    assert MessageHub.check_instance_created("first")
    with pytest.warns(UserWarning, match="ignored"):
        MessageHub.get_instance("first", runtime_info={"x": 1})


def test_current_instance_is_created_on_demand_and_reset_forgets_it() -> None:
    hub = MessageHub.get_current_instance()
    assert hub.instance_name == "camshaft"
    MessageHub._reset_instances()
    assert not MessageHub.check_instance_created("camshaft")
    assert MessageHub.get_current_instance() is not hub


def test_instances_do_not_leak_between_tests_part_one() -> None:
    MessageHub.get_instance("leaky").update_info("x", 1)


def test_instances_do_not_leak_between_tests_part_two() -> None:
    assert not MessageHub.check_instance_created("leaky")


def test_bad_names() -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        MessageHub.get_instance("")
    with pytest.raises(TypeError, match="HistoryBuffer"):
        MessageHub("x", log_scalars={"loss": [1.0]})  # type: ignore[dict-item]


def test_repr_and_nan_values() -> None:
    buffer = HistoryBuffer()
    buffer.update(math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(buffer.mean())
    assert "HistoryBuffer(len=1" in repr(buffer)
    assert "MessageHub(name='r'" in repr(MessageHub("r"))


def test_every_kind_of_update_lands_in_order_whatever_path_it_takes() -> None:
    """Floats and detached 0-d tensors are queued by the hub itself; the rest by the buffer."""
    hub = MessageHub.get_instance("kinds_of_updates")
    weight = torch.tensor(3.0, requires_grad=True)
    base = torch.tensor([5.0, 6.0])
    updates: list[tuple[Any, int]] = [
        (1.0, 1),
        (torch.tensor(2.0), 1),
        (weight * 1.0, 1),  # requires grad
        (base[0], 1),  # a view
        (torch.tensor([4.0]), 1),  # one element, 1-d
        (2, 1),  # an int
        (0.5, 3),  # a count
    ]
    for value, count in updates:
        hub.update_scalar("train/x", value, count=count)
    buffer = hub.get_scalar("train/x")
    values, counts = buffer.data
    assert values.tolist() == [1.0, 2.0, 3.0, 5.0, 4.0, 2.0, 0.5]
    assert counts.tolist() == [1, 1, 1, 1, 1, 1, 3]
    assert buffer.mean() == pytest.approx(17.5 / 9)  # sum(values) / sum(counts), as MMEngine
