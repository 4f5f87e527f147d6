"""The model tutorial's data preprocessor example: ``NormalizeDataPreprocessor``.

From the seeds' "DataPreprocessor" section (model-tutorial-zh.md; the early version's
``NormalizeDataPreprocessor`` also called ``.cuda()`` and its ``CustomModel.forward`` was
``...``). The seed continues the FashionMNIST example, so ``NeuralNetwork`` and
``FashionMnistMetric`` come from ``fashion_mnist.py``.

:func:`seed_snippet` runs the seed's own lines: one hand-driven ``train_step`` with a
``torch.optim.SGD`` on a constant batch, then ``val_step`` and ``test_step`` (the seed
prints ``(tensor([6, 6, 6]), 23.03...)``). :func:`main` then trains the same model with
the Runner on FashionMNIST read from IDX files as uint8 images (the range the
preprocessor's ``(img - 127.5) / 127.5`` expects), with the FashionMNIST example's Runner
arguments and the snippet's ``lr=0.01``.

Changed from the seed: the imports (the seed's unused ``BaseModel`` import is gone);
``train_step``'s second parameter is named ``optim_wrapper`` (the seed's ``optimizer``),
because the Runner's training loop passes it by that keyword, in MMEngine as here
(``step()`` and ``zero_grad()`` work on an optimizer and on an ``OptimWrapper`` alike);
and the Runner part is new, configured as in ``fashion_mnist.py`` (including its
float32 fallback for ``val_cfg=dict(fp16=True)``).

Run:
    python fashion_mnist.py --make-fake-data /tmp/fm
    python normalize_preprocessor.py --data-root /tmp/fm --quick
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fashion_mnist_idx as datasets
import torch
from fashion_mnist import (
    FashionMnistMetric,
    NeuralNetwork,
    parse_args,
    quick_subsets,
    val_fp16_supported,
)
from fashion_mnist_idx import PILToTensor, make_fake_fashion_mnist
from torch.optim import SGD
from torch.utils.data import DataLoader

from camshaft.model import BaseDataPreprocessor
from camshaft.runner import Runner


class NeuralNetwork1(NeuralNetwork):
    def __init__(self, data_preprocessor):
        super().__init__(data_preprocessor=data_preprocessor)
        self.data_preprocessor = data_preprocessor

    def train_step(self, data, optim_wrapper):
        img, label = self.data_preprocessor(data)
        loss = self(img, label, mode="loss")["loss"].sum()
        loss.backward()
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        return dict(loss=loss)

    def test_step(self, data):
        img, label = self.data_preprocessor(data)
        return self(img, label, mode="predict")

    def val_step(self, data):
        img, label = self.data_preprocessor(data)
        return self(img, label, mode="predict")


class NormalizeDataPreprocessor(BaseDataPreprocessor):
    def forward(self, data, training=False):
        # As in the seed, nothing is moved to self.device: fine on a CPU only.
        img, label = [item for item in data]  # noqa: C416 - as in the seed
        img = (img - 127.5) / 127.5
        return img, label


def seed_snippet() -> tuple[NeuralNetwork1, Any]:
    """Run the seed's lines: one ``train_step`` with plain SGD, then ``val_step``, ``test_step``.

    Returns:
        The model after its step, and what ``test_step`` returned: the predicted
        classes and the loss, ``(tensor([c, c, c]), ~23.03)`` (the input normalises to
        zeros, and the ten soft labels of 1 make the loss ``-sum(log p)`` >= 10 ln 10).
    """
    model = NeuralNetwork1(data_preprocessor=NormalizeDataPreprocessor())
    optimizer = SGD(model.parameters(), lr=0.01)
    data = (torch.full((3, 28, 28), fill_value=127.5), torch.ones(3, 10))

    model.train_step(data, optimizer)
    model.val_step(data)
    result = model.test_step(data)
    print(result)
    return model, result


def main(argv: Sequence[str] | None = None) -> Runner | None:
    """Run :func:`seed_snippet`, then train ``NeuralNetwork1`` with the Runner.

    Args:
        argv: Command-line arguments (those of ``fashion_mnist.py``); None reads
            ``sys.argv``.

    Returns:
        The Runner after ``train()`` (closed: its message hub and ``work_dir`` remain
        readable), or None with ``--make-fake-data``.

    Raises:
        FileNotFoundError: An IDX file is missing from ``--data-root``.
        fashion_mnist_idx.IDXFormatError: An IDX file is malformed.
    """
    args = parse_args(argv, description=__doc__.split("\n\n")[0])
    if args.make_fake_data:
        for path in make_fake_fashion_mnist(args.make_fake_data):
            print(f"wrote {path}")
        return None
    seed_snippet()

    training_data = datasets.FashionMNIST(
        root=args.data_root, train=True, download=True, transform=PILToTensor()
    )
    test_data = datasets.FashionMNIST(
        root=args.data_root, train=False, download=True, transform=PILToTensor()
    )
    if args.quick:
        training_data, test_data = quick_subsets(training_data, test_data)
    train_dataloader = DataLoader(dataset=training_data, batch_size=64)
    test_dataloader = DataLoader(dataset=test_data, batch_size=64)

    runner = Runner(
        model=NeuralNetwork1(data_preprocessor=NormalizeDataPreprocessor()),
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=5, val_interval=1),
        val_cfg=dict(fp16=val_fp16_supported()),
        val_dataloader=test_dataloader,
        val_evaluator=dict(metrics=FashionMnistMetric()),
    )
    runner.train()
    runner.close()  # camshaft only: release the log file
    return runner


if __name__ == "__main__":
    main()
