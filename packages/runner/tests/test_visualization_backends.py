"""LocalVisBackend and TensorboardVisBackend (camshaft.runner.visualization._backends)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from camshaft.registry import Config
from camshaft.runner import VISBACKENDS
from camshaft.runner.visualization import (
    BaseVisBackend,
    LocalVisBackend,
    TensorboardVisBackend,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _lines(path: str | Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


# --- LocalVisBackend: scalars ---------------------------------------------------------


def test_local_json_lines_exact(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path / "vis_data")
    backend.add_scalars({"loss": 0.5, "lr": 0.01}, step=3)
    backend.add_scalars({"accuracy/top1": 87}, step=4)
    backend.add_scalar("mAP", 0.25)
    backend.close()
    text = (tmp_path / "vis_data" / "scalars.json").read_text(encoding="utf-8")
    assert text == (
        '{"loss": 0.5, "lr": 0.01, "step": 3}\n'
        '{"accuracy/top1": 87, "step": 4}\n'
        '{"mAP": 0.25, "step": 0}\n'
    )


def test_local_step_in_dict_is_kept_like_mmengine(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    backend.add_scalars({"loss": 1.0, "step": 7}, step=3)
    backend.close()
    assert json.loads(_lines(backend.scalar_save_file)[0]) == {"loss": 1.0, "step": 7}


def test_local_tensor_and_numpy_conversion(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    backend.add_scalars(
        {
            "t0d": torch.tensor(0.25),
            "t1": torch.tensor([3]),
            "tbool": torch.tensor(True),
            "np_f32": np.float32(0.5),
            "np_i64": np.int64(4),
            "np_0d": np.array(1.5),
            "py_bool": True,
            "np_f64": np.float64(2.0),
        },
        step=1,
    )
    backend.close()
    record = json.loads(_lines(backend.scalar_save_file)[0])
    assert record == {
        "t0d": 0.25,
        "t1": 3,
        "tbool": 1,
        "np_f32": 0.5,
        "np_i64": 4,
        "np_0d": 1.5,
        "py_bool": 1,
        "np_f64": 2.0,
        "step": 1,
    }
    assert type(record["t1"]) is int
    assert type(record["np_f64"]) is float


def test_local_tensor_requiring_grad_is_converted(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    loss = (torch.ones(2, requires_grad=True) * 2).mean()
    backend.add_scalars({"loss": loss}, step=2)
    backend.close()
    assert _lines(backend.scalar_save_file) == ['{"loss": 2.0, "step": 2}']


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (torch.zeros(2, 3), "Tensor"),
        (np.zeros(2), "ndarray"),
        ("0.5", "str"),
        ([1.0], "list"),
        (None, "NoneType"),
        (torch.tensor(1 + 2j), "Tensor"),
    ],
)
def test_local_bad_value_type_names_key_and_type(
    tmp_path: Path, value: object, type_name: str
) -> None:
    backend = LocalVisBackend(tmp_path / "vis")
    with pytest.raises(TypeError, match=rf"scalar_dict\['bad'\].*{type_name}"):
        backend.add_scalars({"ok": 1.0, "bad": value}, step=1)
    # nothing written, not even the directory
    assert not (tmp_path / "vis").exists()


def test_local_bad_key_step_and_dict(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    with pytest.raises(TypeError, match="keys must be str"):
        backend.add_scalars({1: 0.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="`step` must be an int"):
        backend.add_scalars({"loss": 0.5}, step=True)
    with pytest.raises(TypeError, match="`step` must be an int"):
        backend.add_scalars({"loss": 0.5}, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`scalar_dict` must be a mapping"):
        backend.add_scalars([("loss", 0.5)])  # type: ignore[arg-type]
    assert not os.path.exists(backend.scalar_save_file)


def test_local_creates_save_dir_lazily(tmp_path: Path) -> None:
    save_dir = tmp_path / "a" / "b" / "vis_data"
    backend = LocalVisBackend(save_dir)
    assert not save_dir.exists()
    backend.close()  # closing an unused backend creates nothing either
    assert not save_dir.exists()
    backend.add_scalars({"loss": 0.1}, step=1)
    assert save_dir.is_dir()
    backend.close()


def test_local_flushes_each_line(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    backend.add_scalars({"loss": 0.1}, step=1)
    # read while the file is still open: the line must already be on disk
    assert _lines(backend.scalar_save_file) == ['{"loss": 0.1, "step": 1}']
    backend.add_scalars({"loss": 0.2}, step=2)
    assert len(_lines(backend.scalar_save_file)) == 2
    backend.close()


def test_local_close_is_idempotent_and_write_after_close_appends(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    backend.add_scalars({"loss": 0.1}, step=1)
    backend.close()
    backend.close()
    backend.add_scalars({"loss": 0.2}, step=2)
    backend.close()
    assert len(_lines(backend.scalar_save_file)) == 2


def test_local_custom_file_names(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path, scalar_save_file="metrics.json", config_save_file="cfg.txt")
    backend.add_scalars({"x": 1}, step=0)
    backend.add_config("a = 1")
    backend.close()
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "cfg.txt").read_text() == "a = 1"


def test_local_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="save_dir"):
        LocalVisBackend(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="save_dir"):
        LocalVisBackend(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"scalar_save_file.*'\.json'"):
        LocalVisBackend(tmp_path, scalar_save_file="scalars.txt")
    with pytest.raises(TypeError, match="img_save_dir"):
        LocalVisBackend(tmp_path, img_save_dir="")


# --- LocalVisBackend: config and images ----------------------------------------------


def test_local_add_config_uses_pretty_text(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path / "vis")
    backend.add_config(Config(dict(a=1, b=dict(c=[1, 2]))))
    assert (tmp_path / "vis" / "config.py").read_text() == "a = 1\nb = dict(c=[1, 2])\n"
    backend.add_config({"lr": 0.1})
    assert (tmp_path / "vis" / "config.py").read_text() == "{'lr': 0.1}"
    assert sorted(os.listdir(tmp_path / "vis")) == ["config.py"]  # no temp files left


def test_local_add_image_writes_png(tmp_path: Path) -> None:
    backend = LocalVisBackend(tmp_path)
    image = np.zeros((8, 6, 3), dtype=np.uint8)
    image[..., 0] = 255
    backend.add_image("sample", image, step=3)
    backend.add_image("val/gray", torch.zeros(4, 4, dtype=torch.uint8), step=1)
    png = tmp_path / "vis_image" / "sample_3.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "vis_image" / "val" / "gray_1.png").read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="uint8"):
        backend.add_image("bad", np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        backend.add_image("bad", np.zeros((4, 4, 2), dtype=np.uint8))


def test_local_add_image_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.image", None)
    backend = LocalVisBackend(tmp_path)
    with pytest.raises(ImportError, match=r'pip install "camshaft-runner\[plot\]"'):
        backend.add_image("x", np.zeros((2, 2, 3), dtype=np.uint8))


# --- the base class and the registry ----------------------------------------------------


class _ScalarsOnly(BaseVisBackend):
    def __init__(self, save_dir: str = "unused") -> None:
        super().__init__(save_dir)
        self.calls: list[tuple[dict[str, Any], int]] = []

    def add_scalars(self, scalar_dict: Mapping[str, Any], step: int = 0) -> None:
        self.calls.append((dict(scalar_dict), step))

    def add_config(self, config: Any) -> None:
        pass


def test_base_is_abstract_and_add_image_not_implemented() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BaseVisBackend("x")  # type: ignore[abstract]
    backend = _ScalarsOnly()
    with pytest.raises(NotImplementedError, match="_ScalarsOnly"):
        backend.add_image("img", np.zeros((2, 2, 3), dtype=np.uint8))
    backend.add_scalar("loss", 0.5, step=2)
    assert backend.calls == [({"loss": 0.5}, 2)]
    assert backend.experiment is backend
    backend.close()  # the default close does nothing


def test_backends_are_registered() -> None:
    assert VISBACKENDS.get("LocalVisBackend") is LocalVisBackend
    assert VISBACKENDS.get("TensorboardVisBackend") is TensorboardVisBackend
    built = VISBACKENDS.build(dict(type="LocalVisBackend", save_dir="somewhere"))
    assert isinstance(built, LocalVisBackend)
    assert built.save_dir == "somewhere"


# --- TensorboardVisBackend --------------------------------------------------------------


def _event_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("events.out.tfevents.*"))


def test_tensorboard_writes_event_file(tmp_path: Path) -> None:
    save_dir = tmp_path / "tb"
    backend = TensorboardVisBackend(save_dir)
    assert not save_dir.exists()  # lazy: nothing until the first write
    backend.add_scalars({"loss": torch.tensor(0.5), "lr": 0.01}, step=3)
    backend.add_scalar("loss", 0.25, step=4)
    backend.add_config(Config(dict(a=1)))
    backend.add_image("img", np.zeros((4, 4, 3), dtype=np.uint8), step=1)
    backend.close()
    backend.close()
    files = _event_files(save_dir)
    assert len(files) == 1
    assert files[0].stat().st_size > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(save_dir))
    events.Reload()
    loss = [(e.step, e.value) for e in events.Scalars("loss")]
    assert loss == [(3, 0.5), (4, 0.25)]
    assert [e.step for e in events.Scalars("lr")] == [3]


def test_tensorboard_bad_value_writes_nothing(tmp_path: Path) -> None:
    backend = TensorboardVisBackend(tmp_path / "tb")
    with pytest.raises(TypeError, match=r"scalar_dict\['loss'\].*Tensor"):
        backend.add_scalars({"loss": torch.zeros(3)}, step=1)
    assert not (tmp_path / "tb").exists()


def test_tensorboard_missing_raises_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = TensorboardVisBackend(tmp_path / "tb")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r'pip install "camshaft-runner\[tensorboard\]"'):
        backend.add_scalars({"loss": 0.5}, step=1)
    # and when the tensorboard package itself is missing, building already says so
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r'pip install "camshaft-runner\[tensorboard\]"'):
        TensorboardVisBackend(tmp_path / "tb2")


def test_tensorboard_needs_save_dir() -> None:
    with pytest.raises(ValueError, match="save_dir"):
        TensorboardVisBackend(None)  # type: ignore[arg-type]
