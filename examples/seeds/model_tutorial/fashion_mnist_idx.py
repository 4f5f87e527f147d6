"""FashionMNIST from its IDX files: the data source the model tutorial's examples read here.

The seeds load ``torchvision.datasets.FashionMNIST(root, train, download=True,
transform=ToTensor())``. torchvision is not installed and the data cannot be downloaded
here, so this module gives the same dataset interface over the four standard IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally ``.gz``) in ``root`` or in torchvision's
``root/FashionMNIST/raw``, plus stand-ins for the two torchvision transforms the examples
use. :func:`make_fake_fashion_mnist` writes small learnable IDX files, so the examples
can be demonstrated without the real data.

IDX layout (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number
of dimensions, then one big-endian uint32 per dimension, then the values, big-endian,
row-major.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "IDXFormatError",
    "read_idx",
    "write_idx",
    "FashionMNIST",
    "ToTensor",
    "PILToTensor",
    "make_fake_fashion_mnist",
]

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in _IDX_DTYPES.items()}

_SPLIT_PREFIX = {True: "train", False: "t10k"}
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic number, truncated, trailing bytes, wrong shape)."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed) into a numpy array.

    Args:
        path: The file.

    Returns:
        The array, in native byte order, with the shape the header gives.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IDXFormatError: The magic number is not ``00 00 <known type> <ndim>``, the file
            ends before the header or the data it declares, or has bytes after them.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (gzip.BadGzipFile, EOFError) as exc:
        raise IDXFormatError(f"{path}: not a readable gzip file ({exc})") from None
    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic number"
        )
    zero1, zero2, code, ndim = raw[:4]
    if zero1 or zero2 or code not in _IDX_DTYPES or ndim == 0:
        raise IDXFormatError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}; expected 0x0000TTNN with type "
            f"TT in {{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}} and NN >= 1 dimensions "
            "(e.g. 0x00000803 for images, 0x00000801 for labels). Is this an IDX file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {len(raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{path}: {what}: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes with the header), the file has {len(raw)} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray | torch.Tensor) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    Args:
        path: The file to write; its folder must exist.
        array: 1 to 255 dimensions of uint8, int8, int16, int32, float32 or float64.

    Returns:
        The path written.

    Raises:
        TypeError: ``array`` has a dtype IDX cannot hold.
        ValueError: ``array`` has no dimension, more than 255, or one of 2**32 or more.
    """
    data = array.numpy(force=True) if isinstance(array, torch.Tensor) else np.asarray(array)
    code = _CODE_OF_KIND.get((data.dtype.kind, data.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"write_idx: IDX cannot hold dtype {data.dtype}; use uint8, int8, int16, int32, "
            "float32 or float64"
        )
    if not 1 <= data.ndim <= 255 or any(d >= 2**32 for d in data.shape):
        raise ValueError(
            f"write_idx: shape {data.shape} is not storable; IDX needs 1 to 255 dimensions, "
            "each < 2**32"
        )
    body = (
        bytes([0, 0, code, data.ndim])
        + np.asarray(data.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(data, dtype=_IDX_DTYPES[code]).tobytes()
    )
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as stream:
        stream.write(body)
    return path


def _find(root: Path, name: str, download: bool) -> Path:
    """``name`` or ``name.gz`` in ``root`` or in torchvision's ``root/FashionMNIST/raw``."""
    folders = (root, root / "FashionMNIST" / "raw")
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    why = " (download=True, but this reader does not download)" if download else ""
    raise FileNotFoundError(
        f"FashionMNIST file {name!r} (or {name}.gz) not found in "
        f"{' or '.join(map(str, folders))}{why}. Put the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist there, or write stand-ins with "
        "`python fashion_mnist.py --make-fake-data DIR`."
    )


class FashionMNIST(Dataset):
    """FashionMNIST read from IDX files, indexed like ``torchvision.datasets.FashionMNIST``.

    Args:
        root: The folder holding the IDX files (or torchvision's layout under it).
        train: The 60k training split (``train-*``) if True, else the test split
            (``t10k-*``).
        transform: Applied to each image, a uint8 tensor of shape (28, 28) (torchvision
            gives a PIL image; :class:`ToTensor` and :class:`PILToTensor` here accept
            the tensor).
        target_transform: Applied to each label, an int.
        download: Accepted for torchvision's signature; nothing can be downloaded here,
            so a missing file is an error either way (the message says so).

    Raises:
        FileNotFoundError: A file is missing; the message names it and where it looked.
        IDXFormatError: A file is malformed, the images are not uint8 of shape
            (N, H, W), the labels not uint8 of shape (N,), their counts differ, or a
            label is not a class index.
    """

    classes = CLASSES

    def __init__(
        self,
        root: str | os.PathLike[str],
        train: bool = True,
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        prefix = _SPLIT_PREFIX[bool(train)]
        images_path = _find(Path(root), f"{prefix}-images-idx3-ubyte", download)
        labels_path = _find(Path(root), f"{prefix}-labels-idx1-ubyte", download)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise IDXFormatError(
                f"{images_path}: expected uint8 images of shape (N, H, W) (magic 0x00000803), "
                f"got {images.dtype} of shape {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise IDXFormatError(
                f"{labels_path}: expected uint8 labels of shape (N,) (magic 0x00000801), "
                f"got {labels.dtype} of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise IDXFormatError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels"
            )
        if labels.size and int(labels.max()) >= len(self.classes):
            raise IDXFormatError(
                f"{labels_path}: label {int(labels.max())} is not a class index "
                f"(0..{len(self.classes) - 1})"
            )
        self.data = torch.from_numpy(images)
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img: Any = self.data[index]
        target: Any = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class ToTensor:
    """``torchvision.transforms.ToTensor`` for a uint8 (H, W) image: float (1, H, W) in [0, 1]."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return img.unsqueeze(0).float().div(255)


class PILToTensor:
    """``torchvision.transforms.PILToTensor`` for a uint8 (H, W) image: uint8 (1, H, W)."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return img.unsqueeze(0).clone()


def make_fake_fashion_mnist(
    root: str | os.PathLike[str],
    num_train: int = 6000,
    num_test: int = 1000,
    seed: int = 0,
    compress: bool = False,
) -> list[Path]:
    """Write stand-in FashionMNIST IDX files: random images that a small MLP can learn.

    Each class has a fixed random template (30% of the pixels); an image of that class
    is bright (150..254) on its template's pixels and dim noise (0..59) elsewhere.
    Labels are uniform over the 10 classes. With the seed's ``SGD(lr=1e-3)`` the
    ``NeuralNetwork`` gets well above chance within a few hundred iterations.

    Args:
        root: The folder to write into (created if missing).
        num_train: Training images.
        num_test: Test images.
        seed: Seed of the generator, so the files are reproducible.
        compress: Write ``.gz`` files.

    Returns:
        The four paths written.

    Raises:
        ValueError: A count is not positive.
    """
    if num_train < 1 or num_test < 1:
        raise ValueError(f"counts must be positive, got num_train={num_train}, num_test={num_test}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    templates = rng.random((len(CLASSES), 28, 28)) < 0.3
    written = []
    for train, count in ((True, num_train), (False, num_test)):
        labels = rng.integers(0, len(CLASSES), size=count).astype(np.uint8)
        bright = rng.integers(150, 255, size=(count, 28, 28), dtype=np.uint8)
        dim = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
        images = np.where(templates[labels], bright, dim)
        suffix = ".gz" if compress else ""
        prefix = _SPLIT_PREFIX[train]
        written.append(write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images))
        written.append(write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels))
    return written
