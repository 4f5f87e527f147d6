"""Visualizer: building backends, forwarding, named instances (camshaft.runner.visualization)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from camshaft.registry import Config, RegistryError
from camshaft.runner.visualization import (
    BaseVisBackend,
    LocalVisBackend,
    TensorboardVisBackend,
    Visualizer,
)
from camshaft.runner.visualization import _visualizer as visualizer_module


@pytest.fixture(autouse=True)
def _fresh_visualizers() -> Iterator[None]:
    Visualizer._reset_instances()
    yield
    Visualizer._reset_instances()


class Recorder(BaseVisBackend):
    """Records every call; no images."""

    def __init__(self, save_dir: str = "unused") -> None:
        super().__init__(save_dir)
        self.scalars: list[tuple[dict[str, Any], int]] = []
        self.configs: list[Any] = []
        self.closed = 0

    def add_scalars(self, scalar_dict: Mapping[str, Any], step: int = 0) -> None:
        self.scalars.append((dict(scalar_dict), step))

    def add_config(self, config: Any) -> None:
        self.configs.append(config)

    def close(self) -> None:
        self.closed += 1


class ImageRecorder(Recorder):
    """Records images too."""

    def __init__(self, save_dir: str = "unused") -> None:
        super().__init__(save_dir)
        self.images: list[tuple[str, int]] = []

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        self.images.append((name, step))


# --- building --------------------------------------------------------------------------


def test_builds_backends_from_configs_with_default_save_dir(tmp_path: Path) -> None:
    cfgs = [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
    vis = Visualizer(vis_backends=cfgs, save_dir=tmp_path)
    local = vis.get_backend("LocalVisBackend")
    tensorboard = vis.get_backend("TensorboardVisBackend")
    assert isinstance(local, LocalVisBackend)
    assert isinstance(tensorboard, TensorboardVisBackend)
    expected = str(tmp_path)  # the Visualizer's save_dir as it is (the runner adds vis_data)
    assert local.save_dir == expected
    assert tensorboard.save_dir == expected
    assert cfgs == [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
    assert vis.get_backend("WandbVisBackend") is None
    vis.close()


def test_scalars_land_in_save_dir(tmp_path: Path) -> None:
    save_dir = tmp_path / "20261123_101502" / "vis_data"  # what the runner passes
    vis = Visualizer(vis_backends=[dict(type="LocalVisBackend")], save_dir=str(save_dir))
    vis.add_scalars({"loss": torch.tensor(0.5)}, step=2, file_path="ignored.json")
    vis.add_scalar("acc", 0.75, step=3)
    vis.close()
    lines = (save_dir / "scalars.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"loss": 0.5, "step": 2},
        {"acc": 0.75, "step": 3},
    ]
    assert sorted(p.name for p in save_dir.iterdir()) == ["scalars.json"]


def test_explicit_save_dir_in_config_wins(tmp_path: Path) -> None:
    own = tmp_path / "own"
    vis = Visualizer(
        vis_backends=[dict(type="LocalVisBackend", save_dir=str(own))], save_dir=tmp_path / "run"
    )
    backend = vis.get_backend("LocalVisBackend")
    assert backend is not None
    assert backend.save_dir == str(own)


def test_config_save_dir_none_gets_the_default(tmp_path: Path) -> None:
    vis = Visualizer(vis_backends=[dict(type="LocalVisBackend", save_dir=None)], save_dir=tmp_path)
    backend = vis.get_backend("LocalVisBackend")
    assert backend is not None
    assert backend.save_dir == str(tmp_path)


def test_type_may_be_the_class_and_a_single_dict(tmp_path: Path) -> None:
    vis = Visualizer(vis_backends=dict(type=LocalVisBackend), save_dir=tmp_path)
    assert isinstance(vis.get_backend("LocalVisBackend"), LocalVisBackend)


def test_config_dict_subclass_and_named_backends(tmp_path: Path) -> None:
    cfg = Config(
        dict(
            vis_backends=[
                dict(type="LocalVisBackend", name="train_local"),
                dict(type="LocalVisBackend", name="extra", scalar_save_file="extra.json"),
            ]
        )
    )
    vis = Visualizer(vis_backends=cfg.vis_backends, save_dir=tmp_path)
    vis.add_scalars({"loss": 1.0}, step=1)
    vis.close()
    assert isinstance(vis.get_backend("train_local"), LocalVisBackend)
    assert (tmp_path / "scalars.json").is_file()
    assert (tmp_path / "extra.json").is_file()
    assert "name" in cfg.vis_backends[0]  # the caller's config is not modified


def test_duplicate_backend_names_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two backends named 'LocalVisBackend'"):
        Visualizer(
            vis_backends=[dict(type="LocalVisBackend"), dict(type="LocalVisBackend")],
            save_dir=tmp_path,
        )


def test_backend_instances_are_kept(tmp_path: Path) -> None:
    local = LocalVisBackend(tmp_path / "elsewhere")
    recorder = Recorder()
    vis = Visualizer(vis_backends=[local, recorder], save_dir=tmp_path)
    assert vis.get_backend("LocalVisBackend") is local
    assert vis.get_backend("Recorder") is recorder
    assert local.save_dir == str(tmp_path / "elsewhere")


def test_unknown_type_lists_close_names(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="LocalVisBackend"):
        Visualizer(vis_backends=[dict(type="LocalVisBackendd")], save_dir=tmp_path)
    # also when there is no save_dir (the class is looked up before the skip decision)
    with pytest.raises(RegistryError, match="TensorboardVisBackend"):
        Visualizer(vis_backends=[dict(type="TensorbordVisBackend")])


@pytest.mark.parametrize(
    ("vis_backends", "pattern"),
    [
        ("LocalVisBackend", r"`vis_backends` must be a list.*got str: 'LocalVisBackend'"),
        (42, r"`vis_backends` must be a list.*got int: 42"),
        ([dict(type="LocalVisBackend"), 3], r"`vis_backends\[1\]` must be .*got int: 3"),
        ([dict(type="LocalVisBackend", name=5)], r"`vis_backends\[0\]\['name'\]`"),
    ],
)
def test_bad_vis_backends(tmp_path: Path, vis_backends: Any, pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        Visualizer(vis_backends=vis_backends, save_dir=tmp_path)


def test_built_object_must_be_a_backend(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not a BaseVisBackend"):
        Visualizer(vis_backends=[dict(type=dict)], save_dir=tmp_path)


def test_bad_name_and_save_dir() -> None:
    with pytest.raises(TypeError, match="`name`"):
        Visualizer(name="")
    with pytest.raises(TypeError, match="`save_dir`"):
        Visualizer(save_dir=3)  # type: ignore[arg-type]


def test_backend_needing_save_dir_is_skipped_with_warning() -> None:
    with pytest.warns(UserWarning, match=r"skipped vis_backends\[0\] \(LocalVisBackend\)"):
        vis = Visualizer(vis_backends=[dict(type="LocalVisBackend"), Recorder()])
    assert vis.get_backend("LocalVisBackend") is None
    assert vis.get_backend("Recorder") is not None


# --- forwarding --------------------------------------------------------------------------


def test_every_backend_receives_the_same_scalars() -> None:
    first = Recorder()
    vis = Visualizer(vis_backends=[first, dict(type=Recorder, name="second")])
    second_built = vis.get_backend("second")
    assert isinstance(second_built, Recorder)
    scalars = {"loss": 0.5, "lr": 0.1}
    vis.add_scalars(scalars, step=7)
    vis.add_scalar("acc", 0.9, step=8)
    assert first.scalars == second_built.scalars == [(scalars, 7), ({"acc": 0.9}, 8)]
    config = Config(dict(a=1))
    vis.add_config(config)
    assert first.configs == second_built.configs == [config]
    vis.close()
    assert first.closed == second_built.closed == 1


def test_images_go_only_to_backends_that_store_them() -> None:
    plain, images = Recorder(), ImageRecorder()
    vis = Visualizer(vis_backends=[plain, images])
    vis.add_image("sample", np.zeros((2, 2, 3), dtype=np.uint8), step=4)
    assert images.images == [("sample", 4)]


def test_no_backends_is_a_no_op(tmp_path: Path) -> None:
    vis = Visualizer(save_dir=tmp_path)
    # nothing is validated or written when there is nowhere to write
    vis.add_scalars({"loss": 0.5}, step=1)
    vis.add_scalar("loss", 0.5)
    vis.add_config(Config(dict(a=1)))
    vis.add_image("x", None)
    vis.close()
    assert list(tmp_path.iterdir()) == []
    assert (
        repr(vis) == f"Visualizer(name='visualizer', vis_backends=[], save_dir={str(tmp_path)!r})"
    )


def test_only_the_main_process_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    vis = Visualizer(vis_backends=[recorder])
    monkeypatch.setattr(visualizer_module, "_is_main_process", lambda: False)
    vis.add_scalars({"loss": 0.5}, step=1)
    vis.add_config({"a": 1})
    assert recorder.scalars == []
    assert recorder.configs == []
    monkeypatch.undo()
    vis.add_scalars({"loss": 0.5}, step=1)
    assert recorder.scalars == [({"loss": 0.5}, 1)]


def test_is_main_process_without_a_process_group() -> None:
    assert visualizer_module._is_main_process() is True


def test_bad_scalars_raise_through_the_visualizer(tmp_path: Path) -> None:
    vis = Visualizer(vis_backends=[dict(type="LocalVisBackend")], save_dir=tmp_path)
    with pytest.raises(TypeError, match=r"scalar_dict\['loss'\]"):
        vis.add_scalars({"loss": torch.ones(2)}, step=1)
    assert list(tmp_path.iterdir()) == []


# --- named instances ------------------------------------------------------------------------


def test_get_instance_and_current(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="get_instance"):
        Visualizer.get_current_instance()
    first = Visualizer.get_instance(
        "run1", vis_backends=[dict(type="LocalVisBackend")], save_dir=tmp_path
    )
    assert first.instance_name == "run1"
    assert Visualizer.get_current_instance() is first
    assert Visualizer.check_instance_created("run1")
    assert not Visualizer.check_instance_created("run2")
    second = Visualizer.get_instance("run2")
    assert Visualizer.get_current_instance() is second
    # fetching an existing one returns it and does not change which is current
    assert Visualizer.get_instance("run1") is first
    assert Visualizer.get_current_instance() is second
    with pytest.warns(UserWarning, match="ignored"):
        assert Visualizer.get_instance("run1", save_dir=tmp_path) is first
    with pytest.raises(TypeError, match="non-empty str"):
        Visualizer.get_instance("")


def test_subclasses_have_their_own_instances() -> None:
    class DetVisualizer(Visualizer):
        pass

    base = Visualizer.get_instance("shared")
    det = DetVisualizer.get_instance("shared")
    assert isinstance(det, DetVisualizer)
    assert det is not base
    assert Visualizer.get_current_instance() is base
    assert DetVisualizer.get_current_instance() is det


def test_reset_instances_closes_backends() -> None:
    recorder = Recorder()
    Visualizer.get_instance("to_reset", vis_backends=[recorder])
    Visualizer._reset_instances()
    assert recorder.closed == 1
    assert not Visualizer.check_instance_created("to_reset")
