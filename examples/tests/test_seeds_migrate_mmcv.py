"""The "migrate the MMCV runner" seed (``examples/seeds/migrate_mmcv/``).

Each program runs in quick mode and trains: the toy model with its non-scalar losses,
the GAN in one process and under torchrun (two CPU processes, gloo), and the custom
``train_step`` that preprocesses twice, alone and under its custom wrapper.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

pytest.importorskip("sklearn", reason="the GAN and CustomModel train on scikit-learn's digits")

SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "migrate_mmcv"
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _import(name: str) -> ModuleType:
    module_name = f"camshaft_seed_migrate_mmcv_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, SEEDS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def _scalars(work_dir: Path) -> list[dict[str, Any]]:
    (path,) = work_dir.glob("*/vis_data/scalars.json")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _weights(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The checkpoint's parameters under ``prefix``, with any wrapper's ``module.`` removed."""
    state = torch.load(path, weights_only=True)["state_dict"]
    return {
        key.replace(".module.", "."): value
        for key, value in state.items()
        if key.startswith(prefix) and value.is_floating_point()
    }


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    assert before.keys() == after.keys()
    assert before
    return all(not torch.equal(before[key], after[key]) for key in before if "weight" in key)


# --- toy_model.py ---------------------------------------------------------------------


def test_toy_model_with_non_scalar_losses_trains(tmp_path: Path) -> None:
    toy = _import("toy_model")
    torch.manual_seed(0)  # the model is built before the runner seeds: fix its start
    runner = toy.main(["--quick", "--work-dir", str(tmp_path)])
    runner.close()
    losses = runner.message_hub.get_scalar("train/loss").data[0]
    assert len(losses) == 25  # 50 samples in batches of 2
    assert losses[-5:].mean() < losses[0] / 5, losses
    records = [record for record in _scalars(tmp_path) if "loss" in record]
    assert [record["iter"] for record in records] == [10, 20]  # 25 batches of 2, logged every 10
    for record in records:  # each (2, 1, 1) loss is averaged; the total is their sum
        assert math.isclose(record["loss"], record["loss1"] + record["loss2"], rel_tol=1e-5)
    assert (tmp_path / "epoch_1.pth").is_file()


# --- gan.py ---------------------------------------------------------------------------


def test_gan_trains_both_networks_in_one_process(tmp_path: Path) -> None:
    gan = _import("gan")
    runner = gan.main(["--quick", "--work-dir", str(tmp_path)])
    try:
        assert sorted(runner.optim_wrapper) == ["discriminator", "generator"]
        hub = runner.message_hub
        fake = hub.get_scalar("train/loss_disc_fake").data[0]
        real = hub.get_scalar("train/loss_disc_real").data[0]
        generator = hub.get_scalar("train/loss_gen").data[0]
    finally:
        runner.close()
    steps = 2 * gan.QUICK_IMAGES // 32  # two epochs
    assert len(fake) == len(real) == len(generator) == steps
    disc = fake + real
    assert disc[-3:].mean() < disc[:3].mean(), disc  # the discriminator learns first
    assert all(map(math.isfinite, generator))
    assert _changed(_weights(tmp_path / "epoch_1.pth", "generator."),
                    _weights(tmp_path / "epoch_2.pth", "generator."))  # fmt: skip
    assert _changed(_weights(tmp_path / "epoch_1.pth", "discriminator."),
                    _weights(tmp_path / "epoch_2.pth", "discriminator."))  # fmt: skip
    optimizer = torch.load(tmp_path / "epoch_2.pth", weights_only=True)["optimizer"]
    assert sorted(optimizer) == ["discriminator", "generator"]
    marker = json.loads((tmp_path / "rank0.done").read_text())
    assert marker["world_size"] == 1
    assert marker["iter"] == steps


def test_gan_under_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SEEDS / "gan.py"), "--launcher", "pytorch", "--quick", "--work-dir", str(work_dir),
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
    markers = [json.loads((work_dir / f"rank{rank}.done").read_text()) for rank in (0, 1)]
    steps = 2 * (320 // 2 // 32)  # two epochs; DefaultSampler gives each rank half
    assert [(m["rank"], m["world_size"], m["iter"]) for m in markers] == [
        (0, 2, steps),
        (1, 2, steps),
    ]
    assert markers[0]["weights"] == markers[1]["weights"]  # DDP kept the ranks in step
    assert (work_dir / "last_checkpoint").read_text().strip().endswith("epoch_2.pth")
    for network in ("generator.", "discriminator."):
        assert _changed(_weights(work_dir / "epoch_1.pth", network),
                        _weights(work_dir / "epoch_2.pth", network))  # fmt: skip


# --- custom_preprocess.py -------------------------------------------------------------


def _digits_loss(custom: ModuleType, model: torch.nn.Module) -> float:
    """Cross-entropy of ``model`` on every digit, preprocessed once, without MixUp."""
    from camshaft.preprocess import default_collate

    dataset = custom.DigitsDataset()
    batch = default_collate([dataset[index] for index in range(len(dataset))])
    model.eval()
    with torch.no_grad():
        return float(model(model.data_preprocessor(batch, training=False), mode="loss"))


def test_custom_train_step_preprocesses_its_own_output_twice() -> None:
    """The seed's second ``data_preprocessor`` call gets the first call's output."""
    custom = _import("custom_preprocess")
    model = custom.CustomModel(data_preprocessor=custom.build_data_preprocessor())
    seen: list[dict[str, torch.Tensor]] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(dict(args[0])))
    updates: list[torch.Tensor] = []

    class Recorder:  # stands in for the runner's OptimWrapper
        def update_params(self, loss: torch.Tensor) -> None:
            updates.append(loss.detach())

    dataset = custom.DigitsDataset(limit=8)
    images = torch.stack([dataset[i]["inputs"] for i in range(8)])
    batch = dict(inputs=images, data_samples=torch.arange(8))
    assert model.train_step(batch, Recorder()) is None  # nothing for the logger
    assert len(seen) == len(updates) == 2
    first, second = seen
    assert first["data_samples"].shape == (8, 10)  # MixUp's soft labels
    assert torch.equal(second["data_samples"], first["data_samples"])  # still mixed
    # normalised twice: (x - 127.5) / 127.5 on values already in [-1, 1]
    assert torch.allclose(second["inputs"], (first["inputs"] - 127.5) / 127.5)
    assert float(second["inputs"].max()) < -0.98


def test_custom_model_trains_in_one_process(tmp_path: Path) -> None:
    custom = _import("custom_preprocess")
    untrained = custom.CustomModel(data_preprocessor=custom.build_data_preprocessor())
    runner = custom.main(["--quick", "--work-dir", str(tmp_path)])
    runner.close()
    assert type(runner.model) is custom.CustomModel  # no wrapper without a launcher
    assert _digits_loss(custom, runner.model) < _digits_loss(custom, untrained) - 0.2
    assert "train/loss" not in runner.message_hub.log_scalars  # train_step returns None
    assert (tmp_path / "epoch_1.pth").is_file()


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One quick run with ``launcher='pytorch'`` in this process, in a world of one."""
    custom = _import("custom_preprocess")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work_dir = tmp_path_factory.mktemp("custom_dist")
    values = ("0", "0", "1", "127.0.0.1", str(port))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in zip(LAUNCH_VARIABLES, values, strict=True):
            patch.setenv(name, value)
        try:
            runner = custom.main(["--quick", "--launcher", "pytorch", "--work-dir", str(work_dir)])
            runner.close()
            assert not torch.distributed.is_initialized()  # close() ended the group it started
        finally:
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
    return runner


def test_custom_model_trains_under_its_custom_wrapper(distributed_run: Any) -> None:
    custom = _import("custom_preprocess")
    assert type(distributed_run.model) is custom.CustomDistributedDataParallel
    assert _digits_loss(custom, distributed_run.unwrapped_model) < math.log(10) - 0.2
    assert (Path(distributed_run.work_dir) / "epoch_1.pth").is_file()


def test_wrapped_run_writes_the_same_checkpoint_keys_as_one_process(distributed_run: Any) -> None:
    state = torch.load(Path(distributed_run.work_dir) / "epoch_1.pth", weights_only=True)
    assert sorted(state["state_dict"]) == [
        "net.1.bias",
        "net.1.weight",
        "net.3.bias",
        "net.3.weight",
    ]
