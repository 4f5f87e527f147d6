"""Reading checkpoints safely, and loading them into modules (load_checkpoint, load_state_dict)."""

from __future__ import annotations

import fractions
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.init import (
    CheckpointError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_state_dict,
    read_checkpoint,
)


class Net(nn.Module):
    def __init__(self, out: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(4, out)


_SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.int64: "I64",
}


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write the safetensors format by hand (8-byte header size, JSON header, raw data).

    safetensors' own writer needs numpy, which camshaft-init does not depend on; its
    reader, the code under test, does not.
    """
    header: dict[str, object] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, tensor in tensors.items():
        data = tensor.detach().cpu().reshape(-1).view(torch.uint8).tolist()
        blob = bytes(data)
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + b"".join(blobs))


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal_state(module: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


class MakeDir:
    """Unpickling this calls ``os.makedirs(path)``: code the safe loader must not run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.makedirs, (self.path,))


# --- shapes of checkpoint -----------------------------------------------------


@pytest.mark.parametrize("layout", ["raw", "state_dict", "model"])
def test_raw_and_nested_state_dicts(tmp_path: Path, layout: str) -> None:
    source = Net()
    state = source.state_dict()
    obj = state if layout == "raw" else {layout: state, "meta": {"epoch": 3}}
    path = _save(obj, tmp_path / "ckpt.pth")
    target = Net()
    returned = load_checkpoint(target, path, strict=True)
    assert _equal_state(target, _snapshot(source))
    assert set(returned) == set(obj)
    if layout != "raw":
        assert returned["meta"] == {"epoch": 3}


def test_not_a_dict_is_rejected(tmp_path: Path) -> None:
    path = _save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="holds a Tensor, expected a dict"):
        load_checkpoint(Net(), path)


def test_legacy_format_is_read_without_mmap(tmp_path: Path) -> None:
    source = Net()
    path = tmp_path / "legacy.pth"
    torch.save(source.state_dict(), path, _use_new_zipfile_serialization=False)
    target = Net()
    load_checkpoint(target, path, strict=True)
    assert _equal_state(target, _snapshot(source))


# --- revise_keys --------------------------------------------------------------


def test_default_revise_keys_strip_ddp_prefix(tmp_path: Path) -> None:
    source = Net()
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = _save({"state_dict": state}, tmp_path / "ddp.pth")
    target = Net()
    load_checkpoint(target, path, strict=True)
    assert _equal_state(target, _snapshot(source))


@pytest.mark.parametrize("as_list", [True, False])
def test_custom_revise_keys_as_list_or_tuple(tmp_path: Path, as_list: bool) -> None:
    source = Net()
    state = {f"backbone.net.{k}": v for k, v in source.state_dict().items()}
    path = _save(state, tmp_path / "ckpt.pth")
    rules = [(r"^backbone\.", ""), (r"^net\.", "")]
    target = Net()
    load_checkpoint(target, path, strict=True, revise_keys=rules if as_list else tuple(rules))
    assert _equal_state(target, _snapshot(source))


def test_revise_keys_metadata_follows_keys(tmp_path: Path) -> None:
    class Versioned(nn.Module):
        _version = 7

        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2))
            self.seen: list[object] = []

        def _load_from_state_dict(
            self, state_dict: Any, prefix: str, local_metadata: Any, *args: Any
        ) -> None:
            self.seen.append(local_metadata.get("version"))
            super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    wrapper = nn.Module()
    wrapper.module = Versioned()
    path = _save(wrapper.state_dict(), tmp_path / "versioned.pth")
    target = Versioned()
    load_checkpoint(target, path, strict=True)
    assert target.seen == [7]


def test_revise_keys_collision_is_an_error(tmp_path: Path) -> None:
    path = _save({"a.weight": torch.zeros(1), "b.weight": torch.ones(1)}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"renames both 'a\.weight' and 'b\.weight'"):
        load_checkpoint(nn.Linear(1, 1), path, revise_keys=[(r"^[ab]\.", "")])


@pytest.mark.parametrize(
    ("revise_keys", "error", "match"),
    [
        ((r"^module\.", ""), TypeError, "wrap it in a list"),
        ("^module", TypeError, "list of \\(pattern, replacement\\) pairs"),
        ([("only-pattern",)], TypeError, r"revise_keys\[0\]"),
        ([(r"^x", 1)], TypeError, r"revise_keys\[0\]"),
        ([("(unclosed", "")], ValueError, "not a valid regular expression"),
    ],
)
def test_bad_revise_keys(tmp_path: Path, revise_keys: Any, error: type, match: str) -> None:
    path = _save(Net().state_dict(), tmp_path / "ok.pth")
    target = Net()
    before = _snapshot(target)
    with pytest.raises(error, match=match):
        load_checkpoint(target, path, revise_keys=revise_keys)
    assert _equal_state(target, before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "not a module"}, "`model` must be an nn.Module"),
        ({"filename": 3}, "`filename` must be a str"),
        ({"strict": "yes"}, "`strict` must be a bool"),
        ({"map_location": 5}, "`map_location`"),
        ({"allow_unsafe": 1}, "`allow_unsafe` must be a bool"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"model": Net(), "filename": _save({}, tmp_path / "e.pth")}
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        load_checkpoint(**args)


# --- mismatches ----------------------------------------------------------------


def _mismatched_checkpoint(tmp_path: Path) -> Path:
    state = Net(out=3).state_dict()  # fc has 3 outputs: a shape mismatch
    del state["conv.bias"]  # missing
    state["head.weight"] = torch.zeros(1)  # unexpected
    return _save(state, tmp_path / "mismatch.pth")


def test_report_lists_missing_unexpected_and_shapes_together(tmp_path: Path) -> None:
    path = _mismatched_checkpoint(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_checkpoint(Net(), path)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller
    assert "missing keys (1" in text
    assert "conv.bias" in text
    assert "unexpected keys (1" in text
    assert "head.weight" in text
    assert "shape mismatches (2" in text
    assert "fc.weight: checkpoint shape [3, 4], model shape [2, 4]" in text
    assert str(path) in text


def test_shape_mismatch_leaves_param_unchanged_and_loads_the_rest(tmp_path: Path) -> None:
    source = Net(out=3)
    path = _save(source.state_dict(), tmp_path / "m.pth")
    target = Net()
    fc_before = target.fc.weight.detach().clone()
    with pytest.warns(UserWarning, match="shape mismatches"):
        load_checkpoint(target, path)
    assert torch.equal(target.fc.weight, fc_before)
    assert torch.equal(target.conv.weight, source.conv.weight)


def test_strict_raises_with_the_report_and_loads_nothing(tmp_path: Path) -> None:
    path = _mismatched_checkpoint(tmp_path)
    target = Net()
    before = _snapshot(target)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(target, path, strict=True)
    text = str(info.value)
    assert "nothing was loaded" in text
    assert "conv.bias" in text
    assert "head.weight" in text
    assert "fc.weight" in text
    assert _equal_state(target, before)


def test_num_batches_tracked_is_not_reported_missing() -> None:
    state = {k: v for k, v in Net().state_dict().items() if "num_batches_tracked" not in k}
    result = load_state_dict(Net(), state, strict=True)
    assert result.is_clean
    assert result.missing_keys == []


def test_no_key_matched_hint_suggests_prefix() -> None:
    state = {f"encoder.{k}": v for k, v in Net().state_dict().items()}
    with pytest.warns(UserWarning, match=r"No key matched: .*revise_keys"):
        result = load_state_dict(Net(), state)
    assert result.loaded_keys == []


def test_non_tensor_value_for_a_parameter_is_a_mismatch() -> None:
    net = nn.Linear(2, 2)
    before = net.weight.detach().clone()
    with pytest.warns(UserWarning, match="non-tensor value"):
        result = load_state_dict(net, {"weight": "oops", "bias": torch.ones(2)})
    assert result.mismatched_keys == [("weight", None, (2, 2))]
    assert torch.equal(net.weight, before)
    assert torch.equal(net.bias, torch.ones(2))


def test_report_goes_to_a_given_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("camshaft.test.checkpoint")
    with caplog.at_level(logging.WARNING, logger=logger.name), warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings.warn when a logger is given
        load_state_dict(nn.Linear(2, 2), {"weight": torch.zeros(2, 2)}, logger=logger)
    assert [r.name for r in caplog.records] == [logger.name]
    assert "bias" in caplog.records[0].getMessage()


def test_silent_logger_and_bad_logger() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_state_dict(nn.Linear(2, 2), {"weight": torch.zeros(2, 2)}, logger="silent")
    with pytest.raises(TypeError, match="`logger`"):
        load_state_dict(nn.Linear(2, 2), {}, logger=42)  # type: ignore[arg-type]


def test_load_state_dict_bad_input() -> None:
    with pytest.raises(TypeError, match="`module`"):
        load_state_dict("net", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`state_dict`"):
        load_state_dict(nn.Linear(1, 1), [("weight", torch.zeros(1, 1))])  # type: ignore[arg-type]


# --- in-place copy vs meta assignment ---------------------------------------------


def test_parameter_identity_is_preserved_for_optimizers(tmp_path: Path) -> None:
    source = Net()
    path = _save(source.state_dict(), tmp_path / "c.pth")
    target = Net()
    optimizer = torch.optim.SGD(target.parameters(), lr=0.1)
    ids = [id(p) for p in target.parameters()]
    load_checkpoint(target, path)
    assert [id(p) for p in target.parameters()] == ids
    assert optimizer.param_groups[0]["params"][0] is target.conv.weight
    assert torch.equal(optimizer.param_groups[0]["params"][0], source.conv.weight)


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(str(path)):
                start, end = line.split()[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


def test_meta_model_is_assigned_the_mmapped_tensors(tmp_path: Path) -> None:
    source = Net()
    source.fc.weight.requires_grad_(False)
    path = _save({"state_dict": source.state_dict()}, tmp_path / "c.pth")
    with torch.device("meta"):
        target = Net()
    target.fc.weight.requires_grad_(False)
    checkpoint = load_checkpoint(target, path, strict=True)
    for key, value in target.state_dict().items():
        assert not value.is_meta, key
        assert torch.equal(value, source.state_dict()[key]), key
    # Same memory as the checkpoint's tensors: no second allocation.
    assert target.conv.weight.data_ptr() == checkpoint["state_dict"]["conv.weight"].data_ptr()
    assert isinstance(target.conv.weight, nn.Parameter)
    assert target.conv.weight.requires_grad
    assert not target.fc.weight.requires_grad
    if sys.platform.startswith("linux"):
        ranges = _mapped_ranges(path)
        assert any(lo <= target.fc.weight.data_ptr() < hi for lo, hi in ranges)


def test_meta_assignment_casts_to_the_model_dtype(tmp_path: Path) -> None:
    path = _save(nn.Linear(2, 2).double().state_dict(), tmp_path / "f64.pth")
    with torch.device("meta"):
        target = nn.Linear(2, 2)
    load_checkpoint(target, path, strict=True)
    assert target.weight.dtype == torch.float32
    assert not target.weight.is_meta


def test_mixed_meta_and_real_model(tmp_path: Path) -> None:
    source = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    path = _save(source.state_dict(), tmp_path / "mixed.pth")
    real = nn.Linear(2, 2)
    with torch.device("meta"):
        lazy = nn.Linear(2, 2)
    target = nn.Sequential(real, lazy)
    real_weight = real.weight
    checkpoint = load_checkpoint(target, path, strict=True)
    assert target[0].weight is real_weight  # copied in place
    assert not target[1].weight.is_meta  # assigned
    assert torch.equal(target[1].weight, source[1].weight)
    # torch writes an "assign" flag into the metadata it reads; ours stays clean,
    # so loading the same checkpoint into an eager model still copies in place.
    assert all("assign_to_params_buffers" not in v for v in checkpoint._metadata.values())
    eager = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    weight = eager[1].weight
    load_state_dict(eager, checkpoint, strict=True)
    assert eager[1].weight is weight


# --- formats -------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path: Path) -> None:
    source = Net()
    path = tmp_path / "net.safetensors"
    write_safetensors(source.state_dict(), path)
    target = Net()
    load_checkpoint(target, path, strict=True)
    assert _equal_state(target, _snapshot(source))


def test_safetensors_rejects_a_map_location_dict(tmp_path: Path) -> None:
    path = tmp_path / "net.safetensors"
    write_safetensors({"w": torch.zeros(1)}, path)
    with pytest.raises(TypeError, match="must be a device"):
        read_checkpoint(path, map_location={"cuda:0": "cpu"})


def test_corrupt_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors") as info:
        read_checkpoint(path)
    assert info.value.__cause__ is not None


# --- unsafe pickles --------------------------------------------------------------------


def test_unsafe_pickle_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    state = Net().state_dict()
    path = _save({"state_dict": state, "extra": MakeDir(str(marker))}, tmp_path / "evil.pth")
    target = Net()
    before = _snapshot(target)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(target, path)
    text = str(info.value)
    assert "makedirs" in text  # names the global that blocked it
    assert "no unsafe fallback was tried" in text
    assert "allow_unsafe=True" in text
    assert any("makedirs" in name for name in info.value.unsafe_globals)
    assert not marker.exists()
    assert _equal_state(target, before)


def test_unsafe_pickle_names_a_class_global(tmp_path: Path) -> None:
    path = _save({"w": torch.zeros(1), "ratio": fractions.Fraction(1, 3)}, tmp_path / "f.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"fractions\.Fraction"):
        read_checkpoint(path)


def test_allow_unsafe_opts_in(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    source = Net()
    path = _save(
        {"state_dict": source.state_dict(), "extra": MakeDir(str(marker))}, tmp_path / "e.pth"
    )
    target = Net()
    load_checkpoint(target, path, allow_unsafe=True)
    assert marker.is_dir()  # the opt-in really unpickles unsafely
    assert _equal_state(target, _snapshot(source))


# --- broken files -------------------------------------------------------------------------


def test_truncated_checkpoint(tmp_path: Path) -> None:
    good = _save(Net().state_dict(), tmp_path / "good.pth").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(Net(), path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"not a torch\.save checkpoint") as info:
        load_checkpoint(Net(), path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is not None


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.touch()
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(path)


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.pth"
    with pytest.raises(CheckpointNotFoundError, match=r"absent\.pth") as info:
        load_checkpoint(Net(), path)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, CheckpointError)


# --- memory-mapped pages are handed back after copying --------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="page release uses madvise and /proc (Linux)"
)


@linux_only
def test_release_drops_resident_pages_and_data_reads_back(tmp_path: Path) -> None:
    from camshaft.init._page_release import page_releaser

    source = torch.randn(8 << 20)  # 32 MiB
    path = _save({"w": source}, tmp_path / "big.pth")
    mapped = read_checkpoint(path)["w"]
    assert torch.equal(mapped, source)  # touches every page
    release = page_releaser(path)
    assert release is not None
    before = _rss()
    released = release([mapped])
    assert released > 30 << 20
    assert before - _rss() > 16 << 20
    assert torch.equal(mapped, source)  # faults back in from the file, unchanged


def test_release_never_touches_memory_that_is_not_the_file(tmp_path: Path) -> None:
    from camshaft.init._page_release import page_releaser

    path = _save({"w": torch.zeros(4)}, tmp_path / "small.pth")
    checkpoint = read_checkpoint(path)  # keeps the file mapped in this process
    anonymous = torch.randn(4 << 20)
    expected = anonymous.clone()
    release = page_releaser(path)
    if release is not None:  # None off Linux: nothing is ever released there
        assert release([anonymous]) == 0
    assert torch.equal(anonymous, expected)
    assert torch.equal(checkpoint["w"], torch.zeros(4))


def test_eager_load_keeps_returned_checkpoint_intact_and_removes_hooks(tmp_path: Path) -> None:
    source = nn.Sequential(*[nn.Linear(256, 256) for _ in range(4)])
    expected = {k: v.clone() for k, v in source.state_dict().items()}
    path = _save({"state_dict": source.state_dict()}, tmp_path / "seq.pth")
    target = nn.Sequential(*[nn.Linear(256, 256) for _ in range(4)])
    checkpoint = load_checkpoint(target, path, strict=True)
    for key, value in expected.items():
        assert torch.equal(checkpoint["state_dict"][key], value), key
        assert torch.equal(target.state_dict()[key], value), key
    assert all(not m._load_state_dict_post_hooks for m in target.modules())
