"""Checkpoints of models whose children are wrapped in place carry plain keys both ways."""

from __future__ import annotations

import torch
from torch import nn

from camshaft.dist import MODEL_WRAPPERS
from camshaft.registry import Registry
from camshaft.runner._runner_env import plain_state_dict, wrapped_key_patterns

_WRAPPERS = Registry("test child wrappers", parent=MODEL_WRAPPERS, scope="camshaft_test_children")


@_WRAPPERS.register_module()
class ChildWrapper(nn.Module):
    """Stands in for a DDP wrapper: the wrapped module lives under ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def _gan(wrapped: bool) -> nn.Module:
    torch.manual_seed(0)
    gan = nn.Module()
    gan.generator = nn.Sequential(nn.Linear(2, 3))
    gan.discriminator = nn.Sequential(nn.Linear(3, 1))
    if wrapped:
        gan.generator = ChildWrapper(gan.generator)
        gan.discriminator = ChildWrapper(gan.discriminator)
    return gan


def test_wrapped_children_save_the_keys_of_the_plain_model() -> None:
    plain, wrapped = _gan(False), _gan(True)
    assert "generator.module.0.weight" in wrapped.state_dict()
    saved = plain_state_dict(wrapped)
    assert list(saved) == list(plain.state_dict())
    assert all(torch.equal(saved[k], v) for k, v in plain.state_dict().items())


def test_plain_keys_load_into_wrapped_children() -> None:
    import re

    plain = _gan(False)
    target = _gan(True)
    with torch.no_grad():
        for p in target.parameters():
            p.zero_()
    revised = {}
    for key, value in plain.state_dict().items():
        for pattern, replacement in wrapped_key_patterns(target):
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    target.load_state_dict(revised, strict=True)
    assert torch.equal(target.generator.module[0].weight, plain.generator[0].weight)
    already_wrapped = "generator.module.0.weight"
    for pattern, replacement in wrapped_key_patterns(target):
        assert re.sub(pattern, replacement, already_wrapped) == already_wrapped
