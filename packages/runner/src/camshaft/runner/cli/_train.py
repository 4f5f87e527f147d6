"""``camshaft train CONFIG``: build a Runner from a config, train, and say where everything went.

Also the config preparation ``camshaft test`` shares: reading the file, applying
``--cfg-options`` and ``--work-dir``, checking checkpoint paths, the process group.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camshaft.runner.cli._main import EXIT_OK, CliError, format_metrics

if TYPE_CHECKING:
    from camshaft.registry import Config

__all__ = [
    "run_train",
    "apply_resume",
    "apply_amp",
    "train_summary",
    "load_config",
    "apply_launcher",
    "require_parts",
    "check_checkpoint_path",
    "process_group_initialized",
    "destroy_process_group_if_started",
]

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
    """Apply ``--resume`` to the config.

    None leaves the config as it is; ``'auto'`` resumes from the work dir's latest
    checkpoint (dropping a ``load_from`` of pretrained weights); a path resumes from
    that checkpoint.

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


# --- config preparation, shared with `camshaft test` ---------------------------------


def load_config(path: str, cfg_options: Mapping[str, Any] | None, work_dir: str | None) -> Config:
    """Read ``path``, apply ``--cfg-options``, and settle ``work_dir``.

    ``work_dir`` (from ``--work-dir``) wins over the config's; a config without one
    gets ``./work_dirs/<config file stem>``.

    Raises:
        CliError: ``path`` is not an existing file.
        ConfigError: The file cannot be parsed, an import in ``custom_imports``
            fails, or an option key does not fit the config.
    """
    from camshaft.registry import Config

    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a directory, not a config file" if file.is_dir() else "does not exist"
        raise CliError(f"config file {path!r} {what}")
    cfg = Config.fromfile(file)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg["work_dir"] = work_dir
    elif cfg.get("work_dir") is None:
        cfg["work_dir"] = os.path.join(".", "work_dirs", file.stem)
    return cfg


def apply_launcher(cfg: Config, launcher: str | None) -> None:
    """Set ``cfg.launcher`` from ``--launcher`` when given."""
    if launcher is not None:
        cfg["launcher"] = launcher


def require_parts(cfg: Config, names: Sequence[str], command: str) -> None:
    """Fail with a :class:`CliError` naming the settings ``command`` needs and the config lacks."""
    missing = [name for name in names if cfg.get(name) is None]
    if missing:
        where = cfg.filename or "the config"
        raise CliError(
            f"`camshaft {command}` needs {', '.join(names)} in the config; "
            f"{where} has no {', '.join(missing)}"
        )


def check_checkpoint_path(path: str, option: str) -> str:
    """Check that a local checkpoint path exists (URLs are left to the loader).

    Returns:
        The path, with ``~`` expanded.

    Raises:
        CliError: The file does not exist, or is a directory.
    """
    if "://" in path and not path.startswith("file://"):
        return path
    local = Path(path.removeprefix("file://")).expanduser()
    if local.is_dir():
        raise CliError(f"{option} {path!r} is a directory, not a checkpoint file")
    if not local.is_file():
        raise CliError(f"checkpoint file {path!r} (given to {option}) does not exist")
    return path if path.startswith("file://") else str(local)


def destroy_process_group_if_started(was_initialized: bool) -> None:
    """Tear down the default process group if this command started it."""
    if was_initialized:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def process_group_initialized() -> bool:
    """Whether a default process group exists (without importing torch if not loaded)."""
    if "torch" not in sys.modules:
        return False
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())
