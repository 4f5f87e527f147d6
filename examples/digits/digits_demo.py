"""The digits demo's parts: the dataset, a small CNN and the accuracy metric.

The config (``config.py`` beside this file) names them by type; it imports this
module through ``custom_imports``. The data is scikit-learn's handwritten digits
(1,797 8x8 images shipped inside scikit-learn — nothing is downloaded), split once
with a fixed seed into 1,437 training and 360 validation images.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from camshaft.model import MODELS, BaseModel
from camshaft.runner import DATASETS, METRICS, BaseMetric

SPLIT_SEED = 2024
VAL_SIZE = 360


@DATASETS.register_module()
class Digits(Dataset):
    """scikit-learn's digits as ``dict(inputs=uint8 1x8x8 tensor, data_samples=label)``.

    Args:
        split: ``'train'`` (1,437 images) or ``'val'`` (360), fixed by ``SPLIT_SEED``.
    """

    metainfo: ClassVar[dict[str, Any]] = {"classes": tuple(str(i) for i in range(10))}

    def __init__(self, split: str = "train") -> None:
        if split not in ("train", "val"):
            raise ValueError(f"`split` must be 'train' or 'val', got {split!r}")
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are 0..16; stored as uint8 0..255 like real image files.
        images = torch.from_numpy((digits.images * (255.0 / 16.0)).round()).to(torch.uint8)
        labels = torch.from_numpy(digits.target).long()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        index = order[VAL_SIZE:] if split == "train" else order[:VAL_SIZE]
        self.images = images[index].unsqueeze(1).contiguous()
        self.labels = labels[index]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"inputs": self.images[index], "data_samples": self.labels[index]}


@MODELS.register_module()
class DigitsCNN(BaseModel):
    """Three 3x3 convolutions and a linear classifier for 8x8 digits."""

    def __init__(self, width: int = 32, num_classes: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> Any:
        logits = self.head(self.features(inputs))
        if mode == "loss":
            if data_samples.dtype.is_floating_point:  # soft labels from MixUp/CutMix
                loss = torch.sum(-data_samples * F.log_softmax(logits, dim=1), dim=1).mean()
            else:
                loss = F.cross_entropy(logits, data_samples)
            return {"loss": loss}
        if mode == "predict":
            return list(zip(logits.argmax(1), data_samples, strict=True))
        return logits


@METRICS.register_module()
class DigitsAccuracy(BaseMetric):
    """Top-1 accuracy, in percent."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        for prediction, label in data_samples:
            self.results.append(int(prediction == label))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"accuracy": 100.0 * sum(results) / len(results)}
