"""The runner's registries find built-in names lazily and build schedulers as configs mean."""

import subprocess
import sys

import torch

from camshaft.runner._registry import OPTIMIZERS, PARAM_SCHEDULERS


def test_param_scheduler_registry_converts_epoch_configs_to_iterations() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PARAM_SCHEDULERS.build(
        dict(type="MultiStepLR", milestones=[1], by_epoch=True, convert_to_iter_based=True),
        default_args=dict(optimizer=optimizer, epoch_length=10),
    )
    assert scheduler.by_epoch is False
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[9] == 1.0
    assert abs(lrs[10] - 0.1) < 1e-12


def test_torch_optimizers_resolve_by_name() -> None:
    assert OPTIMIZERS.get("AdamW") is torch.optim.AdamW


def test_importing_the_registries_registers_nothing_eagerly() -> None:
    code = (
        "import sys; from camshaft.runner._registry import OPTIMIZERS, PARAM_SCHEDULERS; "
        "assert len(OPTIMIZERS) == 0 and len(PARAM_SCHEDULERS) == 0, (len(OPTIMIZERS),); "
        "assert 'camshaft.runner.optim' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_built_in_samplers_resolve_without_importing_the_data_package() -> None:
    code = (
        "from camshaft.runner._registry import DATA_SAMPLERS; "
        "assert DATA_SAMPLERS.get('DefaultSampler').__name__ == 'DefaultSampler'; "
        "assert DATA_SAMPLERS.get('InfiniteSampler').__name__ == 'InfiniteSampler'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
