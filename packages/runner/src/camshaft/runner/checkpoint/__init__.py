"""Checkpoint writing and state capture for the Runner.

Writing only; reading is :func:`camshaft.init.read_checkpoint` (``weights_only``).

* :func:`save_checkpoint` checks a checkpoint is plain data (tensors and builtins, so
  ``torch.load(weights_only=True)`` reads it) and writes it atomically;
* :func:`write_last_checkpoint` / :func:`find_latest_checkpoint` keep and read the
  ``work_dir/last_checkpoint`` pointer; :func:`prune_checkpoints` applies
  ``max_keep_ckpts``;
* :func:`get_rng_state` / :func:`set_rng_state` capture and restore the python,
  numpy, torch and CUDA generators for exact resume;
* :class:`CheckpointWriter` runs the file writes in order on a background thread, and
  :func:`snapshot_checkpoint` copies a checkpoint so training may go on meanwhile.
"""

from camshaft.runner.checkpoint._atomic import CheckpointSaveError
from camshaft.runner.checkpoint._pointer import (
    LAST_CHECKPOINT,
    find_latest_checkpoint,
    prune_checkpoints,
    read_last_checkpoint,
    write_last_checkpoint,
)
from camshaft.runner.checkpoint._rng import get_rng_state, set_rng_state
from camshaft.runner.checkpoint._save import (
    check_plain_checkpoint,
    save_checkpoint,
    snapshot_checkpoint,
)
from camshaft.runner.checkpoint._writer import CheckpointWriter

__all__ = [
    "save_checkpoint",
    "check_plain_checkpoint",
    "CheckpointSaveError",
    "LAST_CHECKPOINT",
    "write_last_checkpoint",
    "read_last_checkpoint",
    "find_latest_checkpoint",
    "prune_checkpoints",
    "get_rng_state",
    "set_rng_state",
    "CheckpointWriter",
    "snapshot_checkpoint",
]
