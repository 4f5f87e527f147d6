"""The model tutorial seeds as programs: each runs in quick mode and does what its seed shows.

The programs live in examples/seeds/model_tutorial/ and import each other as sibling
modules (as they do when run as scripts), so the fixture below puts that folder on
``sys.path`` for this module only.
"""

from __future__ import annotations

import gzip
import importlib
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "model_tutorial"
MODULES = (
    "fashion_mnist_idx",
    "fashion_mnist",
    "normalize_preprocessor",
    "pytorch_baseline",
    "init_examples",
)
EPOCHS = 5  # the seeds' max_epochs; --quick shrinks the data, not the epochs
SQRT2 = math.sqrt(2.0)


@pytest.fixture(scope="module")
def seeds() -> Iterator[SimpleNamespace]:
    sys.path.insert(0, str(SEEDS))
    try:
        yield SimpleNamespace(**{name: importlib.import_module(name) for name in MODULES})
    finally:
        sys.path.remove(str(SEEDS))
        for name in MODULES:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # On a shared 2-core machine, two OpenMP threads make these small MLP steps ~10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fashion_root(seeds: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 train / 500 test learnable 28x28 images in IDX files (train ones gzipped).

    Each class lights a fixed random 30% of the pixels (150..254) over dim noise (0..59).
    """
    root = tmp_path_factory.mktemp("fashion_mnist")
    rng = np.random.default_rng(0)
    templates = rng.random((10, 28, 28)) < 0.3
    for prefix, count, suffix in (("train", 3000, ".gz"), ("t10k", 500, "")):
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        bright = rng.integers(150, 255, size=(count, 28, 28), dtype=np.uint8)
        dim = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
        images = np.where(templates[labels], bright, dim)
        seeds.fashion_mnist_idx.write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images)
        seeds.fashion_mnist_idx.write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return root


def _assert_trained(runner: Any, work_dir: Path, min_accuracy: float) -> None:
    """Loss went down, accuracy is above chance (0.1), and every epoch left a checkpoint."""
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    accuracies = [r["Accuracy"] for r in records if "Accuracy" in r]
    assert len(accuracies) == EPOCHS
    assert losses[-1] < losses[0], losses
    assert accuracies[-1] > min_accuracy, accuracies
    # The logged Avg_loss is smoothed over epochs (its key matches mean_pattern); the
    # message hub keeps each epoch's own value.
    val_losses = runner.message_hub.get_scalar("val/Avg_loss").data[0]
    assert list(val_losses) == sorted(val_losses, reverse=True), val_losses
    for epoch in range(1, EPOCHS + 1):
        assert (work_dir / f"epoch_{epoch}.pth").is_file()
    assert (work_dir / "last_checkpoint").read_text().strip().endswith(f"epoch_{EPOCHS}.pth")
    checkpoint = torch.load(work_dir / f"epoch_{EPOCHS}.pth", weights_only=True)
    model_state = runner.unwrapped_model.state_dict()
    assert checkpoint["state_dict"].keys() == model_state.keys()
    for key, value in model_state.items():
        assert torch.equal(checkpoint["state_dict"][key], value), key


# --- fashion_mnist.py and normalize_preprocessor.py: the Runner examples -----------------


def test_fashion_mnist_trains_with_the_runner(
    seeds: SimpleNamespace, fashion_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    work_dir = tmp_path / "work_dir"
    argv = ["--data-root", str(fashion_root), "--work-dir", str(work_dir), "--quick"]
    runner = seeds.fashion_mnist.main(argv)
    assert isinstance(runner.unwrapped_model, seeds.fashion_mnist.NeuralNetwork)
    assert len(runner.train_dataloader.dataset) == 3000
    # The seed's SGD(lr=1e-3) learns slowly: 235 iterations reach about 0.7 here (chance: 0.1).
    _assert_trained(runner, work_dir, min_accuracy=0.25)


def test_normalize_preprocessor_seed_snippet_matches_the_seed_output(
    seeds: SimpleNamespace,
) -> None:
    torch.manual_seed(0)
    model, (classes, loss) = seeds.normalize_preprocessor.seed_snippet()
    assert isinstance(
        model.data_preprocessor, seeds.normalize_preprocessor.NormalizeDataPreprocessor
    )
    # The seed prints (tensor([6, 6, 6]), 23.03...): three equal classes (the input
    # normalises to zeros) and -sum(log p) over ten soft labels of 1, about 10 ln 10.
    assert classes.shape == (3,)
    assert len(set(classes.tolist())) == 1
    assert loss == pytest.approx(10 * math.log(10), abs=0.05)
    assert all(param.grad is None for param in model.parameters())  # zero_grad ran after the step


def test_normalize_preprocessor_trains_with_the_runner(
    seeds: SimpleNamespace, fashion_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    work_dir = tmp_path / "work_dir"
    argv = ["--data-root", str(fashion_root), "--work-dir", str(work_dir), "--quick"]
    runner = seeds.normalize_preprocessor.main(argv)
    model = runner.unwrapped_model
    assert isinstance(
        model.data_preprocessor, seeds.normalize_preprocessor.NormalizeDataPreprocessor
    )
    # The dataset yields uint8 images: the preprocessor, not the dataset, normalises.
    assert runner.train_dataloader.dataset[0][0].dtype == torch.uint8
    _assert_trained(runner, work_dir, min_accuracy=0.8)


def test_pytorch_baseline_trains_the_same_weights_as_the_runner(
    seeds: SimpleNamespace, fashion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The zh-early seed's plain loop and its Runner version: same data, same weights."""
    torch.manual_seed(0)
    model = seeds.pytorch_baseline.main(["--data-root", str(fashion_root), "--quick"])
    out = capsys.readouterr().out
    accuracies = [float(v) for v in re.findall(r"Accuracy: ([\d.]+)%", out)]
    losses = [float(v) for v in re.findall(r"Avg loss: ([\d.]+)", out)]
    assert len(accuracies) == EPOCHS
    assert out.rstrip().endswith("Done!")
    assert losses == sorted(losses, reverse=True), losses
    assert accuracies[-1] > 25.0, accuracies

    torch.manual_seed(0)
    argv = ["--data-root", str(fashion_root), "--work-dir", str(tmp_path), "--quick"]
    seeds.fashion_mnist.main(argv)
    runner_state = torch.load(tmp_path / f"epoch_{EPOCHS}.pth", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, runner_state[key]), key


def test_make_fake_data_writes_a_readable_dataset(seeds: SimpleNamespace, tmp_path: Path) -> None:
    assert seeds.fashion_mnist.main(["--make-fake-data", str(tmp_path)]) is None
    train = seeds.fashion_mnist_idx.FashionMNIST(tmp_path, train=True)
    test = seeds.fashion_mnist_idx.FashionMNIST(
        tmp_path, train=False, transform=seeds.fashion_mnist_idx.ToTensor()
    )
    assert (len(train), len(test)) == (6000, 1000)
    image, label = test[0]
    assert image.shape == (1, 28, 28)
    assert image.dtype == torch.float32
    assert float(image.min()) >= 0.0
    assert float(image.max()) <= 1.0
    assert isinstance(label, int)
    assert 0 <= label < 10


# --- the IDX reader and writer -------------------------------------------------------------


def test_write_idx_writes_the_standard_big_endian_layout(
    seeds: SimpleNamespace, tmp_path: Path
) -> None:
    path = seeds.fashion_mnist_idx.write_idx(
        tmp_path / "x", np.arange(6, dtype=np.uint8).reshape(2, 3)
    )
    assert path.read_bytes() == bytes.fromhex("00000802 00000002 00000003 000102030405")
    labels = seeds.fashion_mnist_idx.write_idx(tmp_path / "y", np.array([258], dtype=np.int16))
    assert labels.read_bytes() == bytes.fromhex("00000b01 00000001 0102")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["plain", "packed.gz"])
def test_idx_round_trip(seeds: SimpleNamespace, tmp_path: Path, dtype: Any, name: str) -> None:
    array = (np.arange(24) - 7).astype(dtype).reshape(2, 3, 4)
    seeds.fashion_mnist_idx.write_idx(tmp_path / name, array)
    back = seeds.fashion_mnist_idx.read_idx(tmp_path / name)
    assert back.dtype == array.dtype
    assert back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_read_idx_rejects_a_bad_magic_number(seeds: SimpleNamespace, tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    with pytest.raises(
        seeds.fashion_mnist_idx.IDXFormatError, match=r"bad IDX magic number"
    ) as info:
        seeds.fashion_mnist_idx.read_idx(path)
    assert str(path) in str(info.value)
    assert "0x89504e47" in str(info.value)


@pytest.mark.parametrize(
    ("cut", "message"),
    [(3, r"shorter than the 4-byte IDX magic"), (10, r"truncated header"), (-5, r"truncated: ")],
)
def test_read_idx_rejects_a_truncated_file(
    seeds: SimpleNamespace, tmp_path: Path, cut: int, message: str
) -> None:
    whole = seeds.fashion_mnist_idx.write_idx(tmp_path / "whole", np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(whole.read_bytes()[:cut])
    with pytest.raises(seeds.fashion_mnist_idx.IDXFormatError, match=message) as info:
        seeds.fashion_mnist_idx.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_trailing_bytes(seeds: SimpleNamespace, tmp_path: Path) -> None:
    path = seeds.fashion_mnist_idx.write_idx(tmp_path / "labels", np.zeros(10, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(seeds.fashion_mnist_idx.IDXFormatError, match=r"labels: has trailing bytes"):
        seeds.fashion_mnist_idx.read_idx(path)


def test_write_idx_rejects_a_dtype_idx_cannot_hold(seeds: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"IDX cannot hold dtype int64"):
        seeds.fashion_mnist_idx.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


def test_fashion_mnist_names_a_missing_file(seeds: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"'train-images-idx3-ubyte' \(or .*\.gz\) not found"
    ):
        seeds.fashion_mnist_idx.FashionMNIST(tmp_path, train=True, download=True)


def test_fashion_mnist_rejects_files_that_do_not_match(
    seeds: SimpleNamespace, tmp_path: Path
) -> None:
    idx = seeds.fashion_mnist_idx
    idx.write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    idx.write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(idx.IDXFormatError, match=r"holds 5 images but .* holds 4 labels"):
        idx.FashionMNIST(tmp_path, train=False)
    idx.write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros(4, np.uint8))  # labels' layout
    with pytest.raises(idx.IDXFormatError, match=r"t10k-images-idx3-ubyte: expected uint8 images"):
        idx.FashionMNIST(tmp_path, train=False)


# --- init_examples.py: the init_cfg examples -----------------------------------------------


def _sources(model: Any) -> dict[str, str]:
    return {entry.name: entry.source for entry in model.init_report()}


def test_init_examples_main_prints_every_report(
    seeds: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = seeds.init_examples.main(["--checkpoint-dir", str(tmp_path), "--quick"])
    assert list(models) == ["load_pretrained", *seeds.init_examples.EXAMPLES]
    out = capsys.readouterr().out
    assert out.count("== ") == len(models)
    assert f"PretrainedInit: load from {tmp_path / 'pretrained.pth'}" in out
    assert "KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0" in out
    assert (
        "custom_conv.custom_weight - torch.Size([1, 1, 1, 1]):\nInitialized by user-defined" in out
    )


def test_pretrained_weights_equal_the_saved_checkpoint(
    seeds: SimpleNamespace, tmp_path: Path
) -> None:
    net = seeds.init_examples.load_pretrained(tmp_path)
    saved = torch.load(tmp_path / "pretrained.pth", weights_only=True)
    assert saved.keys() == net.state_dict().keys() == {"conv1.weight", "conv1.bias"}
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert set(_sources(net).values()) == {"PretrainedInit"}


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "kaiming_conv_xavier_linear",
            {"linear": ("XavierInit", 1.0), "conv": ("KaimingInit", SQRT2)},
        ),
        ("kaiming_layer_list", {"linear": ("KaimingInit", SQRT2), "conv": ("KaimingInit", SQRT2)}),
        # override re-initialises conv2 only; conv1 keeps the outer Kaiming.
        ("override_by_name", {"conv1": ("KaimingInit", SQRT2), "conv2": ("XavierInit", 1.0)}),
        (
            "custom_init_weights",
            {"conv1": ("KaimingInit", SQRT2), "conv2": ("XavierInit", 1.0)},
        ),
    ],
)
def test_init_cfg_examples_initialise_as_configured(
    seeds: SimpleNamespace, example: str, expected: dict[str, tuple[str, float]]
) -> None:
    """Each layer's report source, zero biases, and its weights' std over 300 builds.

    The seed's layers hold one weight each, so the std is taken across builds: Kaiming
    (fan_out mode, relu gain) gives sqrt(2/fan_out) = sqrt(2), Xavier (normal, gain 1)
    sqrt(2/(fan_in+fan_out)) = 1, and PyTorch's default init U(-1, 1) would give 0.58.
    """
    torch.manual_seed(0)
    nets = [seeds.init_examples.EXAMPLES[example]() for _ in range(300)]
    sources = _sources(nets[0])
    for layer, (initializer, std) in expected.items():
        assert sources[f"{layer}.weight"] == sources[f"{layer}.bias"] == initializer
        weights = torch.cat([net.get_submodule(layer).weight.detach().flatten() for net in nets])
        assert float(weights.std()) == pytest.approx(std, rel=0.15), layer
        assert abs(float(weights.mean())) < 0.25, layer
        assert all(float(net.get_submodule(layer).bias.detach()) == 0.0 for net in nets), layer


def test_a_childs_own_init_weights_sets_its_parameters(seeds: SimpleNamespace) -> None:
    net = seeds.init_examples.custom_init_weights()
    assert torch.equal(net.custom_conv.custom_weight, torch.ones(1, 1, 1, 1))
    assert torch.equal(net.custom_conv.custom_bias, torch.zeros(1))
    sources = _sources(net)
    assert sources["custom_conv.custom_weight"] == "ToyConv.init_weights"
    assert sources["custom_conv.custom_bias"] == "ToyConv.init_weights"
    assert net.is_init
