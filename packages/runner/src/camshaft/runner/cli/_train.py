"""``camshaft train CONFIG``: build a Runner from a config, train, and say where everything went."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camshaft.runner.cli._main import (
    EXIT_OK,
    CliError,
    apply_launcher,
    check_checkpoint_path,
    destroy_process_group_if_started,
    format_metrics,
    load_config,
    process_group_initialized,
    require_parts,
)

if TYPE_CHECKING:
    from camshaft.registry import Config

__all__ = ["run_train", "apply_resume", "apply_amp", "train_summary"]

_TRAIN_PARTS = ("train_dataloader", "train_cfg", "optim_wrapper")
_AMP = "AmpOptimWrapper"
_WRAPPER_KEYS = ("optimizer", "type", "constructor")
_TIME_KEYS = ("time", "data_time")


def run_train(args: argparse.Namespace) -> int:
    """Run ``camshaft train`` with parsed arguments; return the exit code.

    Raises:
        CliError: The config file or ``--resume`` checkpoint is missing, the config
            has no training settings, or ``--amp`` cannot apply to its optim_wrapper.
    """
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    apply_resume(cfg, args.resume)
    if args.amp:
        apply_amp(cfg)
    apply_launcher(cfg, args.launcher)
    require_parts(cfg, _TRAIN_PARTS, "train")

    from camshaft.runner import Runner

    was_initialized = process_group_initialized()
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        if runner.rank == 0:
            print(train_summary(runner), flush=True)
    finally:
        destroy_process_group_if_started(was_initialized)
    return EXIT_OK


def apply_resume(cfg: Config, resume: str | None) -> None:
    """Apply ``--resume``: None leaves the config; ``'auto'`` resumes from the latest
    checkpoint of the work dir; a path resumes from that checkpoint.

    Raises:
        CliError: The checkpoint path does not exist.
    """
    if resume is None:
        return
    cfg["resume"] = True
    if resume == "auto":
        # A load_from in the config (pretrained weights) is no checkpoint to resume from.
        cfg["load_from"] = None
    else:
        cfg["load_from"] = check_checkpoint_path(resume, "--resume")


def apply_amp(cfg: Config) -> None:
    """Switch the config's optim_wrapper to ``AmpOptimWrapper`` (``--amp``).

    A single wrapper config and each entry of a per-sub-model dict are switched;
    ``dtype`` is left to its default (bfloat16 on CPU, float16 on GPU).

    Raises:
        CliError: There is no ``optim_wrapper``, or it names a wrapper type other
            than ``OptimWrapper``/``AmpOptimWrapper`` (which ``--amp`` would replace).
    """
    wrapper = cfg.get("optim_wrapper")
    if not isinstance(wrapper, Mapping):
        raise CliError(
            f"--amp needs an optim_wrapper config dict in the config, got {wrapper!r:.100}"
        )
    if any(key in wrapper for key in _WRAPPER_KEYS):
        _set_amp(wrapper, "optim_wrapper")
        return
    for name, sub_cfg in wrapper.items():
        if not isinstance(sub_cfg, Mapping):
            raise CliError(
                f"--amp cannot switch optim_wrapper[{name!r}] = {sub_cfg!r:.100} to "
                f"{_AMP}; give it as a config dict"
            )
        _set_amp(sub_cfg, f"optim_wrapper.{name}")


def _set_amp(wrapper: Any, where: str) -> None:
    kind = wrapper.get("type", "OptimWrapper")
    if isinstance(kind, type):
        kind = kind.__name__
    if kind not in ("OptimWrapper", _AMP):
        raise CliError(
            f"--amp switches {where}.type from OptimWrapper to {_AMP}, but the config "
            f"sets type={kind!r}; configure mixed precision in the config instead"
        )
    wrapper["type"] = _AMP


def train_summary(runner: Any) -> str:
    """Where the run's log, checkpoints and scalars are, and its last validation metrics."""
    from camshaft.runner.checkpoint import read_last_checkpoint

    work_dir = Path(runner.work_dir)
    log_file = getattr(runner.logger, "log_file", None) or Path(runner.log_dir) / (
        f"{runner.timestamp}.log"
    )
    lines = [
        "camshaft: training finished",
        f"  log:             {log_file}",
        f"  work dir:        {work_dir}",
    ]
    last = read_last_checkpoint(work_dir)
    lines.append(f"  last checkpoint: {last if last is not None else '(none written)'}")
    best = sorted(work_dir.glob("best_*.pth"))
    if best:
        lines.append(f"  best checkpoint: {best[0]}")
        lines.extend(f"                   {path}" for path in best[1:])
    scalars = _scalars_file(runner)
    if scalars is not None:
        lines.append(f"  scalars:         {scalars}")
    metrics = _last_val_metrics(runner)
    if metrics:
        lines.append("  validation metrics (last evaluation):")
        lines.append(format_metrics(metrics, indent="    "))
    return "\n".join(lines)


def _scalars_file(runner: Any) -> Path | None:
    """The scalars the run's LocalVisBackend wrote, if any."""
    visualizer = getattr(runner, "visualizer", None)
    get_backend = getattr(visualizer, "get_backend", None)
    if callable(get_backend):
        backend = get_backend("LocalVisBackend")
        path = getattr(backend, "scalar_save_file", None)
        if isinstance(path, str) and Path(path).is_file():
            return Path(path)
    found = sorted(Path(runner.log_dir).rglob("scalars.json"))
    return found[0] if found else None


def _last_val_metrics(runner: Any) -> dict[str, Any]:
    """The ``val/*`` metrics the message hub holds (scalars, then other values)."""
    hub = getattr(runner, "message_hub", None)
    if hub is None:
        return {}
    metrics: dict[str, Any] = {}
    for key, buffer in hub.log_scalars.items():
        name = key[len("val/") :] if key.startswith("val/") else None
        if name and name not in _TIME_KEYS:
            metrics[name] = buffer.current()
    for key, value in hub.runtime_info.items():
        name = key[len("val/") :] if isinstance(key, str) and key.startswith("val/") else None
        if name and name not in metrics and name not in _TIME_KEYS:
            metrics[name] = value
    return metrics
