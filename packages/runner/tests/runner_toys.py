"""Small models, data and metrics for the Runner tests; also a script for subprocess runs.

``python runner_toys.py WORK_DIR [--kill-at N] [--workers W] [--by-iter] [--resume]
[--augment] [--async-write]``
trains the toy classifier (shuffling sampler, MixUp batch augmentation, dropout) and,
with ``--kill-at N``, SIGKILLs itself right after iteration ``N``'s checkpoint was
written — the way a preempted job dies. The final weights go to ``WORK_DIR/final.pt``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from camshaft.model import BaseModel
from camshaft.runner.evaluator import BaseMetric
from camshaft.runner.hooks import Hook


class ToyClassifier(BaseModel):
    """A 2-layer MLP with dropout; ``forward(inputs, labels, mode)`` as in the seeds."""

    def __init__(self, in_features: int = 8, classes: int = 3, data_preprocessor: Any = None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = nn.Sequential(
            nn.Linear(in_features, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, classes)
        )
        self.classes = classes

    def forward(self, inputs: Any, labels: Any = None, mode: str = "tensor") -> Any:
        logits = self.net(inputs)
        if mode == "loss":
            if labels.dtype.is_floating_point:  # soft labels from MixUp
                loss = torch.sum(-labels * torch.log_softmax(logits, 1), dim=1).mean()
            else:
                loss = nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "acc_proxy": logits.detach().mean()}
        return [(logits.argmax(1), labels)]


class ToyAccuracy(BaseMetric):
    """Top-1 accuracy over ``(prediction, label)`` pairs."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        for pred, label in data_samples:
            self.results.append(((pred == label).sum().item(), len(label)))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"accuracy": sum(r[0] for r in results) / sum(r[1] for r in results)}


class ToyDataset(torch.utils.data.Dataset):
    """``n`` samples of ``(inputs, labels)``: a linearly separable 3-class problem."""

    metainfo: ClassVar[dict[str, Any]] = {"classes": ("a", "b", "c")}

    def __init__(
        self, n: int = 40, in_features: int = 8, seed: int = 0, augment: bool = False
    ) -> None:
        self.augment = augment
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, in_features, generator=g)
        self.y = (self.x[:, :3].argmax(1)).long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[index]
        if self.augment:  # random per-sample transforms, drawn wherever the sample is read
            jitter = random.random() * 0.05 + float(np.random.rand()) * 0.05
            x = x + 0.1 * torch.randn(x.shape) + jitter
        return x, self.y[index]


class KillAfter(Hook):
    """SIGKILL the process after iteration ``at`` (its checkpoint is already written)."""

    priority = "LOWEST"

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        if runner.iter + 1 == self.at:
            runner.wait_for_checkpoint_writes()  # the kill comes after the file is durable
            os.kill(os.getpid(), signal.SIGKILL)


def toy_runner_kwargs(
    work_dir: str, *, workers: int = 0, by_iter: bool = False, augment: bool = False
) -> dict[str, Any]:
    """Runner arguments for the resumable toy run (MixUp, shuffle, dropout)."""
    loader = dict(
        dataset=ToyDataset(augment=augment),
        batch_size=6,
        num_workers=workers,
        sampler=dict(type="DefaultSampler", shuffle=True),
        collate_fn=dict(type="default_collate"),
    )
    train_cfg = dict(by_epoch=False, max_iters=14) if by_iter else dict(by_epoch=True, max_epochs=2)
    checkpoint = dict(interval=1, by_epoch=False)
    return dict(
        model=ToyClassifier(data_preprocessor=MixUpPreprocessor()),
        work_dir=work_dir,
        train_dataloader=loader,
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        param_scheduler=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=4)],
        default_hooks=dict(checkpoint=checkpoint, logger=dict(interval=5)),
        randomness=dict(seed=123),
    )


class MixUpPreprocessor(nn.Module):
    """Turns ``(x, y)`` batches into the model's kwargs, mixing up when training.

    Draws from torch's global generator, like camshaft.preprocess's batch augments.
    """

    def forward(self, data: Any, training: bool = False) -> dict[str, Any]:
        x, y = data
        if training:
            lam = torch.rand(()).item()
            perm = torch.randperm(len(y))
            onehot = nn.functional.one_hot(y, 3).float()
            x = lam * x + (1 - lam) * x[perm]
            y = lam * onehot + (1 - lam) * onehot[perm]
        return {"inputs": x, "labels": y}


def main(argv: list[str] | None = None) -> None:
    from camshaft.runner import Runner

    parser = argparse.ArgumentParser()
    parser.add_argument("work_dir")
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--by-iter", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--augment", action="store_true", help="random transforms in the dataset")
    parser.add_argument("--async-write", action="store_true", help="background checkpoint writes")
    args = parser.parse_args(argv)
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    kwargs = toy_runner_kwargs(
        args.work_dir, workers=args.workers, by_iter=args.by_iter, augment=args.augment
    )
    if args.kill_at is not None:
        kwargs["custom_hooks"] = [KillAfter(args.kill_at)]
    if args.async_write:
        kwargs["default_hooks"]["checkpoint"]["async_write"] = True
    runner = Runner(resume=args.resume, **kwargs)
    runner.train()
    torch.save(runner.unwrapped_model.state_dict(), os.path.join(args.work_dir, "final.pt"))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
