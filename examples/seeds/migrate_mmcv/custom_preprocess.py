"""The seed's ``CustomModel``: one batch, two updates, preprocessed twice.

The seed is MMEngine's ``migration/runner`` page (``migrate-mmcv-runner-zh.md``),
"单模块优化、自定义流程的深度学习任务": a model that optimises twice on one batch, "first
with batch augmentation on, then off", by overriding ``train_step``; and, for
distributed training, the same ``train_step`` on a subclass of
``MMSeparateDistributedDataParallel`` named by ``cfg.model_wrapper_cfg``. Both
``train_step`` bodies below are the seed's, verbatim. What is added or differs:

* imports: ``mmengine.*`` becomes ``camshaft.*``;
* what the seed leaves out: the network, ``forward``, the data and the ``Runner``
  arguments besides ``launcher`` and ``cfg``. The data is scikit-learn's digits
  (uint8 1x8x8 images, labels 0..9); the preprocessor is ``ImgDataPreprocessor``
  (mean/std 127.5) with a ``MixUp`` batch augment, the "批数据增强" the seed switches.
  ``forward(data, mode)`` takes the whole preprocessed dict, because the seed calls
  ``self(data, mode='loss')`` without unpacking it, and returns a tensor in ``'loss'``
  mode, because the seed hands that straight to ``update_params``;
* ``CustomDistributedDataParallel.data_preprocessor``: the seed's wrapper reads
  ``self.data_preprocessor``, which the wrapper does not have (in MMEngine either);
  the property forwards to the model's;
* a command line: ``--launcher``, ``--work-dir``, ``--quick`` (one epoch over 320
  images instead of ten over all).

Read the seed's ``train_step`` closely: the second ``data_preprocessor`` call gets the
*output* of the first, not the batch from the DataLoader. So the second update sees the
mixed images and soft labels of the first (augmentation is not "off"), normalised a
second time (``(x - 127.5) / 127.5`` applied to values already in [-1, 1]). That is
what MMEngine does with this code, and what camshaft does (pinned by
``test_custom_train_step_preprocesses_its_own_output_twice`` in
``examples/tests/test_seeds_migrate_mmcv.py``); it still trains, worse than intended.
Preprocessing the raw batch twice (``raw = data`` first) would do what the text says.

Run it::

    python examples/seeds/migrate_mmcv/custom_preprocess.py [--quick]
    torchrun --nproc_per_node=2 examples/seeds/migrate_mmcv/custom_preprocess.py \\
        --launcher pytorch
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from camshaft.dist import MODEL_WRAPPERS, MMSeparateDistributedDataParallel
from camshaft.model import BaseModel
from camshaft.preprocess import ImgDataPreprocessor
from camshaft.runner import Runner

QUICK_IMAGES = 320


class DigitsDataset(Dataset):
    """scikit-learn's digits as ``dict(inputs=uint8 (1, 8, 8) tensor, data_samples=label)``.

    Args:
        limit: Keep only the first ``limit`` images; None keeps all 1,797.
    """

    def __init__(self, limit: int | None = None) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (digits.images[:limit] * (255.0 / 16.0)).round()  # 0..16 -> 0..255
        self.images = torch.from_numpy(images).to(torch.uint8).unsqueeze(1)
        self.labels = torch.from_numpy(digits.target[:limit]).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(inputs=self.images[index], data_samples=self.labels[index])


def build_data_preprocessor() -> ImgDataPreprocessor:
    """Return the preprocessor: scale uint8 digits to [-1, 1]; MixUp when training."""
    return ImgDataPreprocessor(
        mean=[127.5], std=[127.5], batch_augments=dict(type="MixUp", alpha=1.0, num_classes=10)
    )


class CustomModel(BaseModel):
    """A small MLP for 8x8 digits, optimised twice per batch by the seed's ``train_step``.

    Args:
        data_preprocessor: The preprocessor (see :func:`build_data_preprocessor`).
    """

    def __init__(self, data_preprocessor: nn.Module | dict[str, Any] | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, data: dict[str, Any], mode: str = "tensor") -> Any:  # type: ignore[override]
        """Classify ``data['inputs']``; in ``'loss'`` mode return the loss tensor itself.

        Args:
            data: A preprocessed batch, ``dict(inputs=..., data_samples=...)``; the
                labels are class indices, or soft labels after MixUp.
            mode: ``'loss'``, ``'predict'`` (``(predicted classes, labels)``) or
                ``'tensor'`` (logits).

        Returns:
            What ``mode`` asks for.
        """
        logits = self.net(data["inputs"])
        labels = data.get("data_samples")
        if mode == "loss":
            if labels.dtype.is_floating_point:  # soft labels from MixUp
                return torch.sum(-labels * F.log_softmax(logits, dim=1), dim=1).mean()
            return F.cross_entropy(logits, labels)
        if mode == "predict":
            return logits.argmax(dim=1), labels
        return logits

    # fmt: off
    def train_step(self, data, optim_wrapper):
        data = self.data_preprocessor(data, training=True)  # 开启批数据增强
        loss = self(data, mode='loss')
        optim_wrapper.update_params(loss)
        data = self.data_preprocessor(data, training=False)  # 关闭批数据增强
        loss = self(data, mode='loss')
        optim_wrapper.update_params(loss)
    # fmt: on


@MODEL_WRAPPERS.register_module()
class CustomDistributedDataParallel(MMSeparateDistributedDataParallel):
    """The seed's wrapper: the same two updates when training under a process group."""

    @property
    def data_preprocessor(self) -> nn.Module:
        """The wrapped model's preprocessor (the seed's ``train_step`` reads it here)."""
        return self.module.data_preprocessor

    # fmt: off
    def train_step(self, data, optim_wrapper):
        data = self.data_preprocessor(data, training=True)  # 开启批数据增强
        loss = self(data, mode='loss')
        optim_wrapper.update_params(loss)
        data = self.data_preprocessor(data, training=False)  # 关闭批数据增强
        loss = self(data, mode='loss')
        optim_wrapper.update_params(loss)
    # fmt: on


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    parser.add_argument("--work-dir", default="work_dirs/custom_preprocess")
    parser.add_argument("--quick", action="store_true", help=f"1 epoch over {QUICK_IMAGES} images")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Runner:
    """Train ``CustomModel`` on digits, in one process or under torchrun.

    Args:
        argv: Command-line arguments; None reads ``sys.argv``.

    Returns:
        The runner after ``train()``.
    """
    args = parse_args(argv)
    model = CustomModel(data_preprocessor=build_data_preprocessor())
    train_dataloader = dict(
        batch_size=32,
        sampler=dict(type="DefaultSampler", shuffle=True),
        collate_fn=dict(type="default_collate"),
        dataset=DigitsDataset(limit=QUICK_IMAGES if args.quick else None),
    )
    # fmt: off
    # 指定封装类型为 `CustomDistributedDataParallel`，并基于默认参数封装模型。  # noqa: RUF003
    cfg = dict(model_wrapper_cfg=dict(type='CustomDistributedDataParallel'))
    runner = Runner(
        model=model,
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        train_cfg=dict(by_epoch=True, max_epochs=1 if args.quick else 10),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        launcher=args.launcher,
        cfg=cfg # 模型封装配置
    )
    # fmt: on
    runner.train()
    return runner


if __name__ == "__main__":
    main()
