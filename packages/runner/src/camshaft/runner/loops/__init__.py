"""camshaft.runner.loops — the loops the Runner drives.

* :class:`EpochBasedTrainLoop` / :class:`IterBasedTrainLoop`: training by epoch or by
  iteration, resumable after any iteration (exact position in the checkpoint);
* :class:`ValLoop` / :class:`TestLoop`: evaluation under ``no_grad`` (and autocast
  with ``fp16=True``) that leaves the random generators untouched.

All are registered in :data:`camshaft.runner.LOOPS`, so ``train_cfg=dict(type=...)``
can name them or a loop of your own.
"""

from camshaft.runner.loops._base import BaseLoop
from camshaft.runner.loops._eval import TestLoop, ValLoop
from camshaft.runner.loops._train import EpochBasedTrainLoop, IterBasedTrainLoop

__all__ = ["BaseLoop", "EpochBasedTrainLoop", "IterBasedTrainLoop", "ValLoop", "TestLoop"]
