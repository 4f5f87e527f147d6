"""The model tutorial's plain-PyTorch FashionMNIST loop, which the Runner version replaces.

From model-tutorial-zh-early.md ("Pytorch 标准训练流程", PyTorch's own optimization
tutorial), the baseline that ``fashion_mnist.py`` is compared against. It uses no
camshaft. Changed from the seed: the dataset and ``ToTensor`` come from
:mod:`fashion_mnist_idx` instead of torchvision (and the unused ``Lambda`` import is
gone), and the body sits in :func:`main` with ``--quick``.

Run:
    python fashion_mnist.py --make-fake-data /tmp/fm
    python pytorch_baseline.py --data-root /tmp/fm --quick
"""

from __future__ import annotations

from collections.abc import Sequence

import fashion_mnist_idx as datasets
import torch
from fashion_mnist import parse_args, quick_subsets
from fashion_mnist_idx import ToTensor, make_fake_fashion_mnist
from torch import nn
from torch.utils.data import DataLoader


# Define the model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super(NeuralNetwork, self).__init__()  # noqa: UP008 - as in the seed
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


# Define the training loop
def train_loop(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    for batch, (X, y) in enumerate(dataloader):
        # Compute prediction and loss
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if batch % 100 == 0:
            loss, current = loss.item(), batch * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


# Define the test loop
def test_loop(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0

    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()

    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")


def main(argv: Sequence[str] | None = None) -> NeuralNetwork | None:
    """Train and test ``NeuralNetwork`` with the hand-written loops, as the seed does.

    Args:
        argv: Command-line arguments (those of ``fashion_mnist.py``; ``--work-dir`` is
            unused); None reads ``sys.argv``.

    Returns:
        The trained model, or None with ``--make-fake-data``.

    Raises:
        FileNotFoundError: An IDX file is missing from ``--data-root``.
        fashion_mnist_idx.IDXFormatError: An IDX file is malformed.
    """
    args = parse_args(argv, description=__doc__.split("\n\n")[0])
    if args.make_fake_data:
        for path in make_fake_fashion_mnist(args.make_fake_data):
            print(f"wrote {path}")
        return None

    # Prepare the datasets
    training_data = datasets.FashionMNIST(
        root=args.data_root, train=True, download=True, transform=ToTensor()
    )

    test_data = datasets.FashionMNIST(
        root=args.data_root, train=False, download=True, transform=ToTensor()
    )
    if args.quick:
        training_data, test_data = quick_subsets(training_data, test_data)

    train_dataloader = DataLoader(training_data, batch_size=64)
    test_dataloader = DataLoader(test_data, batch_size=64)

    model = NeuralNetwork()

    learning_rate = 1e-3
    batch_size = 64  # noqa: F841 - as in the seed, which also passes 64 literally
    epochs = 5

    # Initialize the loss function
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

    for t in range(epochs):
        print(f"Epoch {t + 1}\n-------------------------------")
        train_loop(train_dataloader, model, loss_fn, optimizer)
        test_loop(test_dataloader, model, loss_fn)
    print("Done!")
    return model


if __name__ == "__main__":
    main()
