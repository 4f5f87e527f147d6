"""The ``camshaft`` command: the parser, the dispatch to subcommands, and exit codes.

Exit codes:

* 0: success;
* 2: a usage error (argparse prints the usage and the error) or bad input: a
  missing config or checkpoint file, a bad ``--cfg-options`` key, an unregistered
  ``type``, a config value a constructor rejects, a launcher environment that is
  not there. Bad input prints one line, ``camshaft: error: <message>``, to stderr
  and no traceback — unless ``CAMSHAFT_DEBUG=1`` is set, which re-raises;
* anything else raised while training or testing propagates with its traceback.

Nothing heavy (torch, the Runner) is imported until a subcommand runs, so
``camshaft --help`` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CliError", "build_parser", "main", "is_bad_input", "one_line", "format_metrics"]

PROG = "camshaft"
DEBUG_ENV = "CAMSHAFT_DEBUG"
EXIT_OK = 0
EXIT_BAD_INPUT = 2
LAUNCHER_CHOICES = ("none", "pytorch", "slurm", "mpi")


class CliError(Exception):
    """Bad input that the command itself detected; reported with exit code 2."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("camshaft-runner")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``test`` share: work dir, overrides, launcher."""
    from camshaft.registry import DictAction

    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="where logs and checkpoints go; overrides the config's work_dir "
        "(default when neither: ./work_dirs/<config file stem>)",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config settings with dotted keys, e.g. train_cfg.max_epochs=2 "
        "optim_wrapper.optimizer.lr=0.01 'param_scheduler.0.milestones=[3,6]'",
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHER_CHOICES,
        help="how the processes were started: none (one process), pytorch (torchrun), "
        "slurm (srun) or mpi; default: the config's launcher, else none",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the ``camshaft`` argument parser with its ``train``, ``test`` and ``plot`` commands.

    Example:
        >>> args = build_parser().parse_args(['plot', 'work_dirs/exp', '--keys', 'loss'])
        >>> args.command, args.keys
        ('plot', ['loss'])
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, test and plot camshaft runs from config files.",
        epilog=f"Input errors exit with code 2 and one line; set {DEBUG_ENV}=1 for "
        "their traceback.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a model from a config file",
        description="Build a Runner from CONFIG and train; print where the log, "
        "checkpoints and scalars went.",
    )
    train.add_argument("config", metavar="CONFIG", help="config file (.py, .json, .toml, .yaml)")
    train.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="PATH",
        help="resume training: from PATH, or without PATH (or 'auto') from the "
        "work dir's latest checkpoint",
    )
    train.add_argument(
        "--amp",
        action="store_true",
        help="train in automatic mixed precision (optim_wrapper type AmpOptimWrapper)",
    )
    _add_config_options(train)

    test = commands.add_parser(
        "test",
        help="test a checkpoint",
        description="Build a Runner from CONFIG, load CHECKPOINT and run the test loop; "
        "print the metrics.",
    )
    test.add_argument("config", metavar="CONFIG", help="config file (.py, .json, .toml, .yaml)")
    test.add_argument(
        "--checkpoint", required=True, metavar="PATH", help="checkpoint to test (path or URL)"
    )
    _add_config_options(test)

    plot = commands.add_parser(
        "plot",
        help="plot training curves of a run",
        description="Draw the curves of the newest run under WORK_DIR into a PNG.",
    )
    plot.add_argument("work_dir", metavar="WORK_DIR", help="the run's work directory")
    plot.add_argument(
        "--keys", nargs="+", default=["loss"], metavar="KEY", help="scalars to plot (default: loss)"
    )
    plot.add_argument(
        "--out", metavar="PNG", help="where to write the image (default: WORK_DIR/curves.png)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``camshaft`` command.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns:
        The exit code: 0 on success, 2 for usage errors and bad input (see the
        module docstring).

    Raises:
        Exception: Any error that is not bad input (a bug, a failure while
            training), with its traceback; bad input too when ``CAMSHAFT_DEBUG=1``.

    Example:
        >>> main(['plot', '/no/such/dir'])  # doctest: +SKIP
        camshaft: error: work dir '/no/such/dir' does not exist
        2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_:  # usage errors, --help and --version
        return _exit_code(exit_.code)
    try:
        if args.command == "train":
            from camshaft.runner.cli._train import run_train

            return run_train(args)
        if args.command == "test":
            from camshaft.runner.cli._test import run_test

            return run_test(args)
        from camshaft.runner.cli._plot import run_plot

        return run_plot(args)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0") or not is_bad_input(exc):
            raise
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _exit_code(code: Any) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def is_bad_input(exc: BaseException) -> bool:
    """Whether ``exc`` reports bad input (exit 2, one line) rather than a failure.

    Bad input: :class:`CliError`, ``ConfigError`` (config files, ``--cfg-options``
    keys, ``custom_imports``), ``RegistryError`` (an unregistered ``type``), a
    ``BuildError`` whose cause is one of those or an argument the constructor
    rejected (``TypeError``/``ValueError``/``KeyError``), a ``CheckpointError``
    other than a failed save, and a ``LaunchError``.
    """
    from camshaft.registry import BuildError, ConfigError, RegistryError

    if isinstance(exc, CliError | ConfigError | RegistryError):
        return True
    if _is_instance_of(exc, "camshaft.dist", "LaunchError"):
        return True
    if _is_instance_of(exc, "camshaft.init", "CheckpointError"):
        return not _is_instance_of(exc, "camshaft.runner.checkpoint", "CheckpointSaveError")
    if isinstance(exc, BuildError):
        cause = exc.__cause__
        while isinstance(cause, BuildError) and cause.__cause__ is not None:
            cause = cause.__cause__
        return cause is None or isinstance(cause, TypeError | ValueError | KeyError)
    return False


def _is_instance_of(exc: BaseException, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)`` without importing ``module`` (not loaded: False)."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None)
    return isinstance(kind, type) and isinstance(exc, kind)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (lines joined with spaces)."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]  # str(KeyError) would quote it
    else:
        text = str(exc)
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(parts) or type(exc).__name__


# --- printing, shared by train and test ----------------------------------------


def format_value(value: Any) -> str:
    """A metric value for printing: floats with 6 significant digits, others as text."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def format_metrics(metrics: Mapping[str, Any], indent: str = "  ") -> str:
    """``metrics`` as ``name: value`` lines (``(none)`` when empty)."""
    if not metrics:
        return f"{indent}(none)"
    width = max(len(str(name)) for name in metrics)
    return "\n".join(
        f"{indent}{str(name).ljust(width)}  {format_value(value)}"
        for name, value in metrics.items()
    )
