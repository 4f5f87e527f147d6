"""``camshaft plot WORK_DIR``: draw a run's training curves into a PNG and print its path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from camshaft.runner.cli._main import EXIT_OK, PROG, CliError, one_line

__all__ = ["run_plot"]

EXIT_MISSING_DEPENDENCY = 1


def run_plot(args: argparse.Namespace) -> int:
    """Run ``camshaft plot`` with parsed arguments; return the exit code.

    Returns:
        0 when the PNG was written; 1 when matplotlib is not installed (the
        message says how to install it).

    Raises:
        CliError: ``WORK_DIR`` does not exist, holds no scalars, or lacks a key.
    """
    from camshaft.runner.visualization import plot_curves

    work_dir = Path(args.work_dir).expanduser()
    if not work_dir.is_dir():
        what = "is not a directory" if work_dir.exists() else "does not exist"
        raise CliError(f"work dir {args.work_dir!r} {what}")
    try:
        path = plot_curves(work_dir, keys=tuple(args.keys), out=args.out)
    except ImportError as err:
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_MISSING_DEPENDENCY
    except (FileNotFoundError, KeyError, TypeError, ValueError) as err:
        raise CliError(one_line(err)) from err
    print(path, flush=True)
    return EXIT_OK
