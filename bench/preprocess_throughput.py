"""Benchmark: ImgDataPreprocessor throughput against a hand-written baseline (and MMEngine).

Work per batch: 64 uint8 3x224x224 images, ImageNet mean/std, ``bgr_to_rgb=True``,
``pad_size_divisor=32``, in three shapes:

* ``equal_list``  a list of 64 CHW tensors of one size (what pseudo_collate gives)
* ``mixed_list``  a list of 64 CHW tensors of sizes in [192, 256] (padding needed)
* ``nchw``        one 64x3x224x224 tensor (what default_collate gives)

Runners, interleaved per shape (A B C A B C ...):

* ``hand``      the fastest hand-written version we found: one preallocated float32
  output, per image a uint8 -> float copy of the channel-flipped image into its
  corner, in-place ``sub_``/``div_``, only the padding strips filled; for NCHW the
  same as one batch (three channel copies that flip as they convert)
* ``camshaft``  ``camshaft.preprocess.ImgDataPreprocessor``
* ``hand_reciprocal``  ``hand`` with camshaft's ``(x - mean) * (1 / std)`` in place of
  ``/ std`` (reported, not a target: it shows how much of the gap that step explains)
* ``mmengine``  ``mmengine.model.ImgDataPreprocessor``, only if mmengine is importable

Target on CPU: camshaft throughput / hand throughput >= 1.0 in every shape.

With CUDA, a second section times the move to the GPU, per batch (NCHW): the uint8
batch moved and normalised on the GPU (pageable, and pinned with non_blocking=True)
against a float32 batch normalised beforehand and only moved (pageable and pinned).

Run: ``python bench/preprocess_throughput.py [--repeats 20] [--warmup 2]``; prints
one JSON line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import torch
from _common import emit, interleave, machine_info, package_versions, ratio, summarize, timed

from camshaft.model import BaseDataPreprocessor
from camshaft.preprocess import ImgDataPreprocessor

BATCH = 64
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
DIVISOR = 32
TARGET = 1.0


def make_inputs(seed: int = 0) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)

    def image(height: int, width: int) -> torch.Tensor:
        return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen)

    sizes = torch.randint(192, 257, (BATCH, 2), generator=gen).tolist()
    equal = [image(224, 224) for _ in range(BATCH)]
    return {
        "equal_list": equal,
        "mixed_list": [image(h, w) for h, w in sizes],
        "nchw": torch.stack(equal),
    }


class HandWritten:
    """The baseline: what one writes by hand for exactly this job, as fast as we could.

    ``reciprocal=False`` normalises as the job is defined, ``(x - mean) / std``;
    ``reciprocal=True`` uses camshaft's trick, ``(x - mean) * (1 / std)``, to show how
    much of the difference that trick alone explains.
    """

    def __init__(self, reciprocal: bool = False) -> None:
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)
        self.scale = 1 / self.std
        self.reciprocal = reciprocal

    def normalise(self, region: torch.Tensor) -> None:
        if self.reciprocal:
            region.sub_(self.mean).mul_(self.scale)
        else:
            region.sub_(self.mean).div_(self.std)

    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            n, _, h, w = images.shape
            out = torch.empty(n, 3, _pad(h), _pad(w))
            region = out[:, :, :h, :w]
            for c in range(3):
                region[:, c].copy_(images[:, 2 - c])
            self.normalise(region)
            out[:, :, h:].fill_(0)
            out[:, :, :h, w:].fill_(0)
            return out
        height = _pad(max(image.shape[1] for image in images))
        width = _pad(max(image.shape[2] for image in images))
        out = torch.empty(len(images), 3, height, width)
        for index, image in enumerate(images):
            _, h, w = image.shape
            region = out[index, :, :h, :w]
            region.copy_(image.flip(0))  # measured faster than three channel copies
            self.normalise(region)
            if h < height:
                out[index, :, h:].fill_(0)
            if w < width:
                out[index, :, :h, w:].fill_(0)
        return out


def _pad(size: int) -> int:
    return -(-size // DIVISOR) * DIVISOR


def cpu_section(repeats: int, warmup: int) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = make_inputs()
    hand = HandWritten()
    hand_reciprocal = HandWritten(reciprocal=True)
    ours = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=DIVISOR)
    theirs = _mmengine_preprocessor()
    results: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for shape, images in inputs.items():
        # Same numbers (to one float32 rounding step), or the timing means nothing.
        got = ours(dict(inputs=images))["inputs"]
        torch.testing.assert_close(got, hand(images), rtol=0, atol=1e-6)
        assert torch.equal(got, hand_reciprocal(images)), shape
        runners: dict[str, Callable[[], float]] = {
            "hand": lambda images=images: timed(lambda: hand(images))[1],
            "camshaft": lambda images=images: timed(lambda: ours(dict(inputs=images)))[1],
            "hand_reciprocal": lambda images=images: timed(lambda: hand_reciprocal(images))[1],
        }
        if theirs is not None:
            runners["mmengine"] = lambda images=images: timed(
                lambda: theirs(dict(inputs=images, data_samples=None))
            )[1]
        samples = interleave(runners, repeats=repeats, warmup=warmup)
        times = {name: summarize(values) for name, values in samples.items()}
        results[shape] = {
            name: {"time_s": stat, "images_per_s": BATCH / stat["median"]}
            for name, stat in times.items()
        }
        # throughput ratio: baseline time over ours (above 1: we are faster)
        ratios[shape] = {
            f"{name}_vs_hand": ratio(times["hand"], times[name]) for name in times if name != "hand"
        }
    return results, ratios


def gpu_section(repeats: int, warmup: int) -> dict[str, Any]:
    batch = make_inputs()["nchw"]
    pinned = batch.pin_memory()
    normalised = (batch.flip(1).float() - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(
        STD
    ).view(3, 1, 1)
    normalised_pinned = normalised.pin_memory()
    uint8_pre = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True).cuda()
    uint8_fast = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, non_blocking=True).cuda()
    # The float32 path: normalised beforehand (in the workers), so only moved.
    move_only = BaseDataPreprocessor().cuda()
    move_fast = BaseDataPreprocessor(non_blocking=True).cuda()

    def run(pre: BaseDataPreprocessor, data: torch.Tensor) -> Callable[[], float]:
        return lambda: timed(lambda: pre(dict(inputs=data)), sync_cuda=True)[1]

    runners = {
        "uint8_pageable": run(uint8_pre, batch),
        "uint8_pinned_non_blocking": run(uint8_fast, pinned),
        "float32_pageable": run(move_only, normalised),
        "float32_pinned_non_blocking": run(move_fast, normalised_pinned),
    }
    samples = interleave(runners, repeats=repeats, warmup=warmup)
    times = {name: summarize(values) for name, values in samples.items()}
    return {
        "results_s": times,
        "ratios": {
            "uint8_vs_float32_pageable": ratio(times["uint8_pageable"], times["float32_pageable"]),
            "uint8_vs_float32_pinned": ratio(
                times["uint8_pinned_non_blocking"], times["float32_pinned_non_blocking"]
            ),
            "pinned_vs_pageable_uint8": ratio(
                times["uint8_pinned_non_blocking"], times["uint8_pageable"]
            ),
        },
        "note": "ratios here are time over time: below 1 means the first is faster",
    }


def _mmengine_preprocessor() -> Callable[..., Any] | None:
    try:
        from mmengine.model import ImgDataPreprocessor as MMEngineImgDataPreprocessor
    except ImportError:
        return None
    pre: Callable[..., Any] = MMEngineImgDataPreprocessor(
        mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=DIVISOR
    )
    return pre


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    results, ratios = cpu_section(args.repeats, args.warmup)
    report: dict[str, Any] = {
        "bench": "preprocess_throughput",
        "batch": BATCH,
        "results": results,
        "ratios": ratios,
        "targets": {"camshaft_vs_hand": TARGET},
        "met": {shape: r["camshaft_vs_hand"] >= TARGET for shape, r in ratios.items()},
        "machine": machine_info(),
        "versions": package_versions("torch", "camshaft-preprocess", "mmengine"),
    }
    if torch.cuda.is_available():
        report["gpu"] = gpu_section(args.repeats, args.warmup)
    emit(report)


if __name__ == "__main__":
    main()
