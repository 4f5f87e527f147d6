"""``camshaft test CONFIG --checkpoint PATH``: load weights, run the test loop, print metrics."""

from __future__ import annotations

import argparse

from camshaft.runner.cli._main import EXIT_OK, format_metrics
from camshaft.runner.cli._train import (
    apply_launcher,
    check_checkpoint_path,
    destroy_process_group_if_started,
    load_config,
    process_group_initialized,
    require_parts,
)

__all__ = ["run_test"]

_TEST_PARTS = ("test_dataloader", "test_cfg", "test_evaluator")


def run_test(args: argparse.Namespace) -> int:
    """Run ``camshaft test`` with parsed arguments; return the exit code.

    The checkpoint's weights are loaded (``load_from``), never resumed.

    Raises:
        CliError: The config file or the checkpoint is missing, or the config has
            no test settings.
    """
    checkpoint = check_checkpoint_path(args.checkpoint, "--checkpoint")
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg["load_from"] = checkpoint
    cfg["resume"] = False
    apply_launcher(cfg, args.launcher)
    require_parts(cfg, _TEST_PARTS, "test")

    from camshaft.runner import Runner

    was_initialized = process_group_initialized()
    try:
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
        if runner.rank == 0:
            print(f"camshaft: test metrics of {checkpoint}", flush=True)
            print(format_metrics(metrics), flush=True)
    finally:
        destroy_process_group_if_started(was_initialized)
    return EXIT_OK
