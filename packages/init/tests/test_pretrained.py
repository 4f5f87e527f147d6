"""PretrainedInit: loading a checkpoint (or a prefixed part of it) through init_cfg."""

# dict(type=...) is the init_cfg vocabulary under test, so C408 is off here.

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from camshaft.init import (
    WEIGHT_INITIALIZERS,
    CheckpointError,
    PretrainedInit,
    UnsafeCheckpointError,
    initialize,
    record_init,
)


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.fc = nn.Linear(2, 2)


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.head = nn.Linear(2, 5)


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def test_registered_under_both_names() -> None:
    assert WEIGHT_INITIALIZERS.get("Pretrained") is PretrainedInit
    assert WEIGHT_INITIALIZERS.get("PretrainedInit") is PretrainedInit
    assert PretrainedInit.matches_whole_module is True


def test_initialize_loads_the_whole_checkpoint(tmp_path: Path) -> None:
    source = Backbone()
    path = _save({"state_dict": source.state_dict()}, tmp_path / "backbone.pth")
    target = Backbone()
    weight = target.conv.weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "neither layer nor override" warning
        initialize(target, dict(type="Pretrained", checkpoint=str(path)))
    assert target.conv.weight is weight
    assert torch.equal(target.conv.weight, source.conv.weight)
    assert torch.equal(target.fc.bias, source.fc.bias)


def test_ddp_prefix_is_stripped_without_prefix(tmp_path: Path) -> None:
    source = Backbone()
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    target = Backbone()
    PretrainedInit(_save(state, tmp_path / "ddp.pth"))(target)
    assert torch.equal(target.fc.weight, source.fc.weight)


def test_prefix_loads_only_that_part(tmp_path: Path) -> None:
    detector = Detector()
    path = _save({"state_dict": detector.state_dict()}, tmp_path / "detector.pth")
    backbone = Backbone()
    initialize(backbone, dict(type="Pretrained", checkpoint=str(path), prefix="backbone"))
    assert torch.equal(backbone.conv.weight, detector.backbone.conv.weight)
    assert torch.equal(backbone.fc.weight, detector.backbone.fc.weight)


def test_prefix_with_no_key_names_prefix_and_existing_keys(tmp_path: Path) -> None:
    path = _save(Detector().state_dict(), tmp_path / "detector.pth")
    backbone = Backbone()
    before = backbone.conv.weight.detach().clone()
    with pytest.raises(CheckpointError, match="prefix='neck'") as info:
        PretrainedInit(path, prefix="neck")(backbone)
    text = str(info.value)
    assert "backbone.conv.weight" in text
    assert text.count("'backbone.") + text.count("'head.") == 5  # up to five sample keys
    assert torch.equal(backbone.conv.weight, before)


def test_init_log_marks_only_loaded_parameters(tmp_path: Path) -> None:
    partial = {k: v for k, v in Backbone().state_dict().items() if k.startswith("conv.")}
    path = _save(partial, tmp_path / "partial.pth")
    target = Backbone()
    with record_init() as record:
        PretrainedInit(path)(target)
    assert record.describe(target.conv.weight) == f"PretrainedInit: load from {path}"
    assert record.describe(target.conv.bias) == f"PretrainedInit: load from {path}"
    assert record.describe(target.fc.weight) is None


def test_mismatch_report_goes_to_the_camshaft_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    partial = {k: v for k, v in Backbone().state_dict().items() if k.startswith("conv.")}
    path = _save(partial, tmp_path / "partial.pth")
    with caplog.at_level(logging.WARNING, logger="camshaft"):
        PretrainedInit(path)(Backbone())
    messages = [r.getMessage() for r in caplog.records if r.name == "camshaft"]
    assert len(messages) == 1
    assert "fc.weight" in messages[0]
    assert "missing keys" in messages[0]


def test_meta_module_is_materialised(tmp_path: Path) -> None:
    source = Backbone()
    path = _save(source.state_dict(), tmp_path / "b.pth")
    with torch.device("meta"):
        target = Backbone()
    with record_init() as record:
        PretrainedInit(path)(target)
    assert not target.fc.weight.is_meta
    assert torch.equal(target.fc.weight, source.fc.weight)
    assert record.describe(target.fc.weight) == f"PretrainedInit: load from {path}"


def test_url_checkpoint(http_server, cache_home: Path) -> None:
    source = Backbone()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    url = http_server.serve("/backbone.pth", buffer.getvalue())
    target = Backbone()
    initialize(target, dict(type="Pretrained", checkpoint=url))
    assert torch.equal(target.conv.weight, source.conv.weight)


def test_describe_and_str() -> None:
    init = PretrainedInit("ckpt/model.pth", prefix="backbone")
    assert init.describe() == "PretrainedInit: load from ckpt/model.pth"
    assert str(init) == init.describe()
    assert "prefix='backbone'" in repr(init)


def test_unsafe_checkpoint_is_refused_unless_opted_in(tmp_path: Path) -> None:
    import fractions

    source = Backbone()
    path = _save(
        {"state_dict": source.state_dict(), "f": fractions.Fraction(1, 2)}, tmp_path / "u.pth"
    )
    with pytest.raises(UnsafeCheckpointError, match=r"fractions\.Fraction"):
        PretrainedInit(path)(Backbone())
    target = Backbone()
    PretrainedInit(path, allow_unsafe=True)(target)
    assert torch.equal(target.conv.weight, source.conv.weight)


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"gone\.pth"):
        initialize(Backbone(), dict(type="Pretrained", checkpoint=str(tmp_path / "gone.pth")))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"checkpoint": 3}, TypeError, "`checkpoint` must be a path or URL"),
        ({"checkpoint": ""}, ValueError, "`checkpoint` is empty"),
        ({"checkpoint": "x.pth", "prefix": 1}, TypeError, "`prefix` must be a str"),
        ({"checkpoint": "x.pth", "prefix": "."}, ValueError, "`prefix` must name a submodule"),
        ({"checkpoint": "x.pth", "map_location": 1.5}, TypeError, "`map_location`"),
        ({"checkpoint": "x.pth", "allow_unsafe": "yes"}, TypeError, "`allow_unsafe`"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        PretrainedInit(**kwargs)  # type: ignore[arg-type]


def test_call_rejects_a_non_module(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"`module` must be an nn\.Module"):
        PretrainedInit(tmp_path / "x.pth")("not a module")  # type: ignore[arg-type]
