"""The GAN of "migrate the MMCV runner": a custom ``train_step`` over an ``OptimWrapperDict``.

The seed is MMEngine's ``migration/runner`` page (``migrate-mmcv-runner-zh.md``): its
"底层深度学习任务" section gives ``train_discriminator`` / ``train_generator`` (MMEngine
column), each ending in ``optimizer_wrapper.update_params(loss)``, and its "迁移分布式训练"
section gives ``cfg = dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel'))``
with ``launcher='pytorch'``. The rest of the model (generator, discriminator, losses,
``train_step``, the ``OptimWrapperDict``) is MMEngine's "train a GAN" example, which the
seed points to. What differs:

* imports: ``mmengine.*`` becomes ``camshaft.*``;
* data: scikit-learn's handwritten digits (1,797 8x8 images, shipped with
  scikit-learn) instead of MNIST (which would be downloaded), so ``img_shape`` is
  ``(1, 8, 8)``; ``ImgDataPreprocessor(mean=[127.5], std=[127.5])`` scales the uint8
  images to [-1, 1], the generator's ``tanh`` range. ``num_workers=0``: the data is
  in memory;
* a command line: ``--launcher`` (``none`` or ``pytorch``), ``--work-dir``, ``--quick``
  (two epochs over 320 images instead of 100 over all), and a marker file
  ``rank<N>.done`` that each rank writes at the end (rank, world size, iterations and a
  digest of its weights), so a test can see that every rank finished in step.

Run it::

    python examples/seeds/migrate_mmcv/gan.py [--quick]
    torchrun --nproc_per_node=2 examples/seeds/migrate_mmcv/gan.py --launcher pytorch
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from camshaft.dist import get_dist_info
from camshaft.model import BaseModel
from camshaft.preprocess import ImgDataPreprocessor
from camshaft.runner import OptimWrapper, OptimWrapperDict, Runner

QUICK_IMAGES = 320


class DigitsDataset(Dataset):
    """scikit-learn's digits as ``dict(inputs=uint8 (1, 8, 8) tensor)``, values 0..255.

    Args:
        limit: Keep only the first ``limit`` images; None keeps all 1,797.
    """

    def __init__(self, limit: int | None = None) -> None:
        from sklearn.datasets import load_digits

        images = load_digits().images[:limit]  # 0..16
        self.images = torch.from_numpy((images * (255.0 / 16.0)).round()).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(inputs=self.images[index].unsqueeze(0))


# --- MMEngine's "train a GAN" model, with the seed's two update methods -----------------
# fmt: off
class Generator(nn.Module):
    def __init__(self, noise_size, img_shape):
        super().__init__()
        self.img_shape = img_shape
        self.noise_size = noise_size

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(noise_size, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(np.prod(img_shape))),
            nn.Tanh(),
        )

    def forward(self, z):
        img = self.model(z)
        img = img.view(img.size(0), *self.img_shape)
        return img


class Discriminator(nn.Module):
    def __init__(self, img_shape):
        super().__init__()

        self.model = nn.Sequential(
            nn.Linear(int(np.prod(img_shape)), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
        )

    def forward(self, img):
        img_flat = img.view(img.size(0), -1)
        validity = self.model(img_flat)

        return validity


def set_requires_grad(nets, requires_grad=False):
    """Set requires_grad for all the networks.

    Args:
        nets (nn.Module | list[nn.Module]): A list of networks or a single
            network.
        requires_grad (bool): Whether the networks require gradients or not
    """
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


class GAN(BaseModel):

    def __init__(self, generator, discriminator, noise_size,
                 data_preprocessor):
        super().__init__(data_preprocessor=data_preprocessor)
        assert generator.noise_size == noise_size
        self.generator = generator
        self.discriminator = discriminator
        self.noise_size = noise_size

    def train_step(self, data, optim_wrapper):
        # 获取数据和数据预处理
        inputs_dict = self.data_preprocessor(data, True)
        data_sample = inputs_dict['data_samples']
        # 训练判别器
        disc_optimizer_wrapper: OptimWrapper = optim_wrapper['discriminator']
        with disc_optimizer_wrapper.optim_context(self.discriminator):
            log_vars = self.train_discriminator(inputs_dict, data_sample,
                                                disc_optimizer_wrapper)

        # 训练生成器
        set_requires_grad(self.discriminator, False)
        gen_optimizer_wrapper: OptimWrapper = optim_wrapper['generator']
        with gen_optimizer_wrapper.optim_context(self.generator):
            log_vars_gen = self.train_generator(inputs_dict, data_sample,
                                                gen_optimizer_wrapper)

        set_requires_grad(self.discriminator, True)
        log_vars.update(log_vars_gen)

        return log_vars

    def forward(self, batch_inputs, data_samples=None, mode=None):
        return self.generator(batch_inputs)

    def disc_loss(self, disc_pred_fake, disc_pred_real):
        losses_dict = dict()
        losses_dict['loss_disc_fake'] = F.binary_cross_entropy_with_logits(
            disc_pred_fake, 0. * torch.ones_like(disc_pred_fake))
        losses_dict['loss_disc_real'] = F.binary_cross_entropy_with_logits(
            disc_pred_real, 1. * torch.ones_like(disc_pred_real))

        loss, log_var = self.parse_losses(losses_dict)
        return loss, log_var

    def gen_loss(self, disc_pred_fake):
        losses_dict = dict()
        losses_dict['loss_gen'] = F.binary_cross_entropy_with_logits(
            disc_pred_fake, 1. * torch.ones_like(disc_pred_fake))
        loss, log_var = self.parse_losses(losses_dict)
        return loss, log_var

    def train_discriminator(
            self, inputs, data_sample,
            optimizer_wrapper):
        real_imgs = inputs['inputs']
        z = torch.randn((real_imgs.shape[0], self.noise_size))
        with torch.no_grad():
            fake_imgs = self.generator(z)

        disc_pred_fake = self.discriminator(fake_imgs)
        disc_pred_real = self.discriminator(real_imgs)

        parsed_losses, log_vars = self.disc_loss(disc_pred_fake,
                                                 disc_pred_real)
        optimizer_wrapper.update_params(parsed_losses)
        return log_vars

    def train_generator(self, inputs, data_sample, optimizer_wrapper):
        z = torch.randn(inputs['inputs'].shape[0], self.noise_size)

        fake_imgs = self.generator(z)

        disc_pred_fake = self.discriminator(fake_imgs)
        parsed_loss, log_vars = self.gen_loss(disc_pred_fake)

        optimizer_wrapper.update_params(parsed_loss)
        return log_vars
# fmt: on


def weights_digest(model: nn.Module) -> str:
    """Return a SHA-256 of every parameter, in registration order.

    Buffers are left out: with ``broadcast_buffers=False`` (the wrapper's default) each
    rank keeps its own BatchNorm statistics.

    Args:
        model: The model (wrapped or not); names are not part of the digest.

    Returns:
        The hex digest; equal on two ranks exactly when their parameters are equal.
    """
    digest = hashlib.sha256()
    for tensor in model.parameters():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    parser.add_argument("--work-dir", default="runs/gan/")
    parser.add_argument("--quick", action="store_true", help=f"2 epochs over {QUICK_IMAGES} images")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Runner:
    """Train the GAN on digits, in one process or under torchrun.

    Args:
        argv: Command-line arguments; None reads ``sys.argv``.

    Returns:
        The runner after ``train()``; ``work_dir/rank<N>.done`` has been written.
    """
    args = parse_args(argv)
    max_epochs = 2 if args.quick else 100
    dataset = DigitsDataset(limit=QUICK_IMAGES if args.quick else None)
    batch_size = 32
    # fmt: off
    train_dataloader = dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dataset)

    generator = Generator(100, (1, 8, 8))
    discriminator = Discriminator((1, 8, 8))

    data_preprocessor = ImgDataPreprocessor(mean=([127.5]), std=([127.5]))
    model = GAN(generator, discriminator, 100, data_preprocessor)

    opt_g = torch.optim.Adam(generator.parameters(), lr=0.0001, betas=(0.5, 0.999))
    opt_g_wrapper = OptimWrapper(opt_g)

    opt_d = torch.optim.Adam(
        discriminator.parameters(), lr=0.0001, betas=(0.5, 0.999))
    opt_d_wrapper = OptimWrapper(opt_d)

    opt_wrapper_dict = OptimWrapperDict(
        generator=opt_g_wrapper, discriminator=opt_d_wrapper)

    train_cfg = dict(by_epoch=True, max_epochs=max_epochs)
    cfg = dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel'))
    runner = Runner(
        model,
        work_dir=args.work_dir,
        train_dataloader=train_dataloader,
        train_cfg=train_cfg,
        optim_wrapper=opt_wrapper_dict,
        launcher=args.launcher,
        cfg=cfg)
    runner.train()
    # fmt: on
    rank, world_size = get_dist_info()
    marker: dict[str, Any] = dict(
        rank=rank, world_size=world_size, iter=runner.iter, weights=weights_digest(model)
    )
    Path(runner.work_dir, f"rank{rank}.done").write_text(json.dumps(marker))
    return runner


if __name__ == "__main__":
    main()
