"""MMEngine's 15-minute start (ResNet-50 on CIFAR-10 with an Accuracy metric) on camshaft.

The seed is MMEngine's ``get_started/15_minutes`` page (``15-minutes-zh.md``). The model,
the metric and the ``Runner(...)`` call below are the seed's, line for line. What differs:

* imports: ``mmengine.*`` becomes ``camshaft.*``; torchvision is optional. With it,
  ``MMResNet50`` wraps ``torchvision.models.resnet50()`` as in the seed; without it, a
  small ResNet defined here with the same call signature and output (1,000 logits).
* data: ``torchvision.datasets.CIFAR10(..., download=True)`` becomes :class:`CIFAR10`
  below, which reads the standard python batch files (``cifar-10-batches-py/
  data_batch_1`` .. ``data_batch_5``, ``test_batch``) from ``--data-root`` and downloads
  nothing; ``torchvision.transforms`` becomes the four transforms the seed uses,
  written here with numpy and torch (the ``transforms`` namespace below).
* a command line: ``--data-root``, ``--work-dir``, ``--quick`` (a small subset, one
  epoch) and ``--make-fake-data DIR`` (writes small, learnable fake batches in the
  real files' pickle format).

Run it::

    python examples/seeds/fifteen_minutes/cifar10.py --data-root data/cifar10
    python examples/seeds/fifteen_minutes/cifar10.py --make-fake-data /tmp/cifar
    python examples/seeds/fifteen_minutes/cifar10.py --data-root /tmp/cifar --quick
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD
from torch.utils.data import DataLoader, Dataset

from camshaft.model import BaseModel
from camshaft.runner import BaseMetric, Runner

try:  # the seed's model when torchvision is there; a small ResNet otherwise
    import torchvision
except ImportError:  # pragma: no cover - depends on the environment
    torchvision = None

BASE_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
IMAGE_BYTES = 3 * 32 * 32
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
QUICK_TRAIN_IMAGES = 320  # --quick: 10 iterations of 32
QUICK_VAL_IMAGES = 64


# --- the seed's model and metric --------------------------------------------------------


# fmt: off
class MMResNet50(BaseModel):
    def __init__(self):
        super().__init__()
        self.resnet = resnet50()

    def forward(self, imgs, labels, mode):
        x = self.resnet(imgs)
        if mode == 'loss':
            return {'loss': F.cross_entropy(x, labels)}
        elif mode == 'predict':
            return x, labels


class Accuracy(BaseMetric):
    def process(self, data_batch, data_samples):
        score, gt = data_samples
        self.results.append({
            'batch_size': len(gt),
            'correct': (score.argmax(dim=1) == gt).sum().cpu(),
        })

    def compute_metrics(self, results):
        total_correct = sum(item['correct'] for item in results)
        total_size = sum(item['batch_size'] for item in results)
        return dict(accuracy=100 * total_correct / total_size)


norm_cfg = dict(mean=[0.491, 0.482, 0.447], std=[0.202, 0.199, 0.201])
# fmt: on


# --- the model without torchvision ------------------------------------------------------


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A three-stage ResNet for 32x32 images, standing in for torchvision's resnet50.

    Same interface as ``torchvision.models.resnet50()``: ``(N, 3, H, W)`` float images
    in, ``(N, num_classes)`` logits out, 1,000 classes by default.

    Args:
        num_classes: Number of logits.
        width: Channels of the first stage (doubled at each of the next two).
    """

    def __init__(self, num_classes: int = 1000, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.layers = nn.Sequential(
            _BasicBlock(width, width, 1),
            _BasicBlock(width, 2 * width, 2),
            _BasicBlock(2 * width, 4 * width, 2),
        )
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of a batch of images."""
        features = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))


def resnet50() -> nn.Module:
    """Return ``torchvision.models.resnet50()`` if torchvision is installed, else a SmallResNet.

    Returns:
        A module mapping ``(N, 3, H, W)`` images to ``(N, 1000)`` logits.
    """
    if torchvision is not None:
        return torchvision.models.resnet50()
    return SmallResNet()


# --- the transforms the seed takes from torchvision -------------------------------------


class Compose:
    """Apply transforms in order (``torchvision.transforms.Compose``)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for transform in self.transforms:
            img = transform(img)
        return img


class RandomCrop:
    """Zero-pad an ``(H, W, C)`` uint8 image by ``padding``, then crop ``size`` at random.

    Args:
        size: Side of the square crop.
        padding: Pixels of zeros added on every side first.
    """

    def __init__(self, size: int, padding: int = 0) -> None:
        self.size = size
        self.padding = padding

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.padding:
            pad = self.padding
            img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
        top, left = torch.randint(0, img.shape[0] - self.size + 1, (2,)).tolist()
        return img[top : top + self.size, left : left + self.size]


class RandomHorizontalFlip:
    """Mirror an ``(H, W, C)`` image left to right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img[:, ::-1] if torch.rand(()).item() < self.p else img


class ToTensor:
    """Turn an ``(H, W, C)`` uint8 image into a ``(C, H, W)`` float tensor in [0, 1]."""

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)


class Normalize:
    """Subtract ``mean`` and divide by ``std``, per channel, on a ``(C, H, W)`` tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean) / self.std


# Stands in for `import torchvision.transforms as transforms` in the seed's code.
transforms = SimpleNamespace(
    Compose=Compose,
    RandomCrop=RandomCrop,
    RandomHorizontalFlip=RandomHorizontalFlip,
    ToTensor=ToTensor,
    Normalize=Normalize,
)


# --- CIFAR-10 from its python batch files -----------------------------------------------

_LAYOUT = (
    "expected layout: <data-root>/cifar-10-batches-py/ with data_batch_1 .. data_batch_5 "
    "and test_batch, as in the 'CIFAR-10 python version' archive (cifar-10-python.tar.gz) "
    "extracted into <data-root>; or write small fake batches with --make-fake-data DIR"
)
# The real files hold numpy arrays; nothing else may be reconstructed while unpickling.
# (`_codecs.encode` is how Python 3's protocol 2 writes bytes, should a file come from it.)
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a CIFAR-10 batch holds only "
                "numpy arrays, lists and bytes"
            )
        if module.startswith("numpy.core.") and importlib.util.find_spec("numpy._core"):
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy 2 moved it
        return super().find_class(module, name)


def load_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch file.

    Args:
        path: A pickled dict with ``b'data'`` (``N x 3072`` uint8, each row the red,
            green then blue 32x32 planes) and ``b'labels'`` (``N`` ints in 0..9). Keys
            may also be ``str`` (files written by Python 3 with str keys).

    Returns:
        ``(images, labels)``: ``(N, 32, 32, 3)`` uint8 and ``(N,)`` int64 arrays.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message gives the layout).
        ValueError: the file is not such a pickle, lacks a key, or has the wrong
            shape, dtype or label range.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file {str(path)!r} not found; {_LAYOUT}")
    try:
        with path.open("rb") as file:
            raw = _BatchUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 python batch file: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{str(path)!r} must hold a dict, got {type(raw).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    missing = [key for key in ("data", "labels") if key not in entry]
    if missing:
        hint = "; 'fine_labels' means CIFAR-100, not CIFAR-10" if "fine_labels" in entry else ""
        raise ValueError(
            f"{str(path)!r} lacks the keys {[k.encode() for k in missing]}; a CIFAR-10 batch "
            f"has b'data' (N x 3072 uint8) and b'labels' (N ints), found "
            f"{sorted(raw, key=str)}{hint}"
        )
    data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise ValueError(
            f"{str(path)!r}: b'data' must be an N x {IMAGE_BYTES} uint8 array, got "
            f"{data.dtype} with shape {data.shape}"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{str(path)!r}: b'labels' must be {len(data)} ints (one per row of b'data'), "
            f"got {labels.dtype} with shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{str(path)!r}: b'labels' must be in 0..9, got {labels.min()}..{labels.max()}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


class CIFAR10(Dataset):
    """CIFAR-10 read from its python batch files, like ``torchvision.datasets.CIFAR10``.

    Items are ``(transform(image), label)`` with ``image`` an ``(32, 32, 3)`` uint8
    array (torchvision gives a PIL image; the transforms above take arrays).

    Args:
        root: The folder that holds ``cifar-10-batches-py/`` (torchvision's ``root``).
        train: Read ``data_batch_1`` .. ``data_batch_5`` (50,000 images) if True, else
            ``test_batch`` (10,000).
        transform: Applied to each image; None returns the array.
        limit: Keep only the first ``limit`` images; None keeps all.

    Raises:
        FileNotFoundError: a batch file is missing; the message names it and the
            expected layout. Every file is checked before any is read.
        ValueError: a file is not a CIFAR-10 batch (see :func:`load_cifar_batch`).
    """

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        limit: int | None = None,
    ) -> None:
        folder = Path(root) / BASE_FOLDER
        paths = [folder / name for name in (TRAIN_FILES if train else TEST_FILES)]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"CIFAR-10 batch file {str(path)!r} not found; {_LAYOUT}")
        images, labels = [], []
        for path in paths:
            batch_images, batch_labels = load_cifar_batch(path)
            images.append(batch_images)
            labels.append(batch_labels)
            if limit is not None and sum(map(len, labels)) >= limit:
                break
        self.data = np.concatenate(images)[:limit]
        self.targets = np.concatenate(labels)[:limit].tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.data[index]
        return (image if self.transform is None else self.transform(image)), self.targets[index]


class _Python2Pickler(pickle._Pickler):  # the pure-Python pickler, to override two saves
    """Pickle as the real files were written: bytes as Python 2 strings, numpy 1 names.

    Python 2 strings load as ``bytes`` with ``encoding='bytes'`` (CIFAR's own recipe:
    ``b'data'``) and as ``str`` with ``encoding='latin1'`` (torchvision's: ``'data'``).
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_python2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if getattr(obj, "__name__", None) == "_reconstruct" and obj.__module__.startswith("numpy"):
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")  # numpy 1 too
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _dump(obj: object, path: Path) -> None:
    with path.open("wb") as file:
        _Python2Pickler(file, protocol=2).dump(obj)


def write_cifar_batches(
    root: str | Path, images_per_batch: int = 64, test_images: int = 64, seed: int = 0
) -> Path:
    """Write small fake CIFAR-10 batches that a model can learn, in the real files' format.

    Each class is a colour of its own plus noise, so a few iterations already lower
    the loss. Like the real files, each is a protocol-2 pickle written as Python 2
    wrote it: a dict with ``b'batch_label'``, ``b'labels'``, ``b'data'`` and
    ``b'filenames'`` (keys ``'data'``, ... when read with ``encoding='latin1'``, as
    torchvision does), plus ``batches.meta`` with ``b'label_names'``.

    Args:
        root: The data root; the files go to ``root/cifar-10-batches-py/``.
        images_per_batch: Images in each of ``data_batch_1`` .. ``data_batch_5``.
        test_images: Images in ``test_batch``.
        seed: Seed of the images and labels.

    Returns:
        The folder the files were written to.

    Raises:
        ValueError: a count is below 1.
    """
    if images_per_batch < 1 or test_images < 1:
        raise ValueError(
            f"`images_per_batch` and `test_images` must be >= 1, got {images_per_batch} "
            f"and {test_images}"
        )
    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 226, size=(10, 3))
    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    counts = [(name, images_per_batch) for name in TRAIN_FILES] + [("test_batch", test_images)]
    for index, (name, count) in enumerate(counts):
        labels = rng.integers(0, 10, size=count)
        noise = rng.normal(0.0, 40.0, size=(count, 3, 32 * 32))
        planes = palette[labels][:, :, None] + noise
        data = np.clip(planes, 0, 255).astype(np.uint8).reshape(count, IMAGE_BYTES)
        batch = {
            b"batch_label": f"fake batch {index + 1} of 6".encode(),
            b"labels": labels.tolist(),
            b"data": data,
            b"filenames": [f"fake_{index}_{i}.png".encode() for i in range(count)],
        }
        _dump(batch, folder / name)
    meta = {
        b"label_names": [name.encode() for name in CLASSES],
        b"num_cases_per_batch": images_per_batch,
        b"num_vis": IMAGE_BYTES,
    }
    _dump(meta, folder / "batches.meta")
    return folder


# --- the seed's script ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="data/cifar10", help="holds cifar-10-batches-py/")
    parser.add_argument("--work-dir", default="./work_dir")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_TRAIN_IMAGES} training images, 1 epoch"
    )
    parser.add_argument(
        "--make-fake-data", metavar="DIR", help="write fake batches under DIR and exit"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Runner | None:
    """Train and validate as the seed does, on the batch files under ``--data-root``.

    Args:
        argv: Command-line arguments; None reads ``sys.argv``.

    Returns:
        The runner after ``train()``, or None with ``--make-fake-data``.
    """
    args = parse_args(argv)
    if args.make_fake_data:
        print(f"wrote fake CIFAR-10 batches to {write_cifar_batches(args.make_fake_data)}")
        return None
    train_limit = QUICK_TRAIN_IMAGES if args.quick else None
    val_limit = QUICK_VAL_IMAGES if args.quick else None
    max_epochs = 1 if args.quick else 5

    # fmt: off
    train_dataloader = DataLoader(batch_size=32,
                                  dataset=CIFAR10(
                                      args.data_root,
                                      train=True,
                                      transform=transforms.Compose([
                                          transforms.RandomCrop(32, padding=4),
                                          transforms.RandomHorizontalFlip(),
                                          transforms.ToTensor(),
                                          transforms.Normalize(**norm_cfg)
                                      ]),
                                      limit=train_limit))

    val_dataloader = DataLoader(batch_size=32,
                                dataset=CIFAR10(
                                    args.data_root,
                                    train=False,
                                    transform=transforms.Compose([
                                        transforms.ToTensor(),
                                        transforms.Normalize(**norm_cfg)
                                    ]),
                                    limit=val_limit))

    runner = Runner(
        model=MMResNet50(),
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        optim_wrapper=dict(optimizer=dict(type=SGD, lr=0.001, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_dataloader=val_dataloader,
        val_cfg=dict(),
        val_evaluator=dict(type=Accuracy),
    )
    # fmt: on
    runner.train()
    return runner


if __name__ == "__main__":
    main()
