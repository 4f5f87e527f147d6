"""The model tutorial's FashionMNIST example: ``NeuralNetwork`` trained by the Runner.

From the seeds' "BaseModel" section (model-tutorial-zh.md, the later version of the
example in model-tutorial-zh-early.md). Changed from the seed:

* the imports: camshaft for mmengine, and :mod:`fashion_mnist_idx` for torchvision's
  ``datasets`` and ``ToTensor`` (torchvision is not installed here; the dataset reads
  the standard IDX files from ``--data-root`` and downloads nothing);
* the seed's module-level lines sit in :func:`main`, with ``--quick`` (fewer images)
  and ``runner.close()`` at the end;
* ``val_cfg=dict(fp16=True)`` becomes ``fp16=False`` only where bfloat16 cannot run
  (see :func:`val_fp16_supported`).

Run:
    python fashion_mnist.py --make-fake-data /tmp/fm   # stand-in IDX files
    python fashion_mnist.py --data-root /tmp/fm --quick
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import fashion_mnist_idx as datasets
import torch
from fashion_mnist_idx import ToTensor, make_fake_fashion_mnist
from torch import nn
from torch.utils.data import DataLoader, Subset

from camshaft.model import BaseModel
from camshaft.runner import BaseMetric, Runner

QUICK_SAMPLES = (3000, 500)  # at most this many (train, test) images with --quick


class NeuralNetwork(BaseModel):
    def __init__(self, data_preprocessor=None):
        super(NeuralNetwork, self).__init__(data_preprocessor)  # noqa: UP008 - as in the seed
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )
        self.loss = nn.CrossEntropyLoss()

    def forward(self, img, label, mode="tensor"):
        x = self.flatten(img)
        pred = self.linear_relu_stack(x)
        loss = self.loss(pred, label)
        if mode == "loss":
            return dict(loss=loss)
        else:
            return pred.argmax(1), loss.item()


class FashionMnistMetric(BaseMetric):
    def process(self, data, preds) -> None:
        self.results.append(((data[1] == preds[0].cpu()).sum(), preds[1], len(preds[0])))

    def compute_metrics(self, results):
        correct, loss, batch_size = zip(*results)  # noqa: B905 - as in the seed
        test_loss, correct = sum(loss) / len(self.results), sum(correct) / sum(batch_size)
        return dict(Accuracy=correct, Avg_loss=test_loss)


def parse_args(
    argv: Sequence[str] | None = None, description: str | None = None
) -> argparse.Namespace:
    """Parse the command line (see ``--help``); the other data examples share it.

    Args:
        argv: The arguments, without the program name; None reads ``sys.argv``.
        description: The ``--help`` text; this module's docstring's first line if None.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root", default="data", help="folder with the FashionMNIST IDX files"
    )
    parser.add_argument("--work-dir", default="./work_dir", help="the Runner's work_dir")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"CI mode: use only the first {QUICK_SAMPLES[0]} training and "
        f"{QUICK_SAMPLES[1]} test images",
    )
    parser.add_argument(
        "--make-fake-data",
        metavar="DIR",
        help="write small learnable stand-in IDX files into DIR and exit",
    )
    return parser.parse_args(argv)


def quick_subsets(
    training_data: datasets.FashionMNIST, test_data: datasets.FashionMNIST
) -> tuple[Subset, Subset]:
    """The first :data:`QUICK_SAMPLES` images of each split."""
    return (
        Subset(training_data, range(min(len(training_data), QUICK_SAMPLES[0]))),
        Subset(test_data, range(min(len(test_data), QUICK_SAMPLES[1]))),
    )


def val_fp16_supported() -> bool:
    """Whether the seed's ``val_cfg=dict(fp16=True)`` can run on this machine.

    On a CPU the validation loop autocasts to bfloat16 (as MMEngine does). Some
    machines, such as VMs whose CPU reports AMX without enabling it, fail every
    bfloat16 matmul of this size in oneDNN with "could not create a primitive";
    there validation runs in float32 instead, with a note saying so.

    Returns:
        True on CUDA, or when a bfloat16 ``Linear(784, 512)`` runs on the CPU.
    """
    if torch.cuda.is_available():
        return True
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            nn.functional.linear(torch.zeros(64, 28 * 28), torch.zeros(512, 28 * 28))
    except RuntimeError as exc:
        print(
            f"note: bfloat16 autocast fails on this CPU ({exc}); validating in float32 instead "
            "of the seed's val_cfg=dict(fp16=True). Setting ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 "
            "in the environment may make it work."
        )
        return False
    return True


def main(argv: Sequence[str] | None = None) -> Runner | None:
    """Train ``NeuralNetwork`` on FashionMNIST with the Runner, as the seed does.

    Args:
        argv: Command-line arguments (see :func:`parse_args`); None reads ``sys.argv``.

    Returns:
        The Runner after ``train()`` (closed: its message hub and ``work_dir`` remain
        readable), or None with ``--make-fake-data``.

    Raises:
        FileNotFoundError: An IDX file is missing from ``--data-root``.
        fashion_mnist_idx.IDXFormatError: An IDX file is malformed.
    """
    args = parse_args(argv)
    if args.make_fake_data:
        for path in make_fake_fashion_mnist(args.make_fake_data):
            print(f"wrote {path}")
        return None

    training_data = datasets.FashionMNIST(
        root=args.data_root, train=True, download=True, transform=ToTensor()
    )

    test_data = datasets.FashionMNIST(
        root=args.data_root, train=False, download=True, transform=ToTensor()
    )
    if args.quick:
        training_data, test_data = quick_subsets(training_data, test_data)

    train_dataloader = DataLoader(dataset=training_data, batch_size=64)
    test_dataloader = DataLoader(dataset=test_data, batch_size=64)

    runner = Runner(
        model=NeuralNetwork(),
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=5, val_interval=1),
        val_cfg=dict(fp16=val_fp16_supported()),
        val_dataloader=test_dataloader,
        val_evaluator=dict(metrics=FashionMnistMetric()),
    )
    runner.train()
    runner.close()  # camshaft only: release the log file (the seed just ends the process)
    return runner


if __name__ == "__main__":
    main()
