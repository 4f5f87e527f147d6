"""OptimWrapperDict: mapping access, collective operations, state round trip, refused calls."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.model import OptimWrapperProtocol
from camshaft.runner.optim import OptimWrapper, OptimWrapperDict


class ToyGAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 1)


def _gan_wrappers() -> tuple[ToyGAN, OptimWrapperDict]:
    torch.manual_seed(0)
    gan = ToyGAN()
    wrappers = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(gan.generator.parameters(), lr=1e-3)),
        discriminator=OptimWrapper(
            torch.optim.SGD(gan.discriminator.parameters(), lr=0.1, momentum=0.5)
        ),
    )
    return gan, wrappers


def _train_once(gan: ToyGAN, wrappers: OptimWrapperDict) -> None:
    noise = torch.randn(4, 2)
    wrappers["discriminator"].update_params(gan.discriminator(gan.generator(noise).detach()).mean())
    wrappers["generator"].update_params(-gan.discriminator(gan.generator(noise)).mean())


def test_it_is_a_read_only_mapping_of_wrappers() -> None:
    _, wrappers = _gan_wrappers()
    assert list(wrappers) == ["generator", "discriminator"]
    assert list(wrappers.keys()) == ["generator", "discriminator"]
    assert all(isinstance(wrapper, OptimWrapper) for wrapper in wrappers.values())
    assert [name for name, _ in wrappers.items()] == ["generator", "discriminator"]
    assert len(wrappers) == 2
    assert "generator" in wrappers
    assert "encoder" not in wrappers
    assert wrappers["generator"] is wrappers.optim_wrappers["generator"]
    assert "generator" in repr(wrappers)


def test_zero_grad_clears_every_wrapper() -> None:
    gan, wrappers = _gan_wrappers()
    gan.discriminator(gan.generator(torch.randn(3, 2))).sum().backward()
    wrappers.zero_grad()
    assert all(param.grad is None for param in gan.parameters())


def test_get_lr_and_get_momentum_are_keyed_by_wrapper_name() -> None:
    _, wrappers = _gan_wrappers()
    assert wrappers.get_lr() == {"generator.lr": [1e-3], "discriminator.lr": [0.1]}
    assert wrappers.get_momentum() == {"generator.momentum": [0.9], "discriminator.momentum": [0.5]}
    assert set(wrappers.param_groups) == {"generator", "discriminator"}


def test_state_dict_round_trip() -> None:
    gan, wrappers = _gan_wrappers()
    for _ in range(3):
        _train_once(gan, wrappers)
    state = wrappers.state_dict()
    assert set(state) == {"generator", "discriminator"}
    saved = copy.deepcopy(state)
    _, fresh = _gan_wrappers()
    fresh_gan_params = list(fresh["generator"].param_groups[0]["params"])
    fresh.load_state_dict(state)
    assert set(state) == set(saved)  # the argument is not consumed
    assert fresh.state_dict()["generator"]["state"].keys() == saved["generator"]["state"].keys()
    exp_avg = fresh["generator"].optimizer.state[fresh_gan_params[0]]["exp_avg"]
    saved_avg = saved["generator"]["state"][0]["exp_avg"]
    torch.testing.assert_close(exp_avg, saved_avg)


@pytest.mark.parametrize(
    ("call", "hint"),
    [
        (lambda w: w.update_params(torch.zeros(())), "optim_wrapper['generator'].update_params"),
        (lambda w: w.backward(torch.zeros(())), "optim_wrapper['generator'].backward"),
        (lambda w: w.step(), "optim_wrapper['generator'].step"),
        (lambda w: w.optim_context(nn.Linear(1, 1)), "optim_wrapper['generator'].optim_context"),
    ],
)
def test_per_loss_calls_on_the_dict_name_the_wrapper_call_to_make(call: Any, hint: str) -> None:
    _, wrappers = _gan_wrappers()
    with pytest.raises(
        NotImplementedError, match=r"ambiguous.*HINT: call it on one wrapper"
    ) as info:
        call(wrappers)
    assert hint in str(info.value)


def test_it_satisfies_the_model_protocol_so_base_model_reaches_the_clear_error() -> None:
    _, wrappers = _gan_wrappers()
    assert isinstance(wrappers, OptimWrapperProtocol)


def test_initialize_count_status_leaves_each_wrapper_alone() -> None:
    gan, wrappers = _gan_wrappers()
    wrappers.initialize_count_status(gan, 4, 10)
    assert [wrapper.inner_count for wrapper in wrappers.values()] == [0, 0]


# --- bad input -------------------------------------------------------------------------


def test_values_must_be_optim_wrappers() -> None:
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(
        TypeError, match=r"values must be OptimWrapper instances, got generator=SGD"
    ):
        OptimWrapperDict(generator=optimizer)  # type: ignore[arg-type]


def test_unknown_name_lists_the_known_ones() -> None:
    _, wrappers = _gan_wrappers()
    with pytest.raises(
        KeyError, match=r"no wrapper 'encoder'; it has \['generator', 'discriminator'\]"
    ):
        wrappers["encoder"]


def test_loading_a_state_for_an_unknown_wrapper_fails_before_loading_anything() -> None:
    gan, wrappers = _gan_wrappers()
    _train_once(gan, wrappers)
    state = wrappers.state_dict()
    state["encoder"] = state["generator"]
    _, fresh = _gan_wrappers()
    with pytest.raises(KeyError, match=r"entries \['encoder'\]"):
        fresh.load_state_dict(state)
    assert fresh["generator"].optimizer.state_dict()["state"] == {}


def test_loading_a_state_that_lacks_a_wrapper_warns() -> None:
    _, wrappers = _gan_wrappers()
    state = wrappers.state_dict()
    del state["discriminator"]
    with pytest.warns(UserWarning, match=r"no entry for wrappers \['discriminator'\]"):
        wrappers.load_state_dict(state)
