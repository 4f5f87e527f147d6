"""Benchmark: initialising a ~200M-parameter stack by ``init_cfg`` vs a hand-written loop.

The model is 24 x [Linear(1024, 4096), Linear(4096, 1024), LayerNorm(1024)] (~201M
parameters). Variants, interleaved in one process (A B C A B C ...):

* ``raw``       a ``torch.nn.init`` loop doing exactly what the config asks (baseline)
* ``camshaft``  ``initialize(model, [dict(type='Kaiming', layer='Linear'),
  dict(type='Constant', layer='LayerNorm', val=1, bias=0)])``
* ``recorded``  the same inside ``record_init()``, as ``BaseModule.init_weights`` runs
  it to print the init report

Target: camshaft / raw <= 1.05 (MMEngine measures 1.24x here).

Run: ``python bench/init_speed.py [--blocks 24] [--repeats 7]``; prints one JSON line.
"""

from __future__ import annotations

import argparse

import torch
from _common import emit, interleave, machine_info, package_versions, ratio, summarize, timed
from torch import nn

from camshaft.init import initialize, record_init

INIT_CFG = [
    dict(type="Kaiming", layer="Linear"),
    dict(type="Constant", layer="LayerNorm", val=1, bias=0),
]


def build(blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Linear(1024, 4096), nn.Linear(4096, 1024), nn.LayerNorm(1024)]
    return nn.Sequential(*layers)


@torch.no_grad()
def init_by_hand(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(module.bias, 0)
        elif isinstance(module, nn.LayerNorm):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)


def init_recorded(model: nn.Module) -> None:
    with record_init():
        initialize(model, INIT_CFG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    model = build(args.blocks)
    params = sum(p.numel() for p in model.parameters())
    runners = {
        "raw": lambda: timed(lambda: init_by_hand(model))[1],
        "camshaft": lambda: timed(lambda: initialize(model, INIT_CFG))[1],
        "recorded": lambda: timed(lambda: init_recorded(model))[1],
    }
    samples = interleave(runners, repeats=args.repeats, warmup=args.warmup)
    stats = {name: summarize(values) for name, values in samples.items()}
    camshaft_ratio = ratio(stats["camshaft"], stats["raw"])
    emit(
        {
            "bench": "init_speed",
            "params": params,
            "results_s": stats,
            "ratios": {
                "camshaft_vs_raw": camshaft_ratio,
                "recorded_vs_raw": ratio(stats["recorded"], stats["raw"]),
            },
            "targets": {"camshaft_vs_raw": 1.05},
            "met": {"camshaft_vs_raw": camshaft_ratio <= 1.05},
            "machine": machine_info(),
            "versions": package_versions("torch", "camshaft-init"),
        }
    )


if __name__ == "__main__":
    main()
