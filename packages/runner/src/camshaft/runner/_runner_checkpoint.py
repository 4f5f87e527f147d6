"""What goes into a Runner checkpoint, and how a run comes back from one.

A checkpoint is plain data (``torch.load(weights_only=True)`` reads it):

* ``meta``: ``epoch``/``iter`` truly finished, ``seed``, ``experiment_name``,
  ``camshaft`` package versions, ``dataset_meta``, ``time``;
* ``state_dict``: the unwrapped model's (no ``module.`` or ``_orig_mod.`` prefixes);
* ``optimizer``, ``param_schedulers``, ``message_hub``;
* ``rng``: python, numpy, torch CPU and CUDA generator states;
* ``loop``: the training loop's exact position, the sampler's included.

Hooks add their own state in ``before_save_checkpoint`` (EMA weights, early-stopping
counters) and read it back in ``after_load_checkpoint``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from camshaft.runner._runner_env import plain_state_dict
from camshaft.runner._versions import camshaft_versions
from camshaft.runner.checkpoint import find_latest_checkpoint, get_rng_state, set_rng_state
from camshaft.runner.checkpoint._pointer import write_pointer
from camshaft.runner.checkpoint._save import (
    prepare_checkpoint_write,
    stage_prepared_checkpoint,
    write_prepared_checkpoint,
)

__all__ = ["collect_checkpoint", "load_or_resume", "restore_training_state", "write_checkpoint"]


def collect_checkpoint(
    runner: Any,
    *,
    save_optimizer: bool = True,
    save_param_scheduler: bool = True,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Gather the run's state as a plain checkpoint dict (see the module docstring)."""
    loop = runner._train_loop_if_built()
    position = loop.state_dict() if loop is not None else {"epoch": 0, "iter": 0}
    hub = runner.message_hub.state_dict()
    versions = camshaft_versions()
    if hub["runtime_info"].get("camshaft_versions") == versions:
        # The same dict object in both places: pickle writes it once, then a reference.
        versions = hub["runtime_info"]["camshaft_versions"]
    info: dict[str, Any] = {
        "epoch": position["epoch"],
        "iter": position["iter"],
        "seed": runner.seed,
        "experiment_name": runner.experiment_name,
        "camshaft_versions": versions,
        "time": time.strftime("%Y%m%d_%H%M%S", time.localtime()),
    }
    dataset_meta = runner.dataset_meta
    if dataset_meta is not None:
        info["dataset_meta"] = _plain_meta(dataset_meta)
    if meta:
        info.update(meta)
    checkpoint: dict[str, Any] = {
        "meta": info,
        "state_dict": plain_state_dict(runner.unwrapped_model),
        "message_hub": hub,
        "rng": get_rng_state(),
    }
    if loop is not None:
        checkpoint["loop"] = position
    if save_optimizer and runner._optim_wrapper_if_built() is not None:
        checkpoint["optimizer"] = runner.optim_wrapper.state_dict()
    schedulers = runner._param_schedulers_if_built()
    if save_param_scheduler and schedulers is not None:
        if isinstance(schedulers, Mapping):
            checkpoint["param_schedulers"] = {
                name: [s.state_dict() for s in group] for name, group in schedulers.items()
            }
        else:
            checkpoint["param_schedulers"] = [s.state_dict() for s in schedulers]
    return checkpoint


def write_checkpoint(
    runner: Any,
    checkpoint: dict[str, Any],
    path: Path,
    *,
    update_pointer: bool,
    asynchronous: bool = False,
    background_sync: bool = False,
) -> Path:
    """Write ``checkpoint`` atomically on rank 0, then move the pointer.

    Bad input (a value that is not plain data, an unwritable directory) raises here.
    With ``asynchronous=True`` the checkpoint is copied (:func:`snapshot_checkpoint`)
    and the file writes are queued on ``runner.checkpoint_writer``; they run in order
    after the writes queued before them. With ``background_sync=True`` (and not
    ``asynchronous``) the checkpoint is serialised into its temp file here, and only
    the rest (``fsync``, rename, the pointer) is queued.
    """
    if runner.rank != 0:
        return path
    target, to_write = prepare_checkpoint_write(checkpoint, path, snapshot=asynchronous)
    work_dir = os.fspath(runner.work_dir)
    writer = runner.checkpoint_writer
    if asynchronous:  # the copy is serialised on the writer too

        def write() -> None:
            write_prepared_checkpoint(to_write, target)
            if update_pointer:
                write_pointer(work_dir, os.fspath(target))

        writer.submit(write, repr(str(target)), asynchronous=True)
        return path
    # Serialised here; the waits for the disk run inline or, with background_sync, on
    # the writer. A job dropped after an earlier failure takes its temp file with it.
    staged = stage_prepared_checkpoint(to_write, target)

    def finish() -> None:
        staged.commit()
        if update_pointer:
            write_pointer(work_dir, staged.target)

    writer.submit(finish, repr(str(target)), asynchronous=background_sync, cleanup=staged.discard)
    return path


def load_or_resume(runner: Any) -> None:
    """Resume from ``load_from`` or the work_dir's newest checkpoint, or load weights.

    A resume with no checkpoint to resume from warns and starts fresh.
    """
    if runner.resume_requested and runner._train_loop is not None:
        path = runner.load_from or find_latest_checkpoint(runner.work_dir)
        if path is None:
            message = (
                f"resume=True but {runner.work_dir} has no checkpoint to resume from "
                "(no last_checkpoint pointer and no epoch_N/iter_N.pth); starting fresh"
            )
            runner.logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=4)
            return
        runner.resume(path)
    elif runner.load_from is not None:
        runner.load_checkpoint(runner.load_from)


def restore_training_state(runner: Any, checkpoint: Mapping[str, Any]) -> None:
    """Put back optimizer, schedulers, message hub, loop position and RNG states.

    Called after the weights were loaded and the optimizer and schedulers built.

    Raises:
        ValueError: the checkpoint lacks what a resume needs (``loop``); it names
            what is missing.
    """
    if "loop" not in checkpoint:
        raise ValueError(
            "the checkpoint has no 'loop' entry, so it cannot resume training (it holds "
            f"only {sorted(checkpoint)}); use load_from=<path> to start from its weights"
        )
    if "optimizer" in checkpoint:
        runner.optim_wrapper.load_state_dict(checkpoint["optimizer"])
    saved = checkpoint.get("param_schedulers")
    schedulers = runner.param_schedulers
    if saved is not None and schedulers is not None:
        if isinstance(schedulers, Mapping):
            for name, group in schedulers.items():
                for scheduler, state in zip(group, saved[name], strict=True):
                    scheduler.load_state_dict(state)
        else:
            for scheduler, state in zip(schedulers, saved, strict=True):
                scheduler.load_state_dict(state)
    if "message_hub" in checkpoint:
        runner.message_hub.load_state_dict(checkpoint["message_hub"])
    runner.train_loop.load_state_dict(checkpoint["loop"])
    if "rng" in checkpoint:
        set_rng_state(checkpoint["rng"])


def _plain_meta(value: Any) -> Any:
    """Keep dataset meta that is plain data; turn the rest into text."""
    if isinstance(value, Mapping):
        return {str(k): _plain_meta(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_meta(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
