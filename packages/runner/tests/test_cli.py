"""The ``camshaft`` command: train, resume, test, plot, exit codes, ``python -m`` and torchrun.

Every test writes its config into a temporary directory. The model, dataset, metric
and a hook live in a module (``TOYS``, written once per session) that the configs
load through ``custom_imports``, the way a user's project would.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from camshaft.registry import ConfigError, RegistryError
from camshaft.runner.cli import main
from camshaft.runner.cli._main import CliError
from camshaft.runner.cli._train import apply_amp, apply_resume, load_config

TOYS_MODULE = "camshaft_cli_toys"
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
TOYS = '''
"""Toys for the camshaft CLI tests, registered under Cli* names."""
import os
import re
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from camshaft.model import MODELS, BaseModel
from camshaft.runner import DATASETS, HOOKS, METRICS
from camshaft.runner.evaluator import BaseMetric
from camshaft.runner.hooks import Hook


@MODELS.register_module(force=True)
class CliToyModel(BaseModel):
    def __init__(self, fail_in_forward=False):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.fail_in_forward = fail_in_forward

    def forward(self, inputs, targets=None, mode="tensor"):
        if self.fail_in_forward:
            raise RuntimeError("CliToyModel was told to fail")
        out = self.linear(inputs)
        if mode == "loss":
            return {"loss": F.mse_loss(out.float(), targets)}
        if mode == "predict":
            return [(out.float(), targets)]
        return out


@DATASETS.register_module(force=True)
class CliToyData(Dataset):
    def __init__(self, n=16):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return {"inputs": self.x[index], "targets": self.y[index]}


@METRICS.register_module(force=True)
class CliToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        for out, target in data_samples:
            self.results.append(float(((out - target) ** 2).mean()))

    def compute_metrics(self, results):
        return {"mse": sum(results) / len(results)}


@HOOKS.register_module(force=True)
class CliDoneHook(Hook):
    """Writes work_dir/rank<r>.done after the run, so a test sees every rank finish."""

    def after_run(self, runner):
        path = os.path.join(runner.work_dir, f"rank{runner.rank}.done")
        with open(path, "w") as file:
            file.write(f"{runner.world_size} {runner.iter}")
'''

CONFIG = """
custom_imports = dict(imports=["{module}"])
model = dict(type="CliToyModel")
train_dataloader = dict(
    dataset=dict(type="CliToyData", n=16), batch_size=4, collate_fn="default_collate",
    sampler=dict(type="DefaultSampler", shuffle=True))
val_dataloader = dict(
    dataset=dict(type="CliToyData", n=8), batch_size=4, collate_fn="default_collate",
    sampler=dict(type="DefaultSampler", shuffle=False))
test_dataloader = dict(
    dataset=dict(type="CliToyData", n=8), batch_size=4, collate_fn="default_collate",
    sampler=dict(type="DefaultSampler", shuffle=False))
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_cfg = dict()
test_cfg = dict()
val_evaluator = dict(type="CliToyMetric")
test_evaluator = dict(type="CliToyMetric")
optim_wrapper = dict(optimizer=dict(type="SGD", lr=0.05))
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1, save_best="mse", rule="less"))
custom_hooks = [dict(type="CliDoneHook")]
randomness = dict(seed=0)
"""


@pytest.fixture(scope="session")
def toys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the toys module (importable once it is on sys.path)."""
    folder = tmp_path_factory.mktemp("cli_toys")
    (folder / f"{TOYS_MODULE}.py").write_text(TOYS)
    return folder


@pytest.fixture
def toys(toys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the toys module on ``sys.path`` (and ``PYTHONPATH`` for subprocesses)."""
    monkeypatch.syspath_prepend(str(toys_dir))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(toys_dir), os.environ.get("PYTHONPATH", "")])
    )
    return toys_dir


def write_config(
    folder: Path, name: str = "toy.py", work_dir: Path | None = None, extra: str = ""
) -> Path:
    """Write the toy config (plus ``extra`` lines) into ``folder``; return its path."""
    text = CONFIG.format(module=TOYS_MODULE) + extra
    if work_dir is not None:
        text += f"work_dir = {str(work_dir)!r}\n"
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(*argv: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in this process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in argv])
    return code, out.getvalue(), err.getvalue()


def meta(path: Path) -> dict[str, Any]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return dict(checkpoint["meta"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, toys_dir: Path) -> dict[str, Any]:
    """One finished one-epoch run: its config, work dir and printed summary."""
    folder = tmp_path_factory.mktemp("cli_trained")
    sys.path.insert(0, str(toys_dir))
    try:
        config = write_config(folder, work_dir=folder / "work")
        code, out, err = run_cli("train", config)
    finally:
        sys.path.remove(str(toys_dir))
    assert code == 0, err
    return {"config": config, "work_dir": folder / "work", "stdout": out}


# --- train ---------------------------------------------------------------------------


def test_train_writes_checkpoints_and_prints_where_they_are(trained: dict[str, Any]) -> None:
    work_dir, out = trained["work_dir"], trained["stdout"]
    checkpoint = work_dir / "epoch_1.pth"
    assert checkpoint.is_file()
    assert (work_dir / "last_checkpoint").read_text().strip() == "epoch_1.pth"
    [best] = work_dir.glob("best_*.pth")
    [log_file] = work_dir.glob("*/*.log")
    assert "training finished" in out
    assert f"last checkpoint: {checkpoint}" in out
    assert str(best) in out
    assert str(log_file) in out
    assert "scalars.json" in out
    assert "mse" in out.split("validation metrics")[1]
    assert meta(checkpoint)["iter"] == 4


@pytest.mark.parametrize("explicit", [False, True], ids=["latest", "path"])
def test_resume_continues_from_the_checkpoint(
    trained: dict[str, Any], tmp_path: Path, toys: Path, explicit: bool
) -> None:
    work_dir = tmp_path / "work"
    shutil.copytree(trained["work_dir"], work_dir)
    first = work_dir / "epoch_1.pth"
    before = first.stat().st_mtime_ns
    resume = ["--resume", first] if explicit else ["--resume"]
    code, out, err = run_cli(
        "train", trained["config"], "--work-dir", work_dir, *resume,
        "--cfg-options", "train_cfg.max_epochs=2",
    )  # fmt: skip
    assert code == 0, err
    second = work_dir / "epoch_2.pth"
    assert meta(second)["iter"] == 8 > meta(first)["iter"] == 4
    assert first.stat().st_mtime_ns == before  # epoch 1 was not trained (or saved) again
    assert (work_dir / "last_checkpoint").read_text().strip() == "epoch_2.pth"
    assert f"last checkpoint: {second}" in out


def test_default_work_dir_and_overrides(
    tmp_path: Path, toys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, name="my_exp.py")
    assert load_config(str(config), None, None).work_dir == os.path.join(".", "work_dirs", "my_exp")
    with_dir = write_config(tmp_path, name="with_dir.py", work_dir=tmp_path / "from_cfg")
    assert load_config(str(with_dir), None, None).work_dir == str(tmp_path / "from_cfg")
    cfg = load_config(str(with_dir), {"work_dir": "from_opts", "train_cfg.max_epochs": 3}, None)
    assert (cfg.work_dir, cfg.train_cfg.max_epochs) == ("from_opts", 3)
    assert load_config(str(with_dir), {"work_dir": "x"}, "from_flag").work_dir == "from_flag"


def test_resume_and_amp_set_the_config(tmp_path: Path, toys: Path) -> None:
    cfg = load_config(
        str(write_config(tmp_path, extra="load_from = 'pretrained.pth'\n")), None, None
    )
    apply_resume(cfg, "auto")
    assert (cfg.resume, cfg.load_from) == (True, None)
    apply_amp(cfg)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert "dtype" not in cfg.optim_wrapper
    apply_amp(cfg)  # already AMP: stays
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    cfg.optim_wrapper = dict(gen=dict(optimizer=dict(type="SGD")), dis=dict(type="OptimWrapper"))
    apply_amp(cfg)
    assert [w.type for w in cfg.optim_wrapper.values()] == ["AmpOptimWrapper"] * 2
    cfg.optim_wrapper = dict(type="MyWrapper", optimizer=dict(type="SGD"))
    with pytest.raises(CliError, match="MyWrapper"):
        apply_amp(cfg)


def test_train_with_amp_on_cpu(tmp_path: Path, toys: Path) -> None:
    config = write_config(tmp_path, work_dir=tmp_path / "work")
    code, _, err = run_cli(
        "train", config, "--amp", "--cfg-options", "default_hooks.checkpoint.save_best=None"
    )
    assert code == 0, err
    assert (tmp_path / "work" / "epoch_1.pth").is_file()
    [dumped] = (tmp_path / "work").glob("*/vis_data/config.py")
    assert "AmpOptimWrapper" in dumped.read_text()


def test_errors_while_training_propagate(tmp_path: Path, toys: Path) -> None:
    config = write_config(tmp_path, work_dir=tmp_path / "work")
    with pytest.raises(RuntimeError, match="told to fail"):
        main(["train", str(config), "--cfg-options", "model.fail_in_forward=True"])


# --- test and plot -------------------------------------------------------------------


def test_test_prints_the_metrics(trained: dict[str, Any], tmp_path: Path, toys: Path) -> None:
    checkpoint = trained["work_dir"] / "epoch_1.pth"
    code, out, err = run_cli(
        "test", trained["config"], "--checkpoint", checkpoint, "--work-dir", tmp_path / "test"
    )
    assert code == 0, err
    assert f"test metrics of {checkpoint}" in out
    [line] = [line for line in out.splitlines() if line.split()[:1] == ["mse"]]
    assert float(line.split()[1]) >= 0
    assert not (tmp_path / "test" / "epoch_1.pth").exists()


def test_plot_writes_a_png(trained: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_file = tmp_path / "curves.png"
    code, out, err = run_cli(
        "plot", trained["work_dir"], "--keys", "loss", "mse", "--out", out_file
    )
    assert code == 0, err
    assert out.strip() == str(out_file)
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- bad input -----------------------------------------------------------------------

BAD_INPUT = {
    "missing config": (["train", "{dir}/nope.py"], r"config file '.*nope\.py' does not exist"),
    "config is a directory": (["train", "{dir}"], "is a directory, not a config file"),
    "cfg-options syntax": (
        ["train", "{config}", "--cfg-options", "train_cfg.max_epochs"],
        r"--cfg-options: expected KEY=VALUE, got 'train_cfg.max_epochs'",
    ),
    "cfg-options unbalanced": (
        ["train", "{config}", "--cfg-options", "param_scheduler.milestones=[1,2"],
        r"--cfg-options: cannot parse .*missing ']'",
    ),
    "cfg-options key": (
        ["train", "{config}", "--cfg-options", "train_cfg.max_epochs.x=1"],
        r"'train_cfg\.max_epochs' holds int 1",
    ),
    "unknown model type": (
        ["train", "{config}", "--cfg-options", "model.type=CliToyModle"],
        r"'CliToyModle' is not registered in registry 'model'.*"
        r"Closest registered names: 'CliToyModel'",
    ),
    "unknown dataset type": (
        ["train", "{config}", "--cfg-options", "train_dataloader.dataset.type=CliToyDta"],
        r"'CliToyDta' is not registered.*'CliToyData'",
    ),
    "unknown model argument": (
        ["train", "{config}", "--cfg-options", "model.depth=3"],
        r"building .*CliToyModel failed with TypeError: .*unexpected keyword argument 'depth'",
    ),
    "no training settings": (
        ["train", "{config}", "--cfg-options", "optim_wrapper=None"],
        r"`camshaft train` needs train_dataloader, train_cfg, optim_wrapper in the config; "
        r".*toy\.py has no optim_wrapper",
    ),
    "missing resume checkpoint": (
        ["train", "{config}", "--resume", "{dir}/gone.pth"],
        r"checkpoint file '.*gone\.pth' \(given to --resume\) does not exist",
    ),
    "missing test checkpoint": (
        ["test", "{config}", "--checkpoint", "{dir}/gone.pth"],
        r"checkpoint file '.*gone\.pth' \(given to --checkpoint\) does not exist",
    ),
    "test checkpoint not a checkpoint": (
        ["test", "{config}", "--checkpoint", "{config}"],
        r"cannot read checkpoint '.*toy\.py'",
    ),
    "test without --checkpoint": (["test", "{config}"], "--checkpoint"),
    "launcher without torchrun": (
        ["train", "{config}", "--launcher", "pytorch"],
        r"needs the environment variable RANK.*torchrun",
    ),
    "unknown launcher": (["train", "{config}", "--launcher", "ssh"], r"invalid choice: 'ssh'"),
    "no command": ([], "the following arguments are required: COMMAND"),
    "plot missing dir": (["plot", "{dir}/nowhere"], r"work dir '.*nowhere' does not exist"),
    "plot no scalars": (["plot", "{dir}"], "no scalars file under work_dir"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line(
    case: str, tmp_path: Path, toys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CAMSHAFT_DEBUG", raising=False)
    argv, pattern = BAD_INPUT[case]
    config = write_config(tmp_path, work_dir=tmp_path / "work")
    args = [arg.format(dir=tmp_path, config=config) for arg in argv]
    code, _, err = run_cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("camshaft"), err
    assert ": error: " in lines[-1]
    assert re.search(pattern, lines[-1]), lines[-1]
    assert "Traceback" not in err
    assert not list((tmp_path / "work").glob("*.pth"))


def test_plot_unknown_key_names_the_keys_present(trained: dict[str, Any]) -> None:
    code, _, err = run_cli("plot", trained["work_dir"], "--keys", "accuracy")
    assert code == 2
    assert "['accuracy'] not found" in err
    assert "'loss'" in err
    assert err.count("\n") == 1


def test_debug_env_reraises(tmp_path: Path, toys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMSHAFT_DEBUG", "1")
    config = write_config(tmp_path, work_dir=tmp_path / "work")
    with pytest.raises(RegistryError, match="CliToyModle"):
        main(["train", str(config), "--cfg-options", "model.type=CliToyModle"])
    with pytest.raises(ConfigError, match="max_epochs"):
        main(["train", str(config), "--cfg-options", "train_cfg.max_epochs.x=1"])


def test_help_and_version_exit_0() -> None:
    code, out, _ = run_cli("--help")
    assert code == 0
    assert all(name in out for name in ("train", "test", "plot"))
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    assert all(opt in out for opt in ("--resume", "--amp", "--cfg-options", "--launcher"))
    code, out, _ = run_cli("--version")
    assert (code, out.split()[0]) == (0, "camshaft")


# --- processes -----------------------------------------------------------------------


def test_python_dash_m_camshaft(tmp_path: Path, toys: Path) -> None:
    env = {**os.environ}
    env.pop("CAMSHAFT_DEBUG", None)
    missing = subprocess.run(
        [sys.executable, "-m", "camshaft", "train", str(tmp_path / "nope.py")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    expected = f"camshaft: error: config file '{tmp_path / 'nope.py'}' does not exist"
    assert missing.stderr.strip() == expected
    helped = subprocess.run(
        [sys.executable, "-m", "camshaft.runner", "plot", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert helped.returncode == 0
    assert "WORK_DIR" in helped.stdout


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path: Path, toys: Path) -> None:
    work_dir = tmp_path / "work"
    config = write_config(tmp_path, work_dir=work_dir)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "camshaft", "train", str(config), "--launcher", "pytorch",
        "--cfg-options", "env_cfg.dist_cfg.backend=gloo", "env_cfg.dist_cfg.timeout=60",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in (*LAUNCH_VARIABLES, "CAMSHAFT_DEBUG"):
        env.pop(name, None)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=tmp_path, start_new_session=True,  # its own group, so a kill reaches the workers
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"torchrun hung for 120 s and was killed:\n{output}")
    assert process.returncode == 0, output
    # both ranks ran to the end of the run, in a world of 2, 2 iterations each (16 / 2 / 4)
    assert (work_dir / "rank0.done").read_text() == "2 2"
    assert (work_dir / "rank1.done").read_text() == "2 2"
    assert meta(work_dir / "epoch_1.pth")["iter"] == 2
    assert (work_dir / "last_checkpoint").read_text().strip() == "epoch_1.pth"
    assert output.count("training finished") == 1  # rank 0 alone prints the summary
    assert f"last checkpoint: {work_dir / 'epoch_1.pth'}" in output
