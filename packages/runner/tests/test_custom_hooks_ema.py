"""EMAHook: the average's arithmetic, exact val/test swaps, and the checkpoint round trip."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.registry import BuildError, RegistryError
from camshaft.runner._registry import HOOKS
from camshaft.runner.checkpoint import check_plain_checkpoint
from camshaft.runner.hooks import HookDispatcher, Priority
from camshaft.runner.hooks._ema_hook import EMAHook
from camshaft.runner.logging import MessageHub

# --- a fake runner with exactly the attributes the hook reads ------------------------


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.fc(x)))


def make_runner(net: nn.Module, **overrides: Any) -> SimpleNamespace:
    loop = SimpleNamespace(by_epoch=True, stop_training=False, max_epochs=5, max_iters=100)
    fields: dict[str, Any] = dict(
        model=net,
        unwrapped_model=net,
        epoch=0,
        iter=0,
        max_epochs=5,
        max_iters=100,
        train_loop=loop,
        message_hub=MessageHub.get_instance("ema_test"),
        logger=logging.getLogger("test_custom_hooks_ema"),
        distributed=False,
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def train(runner: SimpleNamespace, hook: EMAHook, optimizer: Any, steps: int, seed: int) -> None:
    """Real SGD steps on random data, calling the hook as the loop would."""
    generator = torch.Generator().manual_seed(seed)
    model = runner.unwrapped_model
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 3, generator=generator)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hook.after_train_iter(runner, batch_idx=runner.iter)
        runner.iter += 1


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_state_equal(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def setup(seed: int = 0, **hook_kwargs: Any) -> tuple[SimpleNamespace, EMAHook, Any]:
    torch.manual_seed(seed)
    model = Net()
    runner = make_runner(model)
    hook = EMAHook(**{"momentum": 0.1, **hook_kwargs})
    hook.before_run(runner)
    hook.before_train(runner)
    return runner, hook, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


# --- construction and registration ----------------------------------------------------


def test_registered_built_from_config_and_normal_priority() -> None:
    hook = HOOKS.build(dict(type="EMAHook", momentum=0.01, begin_iter=3))
    assert isinstance(hook, EMAHook)
    assert hook.ema_cfg == {"type": "ExponentialMovingAverage", "momentum": 0.01}
    assert (hook.begin_iter, hook.begin_epoch, hook.strict_load) == (3, 0, True)
    assert Priority[hook.priority] == Priority.NORMAL
    assert hook.get_triggered_stages() == [
        "before_run",
        "after_load_checkpoint",
        "before_train",
        "after_train_iter",
        "before_val_epoch",
        "after_val_epoch",
        "before_save_checkpoint",
        "before_test_epoch",
        "after_test_epoch",
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(begin_iter=-1), ValueError, r"`begin_iter` must be an int >= 0, got -1"),
        (dict(begin_epoch=-2), ValueError, r"`begin_epoch` must be an int >= 0, got -2"),
        (dict(begin_iter=1.5), TypeError, r"`begin_iter` must be an int >= 0, got 1.5"),
        (dict(begin_epoch=True), TypeError, r"`begin_epoch` must be an int >= 0, got True"),
        (dict(begin_iter=2, begin_epoch=1), ValueError, r"not both.*begin_iter=2.*begin_epoch=1"),
        (dict(strict_load="yes"), TypeError, r"`strict_load` must be a bool, got str 'yes'"),
        (dict(ema_type=3), TypeError, r"`ema_type` must be the name.*got int 3"),
        (dict(model=nn.Linear(1, 1)), TypeError, r"do not pass `model`"),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        EMAHook(**kwargs)


def test_unknown_ema_type_raises_the_registry_error_at_before_run() -> None:
    hook = EMAHook(ema_type="ExponentialMovingAverag")
    with pytest.raises(RegistryError, match="ExponentialMovingAverage"):
        hook.before_run(make_runner(Net()))


def test_ema_type_that_is_not_an_average_is_refused() -> None:
    hook = EMAHook(ema_type=nn.Identity)
    with pytest.raises(TypeError, match=r"built a Identity; expected .*BaseAveragedModel"):
        hook.before_run(make_runner(Net()))


def test_bad_ema_kwargs_fail_in_the_averaged_model() -> None:
    with pytest.raises(BuildError, match=r"`momentum` must be in \(0, 1\), got 2"):
        EMAHook(momentum=2).before_run(make_runner(Net()))


def test_begin_past_the_end_of_the_run_is_refused() -> None:
    runner = make_runner(Net(), max_iters=10)
    hook = EMAHook(begin_iter=11)
    hook.before_run(runner)
    with pytest.raises(ValueError, match=r"`begin_iter` must be <= max_iters \(10\), got 11"):
        hook.before_train(runner)
    hook = EMAHook(begin_epoch=6)
    hook.before_run(runner)
    with pytest.raises(ValueError, match=r"`begin_epoch` must be <= max_epochs \(5\), got 6"):
        hook.before_train(runner)
    runner.train_loop.by_epoch = False  # epochs mean nothing in an iteration-based run
    hook.before_train(runner)


def test_before_run_wraps_unwrapped_model_and_a_second_call_keeps_the_average() -> None:
    model = Net()
    runner = make_runner(model, model=SimpleNamespace(module=model))  # a wrapper stand-in
    hook = EMAHook(momentum=0.1)
    hook.before_run(runner)
    assert hook.src_model is model
    ema = hook.ema_model
    assert ema is not None
    assert ema.momentum == 0.1
    hook.before_run(runner)  # e.g. runner.test() after runner.train()
    assert hook.ema_model is ema


# --- the average ---------------------------------------------------------------------


def _fill_weights(model: nn.Module, step: int) -> None:
    generator = torch.Generator().manual_seed(100 + step)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator))


def _hand_ema(steps: int, momentum: float, first: int) -> dict[str, torch.Tensor]:
    """The EMA of the weights set at steps first..steps-1, in float64: copy, then lerp."""
    reference = Net()
    average: dict[str, torch.Tensor] = {}
    for step in range(first, steps):
        _fill_weights(reference, step)
        for name, param in reference.named_parameters():
            value = param.detach().double()
            if step == first:
                average[name] = value.clone()
            else:
                average[name] = (1 - momentum) * average[name] + momentum * value
    return average


@pytest.mark.parametrize(("begin_iter", "first"), [(0, 0), (1, 0), (4, 3)])
def test_average_matches_a_hand_computation(begin_iter: int, first: int) -> None:
    model = Net()
    runner = make_runner(model)
    hook = EMAHook(momentum=0.25, begin_iter=begin_iter)
    hook.before_run(runner)
    for step in range(7):
        _fill_weights(model, step)
        runner.iter = step
        hook.after_train_iter(runner, batch_idx=step)
        if step < first:  # not started: the average copies the model
            assert_state_equal(snapshot(hook.ema_model.module), snapshot(model))  # type: ignore[union-attr]
    expected = _hand_ema(7, 0.25, first)
    averaged = dict(hook.ema_model.module.named_parameters())  # type: ignore[union-attr]
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name].double(), value, rtol=0, atol=1e-6)
    assert int(hook.ema_model.steps) == 7 - first  # type: ignore[union-attr]


def test_begin_epoch_copies_until_that_epoch() -> None:
    model = Net()
    runner = make_runner(model)
    hook = EMAHook(momentum=0.5, begin_epoch=2)
    hook.before_run(runner)
    for epoch in range(3):
        runner.epoch = epoch
        _fill_weights(model, epoch)
        hook.after_train_iter(runner, batch_idx=0)
        runner.iter += 1
    assert int(hook.ema_model.steps) == 1  # type: ignore[union-attr]
    assert_state_equal(snapshot(hook.ema_model.module), snapshot(model))  # type: ignore[union-attr]


def test_other_registered_averages_are_built_by_name() -> None:
    runner = make_runner(Net())
    hook = EMAHook(ema_type="MomentumAnnealingEMA", momentum=0.01, gamma=10)
    hook.before_run(runner)
    assert type(hook.ema_model).__name__ == "MomentumAnnealingEMA"
    assert hook.ema_model.gamma == 10.0  # type: ignore[union-attr]


# --- validation and test use the average; training resumes bit for bit ----------------

SWAP_STAGES = [("before_val_epoch", "after_val_epoch"), ("before_test_epoch", "after_test_epoch")]


@pytest.mark.parametrize("update_buffers", [False, True])
@pytest.mark.parametrize("stages", SWAP_STAGES)
def test_swap_in_and_out_is_exact(update_buffers: bool, stages: tuple[str, str]) -> None:
    runner, hook, optimizer = setup(update_buffers=update_buffers)
    train(runner, hook, optimizer, steps=5, seed=1)
    model, ema = runner.unwrapped_model, hook.ema_model
    live, averaged = snapshot(model), snapshot(ema.module)
    assert not torch.equal(live["fc.weight"], averaged["fc.weight"])

    getattr(hook, stages[0])(runner)
    inside = snapshot(model)
    for name, _ in model.named_parameters():
        assert torch.equal(inside[name], averaged[name]), name
    source = averaged if update_buffers else live  # buffers: the average's only if averaged
    for name, _ in model.named_buffers():
        assert torch.equal(inside[name], source[name]), name
    model.eval()
    model(torch.randn(4, 3))  # validation runs; eval mode leaves the buffers alone
    getattr(hook, stages[1])(runner, metrics={"acc": 1.0})

    assert_state_equal(snapshot(model), live)
    assert_state_equal(snapshot(ema.module), averaged)
    getattr(hook, stages[1])(runner, metrics={})  # an unmatched "after" changes nothing
    assert_state_equal(snapshot(model), live)


def test_training_with_validation_swaps_equals_training_without() -> None:
    results = []
    for validate in (False, True):
        runner, hook, optimizer = setup(seed=3)
        for _ in range(3):
            train(runner, hook, optimizer, steps=4, seed=runner.iter)
            if validate:
                hook.before_val_epoch(runner)
                hook.after_val_epoch(runner, metrics={})
        results.append((snapshot(runner.unwrapped_model), snapshot(hook.ema_model)))
    assert_state_equal(results[1][0], results[0][0])
    assert_state_equal(results[1][1], results[0][1])


def test_dispatcher_pairs_the_swaps() -> None:
    runner, hook, optimizer = setup()
    train(runner, hook, optimizer, steps=3, seed=0)
    live = snapshot(runner.unwrapped_model)
    dispatcher = HookDispatcher()
    dispatcher.register(hook)
    dispatcher.call("before_val_epoch", runner)
    assert not torch.equal(runner.unwrapped_model.fc.weight, live["fc.weight"])
    dispatcher.call("after_val_epoch", runner, metrics={})
    assert_state_equal(snapshot(runner.unwrapped_model), live)


# --- checkpoints -----------------------------------------------------------------------


def _saved(runner: SimpleNamespace, hook: EMAHook, path: Path) -> dict[str, Any]:
    """What the runner does: state_dict, hooks, write; then read with weights_only."""
    checkpoint: dict[str, Any] = {
        "meta": {"iter": runner.iter},
        "state_dict": runner.unwrapped_model.state_dict(),
    }
    hook.before_save_checkpoint(runner, checkpoint)
    check_plain_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return torch.load(path, weights_only=True)


def _resumed(checkpoint: dict[str, Any], **hook_kwargs: Any) -> tuple[SimpleNamespace, EMAHook]:
    """A fresh runner: before_run, load 'state_dict' into the model, then the hook."""
    torch.manual_seed(1234)
    runner = make_runner(Net())
    hook = EMAHook(**{"momentum": 0.1, **hook_kwargs})
    hook.before_run(runner)
    runner.unwrapped_model.load_state_dict(checkpoint["state_dict"], strict=False)
    hook.after_load_checkpoint(runner, checkpoint)
    return runner, hook


@pytest.mark.parametrize("update_buffers", [False, True])
def test_checkpoint_round_trip_restores_live_weights_and_average_exactly(
    tmp_path: Path, update_buffers: bool
) -> None:
    runner, hook, optimizer = setup(update_buffers=update_buffers)
    train(runner, hook, optimizer, steps=6, seed=0)
    live, averaged = snapshot(runner.unwrapped_model), snapshot(hook.ema_model)

    loaded = _saved(runner, hook, tmp_path / "epoch_1.pth")
    assert_state_equal(snapshot(runner.unwrapped_model), live)  # saving changed nothing
    assert_state_equal(snapshot(hook.ema_model), averaged)
    # 'state_dict' is what a user evaluates: the averaged weights, model keys.
    assert loaded["state_dict"].keys() == live.keys()
    for name, _ in runner.unwrapped_model.named_parameters():
        assert torch.equal(loaded["state_dict"][name], averaged["module." + name])
        assert torch.equal(loaded["ema_state_dict"]["module." + name], live[name])
    assert loaded["ema_state_dict"].keys() == averaged.keys()
    assert int(loaded["ema_state_dict"]["steps"]) == 6

    runner2, hook2 = _resumed(loaded, update_buffers=update_buffers)
    assert_state_equal(snapshot(runner2.unwrapped_model), live)
    assert_state_equal(snapshot(hook2.ema_model), averaged)
    assert_state_equal(dict(loaded["state_dict"]), live)  # the dict's swap is undone too

    # Resuming continues exactly as never stopping.
    optimizer2 = torch.optim.SGD(runner2.unwrapped_model.parameters(), lr=0.1, momentum=0.9)
    optimizer2.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    runner2.iter = runner.iter
    train(runner, hook, optimizer, steps=3, seed=9)
    train(runner2, hook2, optimizer2, steps=3, seed=9)
    assert_state_equal(snapshot(runner2.unwrapped_model), snapshot(runner.unwrapped_model))
    assert_state_equal(snapshot(hook2.ema_model), snapshot(hook.ema_model))


def test_saving_during_validation_writes_the_same_checkpoint(tmp_path: Path) -> None:
    runner, hook, optimizer = setup()
    train(runner, hook, optimizer, steps=4, seed=0)
    plain = _saved(runner, hook, tmp_path / "a.pth")
    hook.before_val_epoch(runner)
    during = _saved(runner, hook, tmp_path / "b.pth")
    hook.after_val_epoch(runner, metrics={})
    for key in ("state_dict", "ema_state_dict"):
        assert_state_equal(dict(during[key]), dict(plain[key]))


def test_checkpoint_without_ema_warns_once_and_starts_from_loaded_weights() -> None:
    torch.manual_seed(7)
    checkpoint = {"state_dict": snapshot(Net())}
    runner = make_runner(Net())
    hook = EMAHook(momentum=0.1)
    hook.before_run(runner)
    runner.unwrapped_model.load_state_dict(checkpoint["state_dict"])
    with pytest.warns(UserWarning, match="no 'ema_state_dict'.*starts from the loaded"):
        hook.after_load_checkpoint(runner, checkpoint)
    assert_state_equal(snapshot(hook.ema_model.module), checkpoint["state_dict"])  # type: ignore[union-attr]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hook.after_load_checkpoint(runner, checkpoint)  # the second time: silent


def test_state_dict_missing_model_keys_is_refused_without_changes(tmp_path: Path) -> None:
    runner, hook, optimizer = setup()
    train(runner, hook, optimizer, steps=2, seed=0)
    checkpoint: dict[str, Any] = {"state_dict": runner.unwrapped_model.state_dict()}
    del checkpoint["state_dict"]["head.bias"]
    with pytest.raises(KeyError, match=r"lacks 1 key.*head\.bias"):
        hook.before_save_checkpoint(runner, checkpoint)
    assert "ema_state_dict" not in checkpoint
    with pytest.raises(KeyError, match=r"checkpoint\['state_dict'\] must be"):
        hook.before_save_checkpoint(runner, {})


def test_mismatched_checkpoint_loads_nothing(tmp_path: Path) -> None:
    runner, hook, optimizer = setup()
    train(runner, hook, optimizer, steps=3, seed=0)
    loaded = _saved(runner, hook, tmp_path / "c.pth")
    loaded["ema_state_dict"]["module.fc.weight"] = torch.zeros(2, 2)  # live fc.weight, wrong
    runner2 = make_runner(Net())
    hook2 = EMAHook(momentum=0.1)
    hook2.before_run(runner2)
    before = (snapshot(runner2.unwrapped_model), snapshot(hook2.ema_model))
    state_before = dict(loaded["state_dict"])
    with pytest.raises(RuntimeError, match=r"fc\.weight: shape \(2, 2\).*\(4, 3\) here"):
        hook2.after_load_checkpoint(runner2, loaded)
    assert_state_equal(snapshot(runner2.unwrapped_model), before[0])
    assert_state_equal(snapshot(hook2.ema_model), before[1])
    assert all(loaded["state_dict"][k] is v for k, v in state_before.items())


def test_strict_load_decides_whether_missing_keys_are_tolerated(tmp_path: Path) -> None:
    runner, hook, optimizer = setup()
    train(runner, hook, optimizer, steps=3, seed=0)
    live = snapshot(runner.unwrapped_model)
    loaded = _saved(runner, hook, tmp_path / "d.pth")
    del loaded["ema_state_dict"]["module.head.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys \['module\.head\.bias'\]"):
        _resumed(loaded)
    runner2, _ = _resumed(loaded, strict_load=False)
    restored = snapshot(runner2.unwrapped_model)
    assert torch.equal(restored["fc.weight"], live["fc.weight"])
