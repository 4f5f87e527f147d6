"""The MMEngine side of "migrate the MMCV runner": ``MMEngineToyModel`` trained by the Runner.

The seed is MMEngine's ``migration/runner`` page (``migrate-mmcv-runner-zh.md``),
section "基于 MMEngine 执行器的模型". The data, the model and the ``Runner(...)`` call are
the seed's. What differs:

* imports: ``mmengine.*`` becomes ``camshaft.*``;
* ``forward`` computes ``feat`` before branching on ``mode``: the seed computes it only
  under ``'loss'`` and then returns ``[feat]`` under ``'tensor'``, a NameError
  (training never takes that branch);
* a command line: ``--work-dir`` (the seed's ``'tmp_dir'``) and ``--quick`` (one epoch
  instead of five).

The loss dict holds ``loss1`` and ``loss2`` as ``(2, 1, 1)`` tensors, not scalars:
``BaseModel.parse_losses`` averages each and adds them (the seed's commented
"equivalent code" says ``.sum()``; MMEngine's ``parse_losses`` takes the mean too).

Run it::

    python examples/seeds/migrate_mmcv/toy_model.py [--quick] [--work-dir tmp_dir]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from camshaft.model import BaseModel
from camshaft.runner import Runner

# fmt: off
train_dataset = [(torch.ones(1, 1), torch.ones(1, 1))] * 50
train_dataloader = DataLoader(train_dataset, batch_size=2)


class MMEngineToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, img, label, mode):
        feat = self.linear(img)
        if mode == 'loss':
            loss1 = (feat - label).pow(2)
            loss2 = (feat - label).abs()
            return dict(loss1=loss1, loss2=loss2)
        elif mode == 'tensor':
            return [feat]
        else:
            # tensor 模式，功能详见模型教程文档： tutorials/model.md  # noqa: RUF003
            pass
# fmt: on


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="tmp_dir")
    parser.add_argument("--quick", action="store_true", help="1 epoch instead of 5")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Runner:
    """Train ``MMEngineToyModel`` as the seed does.

    Args:
        argv: Command-line arguments; None reads ``sys.argv``.

    Returns:
        The runner after ``train()``.
    """
    args = parse_args(argv)
    max_epochs = 1 if args.quick else 5
    # fmt: off
    runner = Runner(
        model=MMEngineToyModel(),
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)))
    # fmt: on
    runner.train()
    return runner


if __name__ == "__main__":
    main()
