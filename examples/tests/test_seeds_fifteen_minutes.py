"""The 15-minute seed (CIFAR-10, ``examples/seeds/fifteen_minutes/cifar10.py``).

A quick run on fake batch files trains, validates and checkpoints; the loader reads
the real files' pickle format and refuses bad input with errors that name the file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "seeds" / "fifteen_minutes" / "cifar10.py"


def _import(path: Path, name: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def cifar() -> ModuleType:
    return _import(SCRIPT, "camshaft_seed_fifteen_minutes_cifar10")


@pytest.fixture
def data_root(tmp_path: Path, cifar: ModuleType) -> Path:
    root = tmp_path / "data"
    assert cifar.main(["--make-fake-data", str(root)]) is None
    return root


def _scalars(work_dir: Path) -> list[dict[str, Any]]:
    (path,) = work_dir.glob("*/vis_data/scalars.json")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_quick_run_trains_validates_and_checkpoints(
    tmp_path: Path, cifar: ModuleType, data_root: Path
) -> None:
    work_dir = tmp_path / "work"
    runner = cifar.main(["--data-root", str(data_root), "--work-dir", str(work_dir), "--quick"])
    try:
        losses = runner.message_hub.get_scalar("train/loss").data[0]
        assert len(losses) == cifar.QUICK_TRAIN_IMAGES // 32  # one epoch of batches of 32
        assert np.isfinite(losses).all()
        assert losses[-3:].mean() < losses[:3].mean(), losses  # it learns the colours
        records = _scalars(work_dir)
        assert any("loss" in record for record in records)
        (validation,) = [record for record in records if "accuracy" in record]
        assert 0.0 <= validation["accuracy"] <= 100.0
    finally:
        runner.close()
    assert (work_dir / "last_checkpoint").read_text().strip().endswith("epoch_1.pth")
    checkpoint = torch.load(work_dir / "epoch_1.pth", weights_only=True)
    assert checkpoint["meta"]["epoch"] == 1
    assert any(key.startswith("resnet.") for key in checkpoint["state_dict"])


def test_fake_batches_have_the_real_files_format(cifar: ModuleType, tmp_path: Path) -> None:
    folder = cifar.write_cifar_batches(tmp_path, images_per_batch=7, test_images=5, seed=1)
    assert folder == tmp_path / "cifar-10-batches-py"
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    with (folder / "data_batch_2").open("rb") as file:
        batch = pickle.load(file, encoding="bytes")  # how the real files are read
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8
    assert batch[b"data"].shape == (7, 3072)
    assert len(batch[b"labels"]) == 7
    assert all(0 <= label <= 9 for label in batch[b"labels"])
    with (folder / "data_batch_2").open("rb") as file:
        as_str = pickle.load(file, encoding="latin1")  # how torchvision reads them
    assert set(as_str) == {"batch_label", "labels", "data", "filenames"}
    assert np.array_equal(as_str["data"], batch[b"data"])
    assert b"numpy.core.multiarray" in (folder / "test_batch").read_bytes()  # numpy 1 reads it


def test_dataset_reads_batches_and_applies_the_seeds_transforms(
    cifar: ModuleType, tmp_path: Path
) -> None:
    cifar.write_cifar_batches(tmp_path, images_per_batch=6, test_images=4)
    plain = cifar.CIFAR10(tmp_path, train=True)
    assert len(plain) == 30
    assert len(cifar.CIFAR10(tmp_path, train=False)) == 4
    image, label = plain[0]
    with (tmp_path / "cifar-10-batches-py" / "data_batch_1").open("rb") as file:
        first = pickle.load(file, encoding="bytes")
    # row = red plane, green plane, blue plane; the item is (H, W, C)
    assert np.array_equal(image[:, :, 1].reshape(-1), first[b"data"][0, 1024:2048])
    assert label == first[b"labels"][0]
    assert len(cifar.CIFAR10(tmp_path, train=True, limit=8)) == 8

    t = cifar.transforms
    train = cifar.CIFAR10(
        tmp_path,
        transform=t.Compose([t.RandomCrop(32, padding=4), t.RandomHorizontalFlip(), t.ToTensor()]),
    )
    tensor, _ = train[0]
    assert tensor.shape == (3, 32, 32)
    assert tensor.dtype == torch.float32
    assert float(tensor.min()) >= 0.0
    assert float(tensor.max()) <= 1.0
    crop = t.RandomCrop(32, padding=4)(np.full((32, 32, 3), 255, np.uint8))
    assert crop.shape == (32, 32, 3)
    assert np.array_equal(t.RandomHorizontalFlip(p=1.0)(image), image[:, ::-1])
    normalised = t.Normalize(**cifar.norm_cfg)(torch.full((3, 2, 2), 0.491))
    assert torch.allclose(normalised[0], torch.zeros(2, 2), atol=1e-6)


def test_missing_batch_file_names_it_and_the_layout(cifar: ModuleType, tmp_path: Path) -> None:
    cifar.write_cifar_batches(tmp_path, images_per_batch=2, test_images=2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as info:
        cifar.CIFAR10(tmp_path, train=True)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_3") in message
    assert "data_batch_1 .. data_batch_5" in message
    assert "test_batch" in message
    assert "--make-fake-data" in message
    with pytest.raises(FileNotFoundError, match=r"nowhere.*test_batch' not found"):
        cifar.CIFAR10(tmp_path / "nowhere", train=False)


class _RunsCode:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo pwned",))


BAD_BATCHES: dict[str, tuple[object, str]] = {
    "wrong keys": (
        {b"images": np.zeros((2, 3072), np.uint8), b"targets": [0, 1]},
        r"lacks the keys \[b'data', b'labels'\].*found \[b'images', b'targets'\]",
    ),
    "cifar-100": (
        {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]},
        r"lacks the keys \[b'labels'\].*'fine_labels' means CIFAR-100",
    ),
    "not a dict": ([1, 2, 3], "must hold a dict, got list"),
    "wrong shape": (
        {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
        r"b'data' must be an N x 3072 uint8 array, got uint8 with shape \(2, 1024\)",
    ),
    "float data": (
        {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
        "got float32",
    ),
    "label count": (
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
        r"b'labels' must be 2 ints",
    ),
    "label range": (
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
        r"must be in 0\.\.9, got 0\.\.10",
    ),
    "code in the pickle": (_RunsCode(), r"refusing to load the global (posix|nt|os)\.system"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_bad_batch_file_is_refused_naming_the_file(
    case: str, cifar: ModuleType, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cifar.write_cifar_batches(tmp_path, images_per_batch=2, test_images=2)
    content, pattern = BAD_BATCHES[case]
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=pattern) as info:
        cifar.CIFAR10(tmp_path, train=False)
    assert str(path) in str(info.value)
    assert "pwned" not in capfd.readouterr().out


def test_truncated_file_is_refused(cifar: ModuleType, tmp_path: Path) -> None:
    cifar.write_cifar_batches(tmp_path, images_per_batch=2, test_images=2)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch file"):
        cifar.load_cifar_batch(path)
