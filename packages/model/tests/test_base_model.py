"""BaseModel: the seeds' examples, the three steps, parse_losses, devices, bad input."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD
from torch.utils.data import DataLoader

from camshaft.model import BaseDataPreprocessor, BaseModel

MakeWrapper = Callable[..., Any]


# --- the tutorials' models, imports changed only -----------------------------------


class NeuralNetwork(BaseModel):
    def __init__(self, data_preprocessor=None):
        super(NeuralNetwork, self).__init__(data_preprocessor)  # noqa: UP008
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )
        self.loss = nn.CrossEntropyLoss()

    def forward(self, img, label, mode="tensor"):
        x = self.flatten(img)
        pred = self.linear_relu_stack(x)
        loss = self.loss(pred, label)
        if mode == "loss":
            return dict(loss=loss)
        else:
            return pred.argmax(1), loss.item()


class NeuralNetwork1(NeuralNetwork):
    def __init__(self, data_preprocessor):
        super().__init__(data_preprocessor=data_preprocessor)
        self.data_preprocessor = data_preprocessor

    def train_step(self, data, optimizer):
        img, label = self.data_preprocessor(data)
        loss = self(img, label, mode="loss")["loss"].sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return dict(loss=loss)

    def test_step(self, data):
        img, label = self.data_preprocessor(data)
        return self(img, label, mode="predict")

    def val_step(self, data):
        img, label = self.data_preprocessor(data)
        return self(img, label, mode="predict")


class NormalizeDataPreprocessor(BaseDataPreprocessor):
    def forward(self, data, training=False):
        img, label = [item for item in data]  # noqa: C416
        img = (img - 127.5) / 127.5
        return img, label


class MMEngineToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, img, label, mode):
        if mode == "loss":
            feat = self.linear(img)
            loss1 = (feat - label).pow(2)
            loss2 = (feat - label).abs()
            return dict(loss1=loss1, loss2=loss2)
        elif mode == "tensor":
            return [feat]  # as in the seed; only the loss branch runs
        else:
            pass


def test_tutorial_neural_network_trains_and_predicts(make_optim_wrapper: MakeWrapper) -> None:
    model = NeuralNetwork()
    assert type(model.data_preprocessor) is BaseDataPreprocessor
    wrapper = make_optim_wrapper(model, 1e-3)
    img, label = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    log_vars = model.train_step((img, label), wrapper)
    assert list(log_vars) == ["loss"]
    assert len(wrapper.losses) == 1
    preds, loss = model.val_step((img, label))
    assert preds.shape == (4,)
    assert isinstance(loss, float)
    assert model.test_step([img, label])[0].shape == (4,)


def test_tutorial_normalize_data_preprocessor() -> None:
    model = NeuralNetwork1(data_preprocessor=NormalizeDataPreprocessor())
    optimizer = SGD(model.parameters(), lr=0.01)
    data = (torch.full((3, 28, 28), fill_value=127.5), torch.ones(3, 10))

    assert set(model.train_step(data, optimizer)) == {"loss"}
    preds, loss = model.val_step(data)
    assert preds.shape == (3,)
    assert isinstance(loss, float)
    assert model.test_step(data)[0].shape == (3,)


def test_migration_toy_model_sums_every_loss_key(make_optim_wrapper: MakeWrapper) -> None:
    train_dataset = [(torch.ones(1, 1), torch.ones(1, 1))] * 50
    train_dataloader = DataLoader(train_dataset, batch_size=2)
    model = MMEngineToyModel()
    wrapper = make_optim_wrapper(model, 0.01)
    for data_batch in train_dataloader:
        log_vars = model.train_step(data_batch, wrapper)
    assert list(log_vars) == ["loss", "loss1", "loss2"]
    assert torch.allclose(log_vars["loss"], log_vars["loss1"] + log_vars["loss2"])


# --- train_step ----------------------------------------------------------------------


class Regressor(BaseModel):
    def __init__(self, data_preprocessor: Any = None) -> None:
        super().__init__(data_preprocessor)
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mode: str = "tensor") -> Any:
        out = self.linear(inputs)
        if mode == "loss":
            return dict(loss_mse=F.mse_loss(out, targets), acc=out.detach().abs().mean())
        return out


def test_train_step_matches_a_hand_written_sgd_loop(make_optim_wrapper: MakeWrapper) -> None:
    torch.manual_seed(0)
    model = Regressor()
    reference = copy.deepcopy(model.linear)
    wrapper = make_optim_wrapper(model, 0.05)
    optimizer = SGD(reference.parameters(), lr=0.05)
    batches = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(5)]

    for inputs, targets in batches:
        model.train_step(dict(inputs=inputs, targets=targets), wrapper)
        loss = F.mse_loss(reference(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    assert torch.equal(model.linear.weight, reference.weight)
    assert torch.equal(model.linear.bias, reference.bias)


def test_forward_runs_inside_the_optim_context(make_optim_wrapper: MakeWrapper) -> None:
    class Probe(Regressor):
        def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mode: str = "tensor") -> Any:
            seen.append(wrapper.inside_context)
            return super().forward(inputs, targets, mode)

    seen: list[bool] = []
    model = Probe()
    wrapper = make_optim_wrapper(model)
    model.train_step((torch.randn(2, 3), torch.randn(2, 1)), wrapper)
    assert seen == [True]
    assert wrapper.contexts == [model]


def test_train_step_with_a_no_op_context_steps_the_same(make_optim_wrapper: MakeWrapper) -> None:
    """A ``nullcontext`` is not entered (a shortcut); the step must not change."""
    from contextlib import nullcontext

    class NoOpContext(type(make_optim_wrapper(Regressor()))):  # type: ignore[misc]
        def optim_context(self, model: nn.Module) -> Any:
            return nullcontext()

    torch.manual_seed(0)
    batch = (torch.randn(4, 3), torch.randn(4, 1))
    models = [Regressor(), Regressor()]
    models[1].load_state_dict(models[0].state_dict())
    plain = make_optim_wrapper(models[0])
    no_op = NoOpContext(torch.optim.SGD(models[1].parameters(), lr=0.1))
    for model, wrapper in zip(models, (plain, no_op), strict=True):
        log_vars = model.train_step(batch, wrapper)
        assert list(log_vars)[:2] == ["loss", "loss_mse"]
    assert torch.equal(models[0].linear.weight, models[1].linear.weight)
    assert plain.contexts == [models[0]]
    assert no_op.contexts == []


def test_train_step_uses_an_overridden_run_forward(make_optim_wrapper: MakeWrapper) -> None:
    class Custom(Regressor):
        def _run_forward(self, data: Any, mode: str) -> Any:
            seen.append(mode)
            return super()._run_forward(data, mode)

    seen: list[str] = []
    model = Custom()
    model.train_step((torch.randn(2, 3), torch.randn(2, 1)), make_optim_wrapper(model))
    assert seen == ["loss"]


def test_steps_pass_the_training_flag_to_the_preprocessor(make_optim_wrapper: MakeWrapper) -> None:
    class Recording(BaseDataPreprocessor):
        def forward(self, data: Any, training: bool = False) -> Any:
            flags.append(training)
            return super().forward(data, training)

    flags: list[bool] = []
    model = Regressor(data_preprocessor=Recording())
    batch = (torch.randn(2, 3), torch.randn(2, 1))
    model.train_step(batch, make_optim_wrapper(model))
    model.val_step(batch)
    model.test_step(batch)
    assert flags == [True, False, False]


def test_log_vars_are_detached_tensors_with_the_total_first(
    make_optim_wrapper: MakeWrapper,
) -> None:
    model = Regressor()
    log_vars = model.train_step((torch.randn(4, 3), torch.randn(4, 1)), make_optim_wrapper(model))
    assert list(log_vars) == ["loss", "loss_mse", "acc"]
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in log_vars.values())
    assert torch.equal(log_vars["loss"], log_vars["loss_mse"])  # 'acc' is logged, not summed


# --- parse_losses ------------------------------------------------------------------------


def test_parse_losses_reduces_tensors_and_lists() -> None:
    model = Regressor()
    weight = torch.ones(1, requires_grad=True)
    losses = {
        "loss_cls": torch.tensor([1.0, 3.0]) * weight,
        "loss_bbox": [torch.tensor([2.0, 4.0]) * weight, torch.tensor(5.0) * weight],
        "accuracy": torch.tensor([0.5, 1.0]),
    }
    loss, log_vars = model.parse_losses(losses)
    assert loss.item() == pytest.approx(2.0 + 3.0 + 5.0)
    assert loss.requires_grad
    assert list(log_vars) == ["loss", "loss_cls", "loss_bbox", "accuracy"]
    assert log_vars["loss_bbox"].item() == pytest.approx(8.0)
    assert log_vars["accuracy"].item() == pytest.approx(0.75)
    loss.backward()
    assert weight.grad is not None


def test_a_key_named_loss_is_part_of_the_total() -> None:
    loss, log_vars = Regressor().parse_losses(
        {"loss": torch.tensor(1.0), "loss_aux": torch.tensor(2.0)}
    )
    assert loss.item() == 3.0
    assert list(log_vars) == ["loss", "loss_aux"]
    assert log_vars["loss"].item() == 3.0


def test_the_total_comes_first_even_after_other_keys() -> None:
    loss, log_vars = Regressor().parse_losses(
        {"acc": torch.tensor(0.5), "loss": torch.tensor(1.0), "loss_aux": torch.tensor([2.0, 4.0])}
    )
    assert list(log_vars) == ["loss", "acc", "loss_aux"]
    assert log_vars["loss"].item() == loss.item() == 4.0


# --- devices ---------------------------------------------------------------------------


def test_preprocessor_follows_the_model_to_another_device() -> None:
    model = Regressor()
    model.to("meta")
    assert model.data_preprocessor.device == torch.device("meta")
    assert model.val_step((torch.randn(2, 3), torch.randn(2, 1))).device.type == "meta"
    model.to_empty(device="cpu")
    assert model.data_preprocessor.device == torch.device("cpu")


def test_preprocessor_follows_a_model_materialised_from_meta() -> None:
    with torch.device("meta"):
        model = Regressor()
    assert model.data_preprocessor.device == torch.device("meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Regressor has no init_cfg: a warning is due
        model.init_weights(device="cpu")
    assert model.data_preprocessor.device == torch.device("cpu")
    assert model.val_step((torch.randn(2, 3), torch.randn(2, 1))).device.type == "cpu"


def test_materialising_from_meta_does_not_warn_about_the_device_anchor() -> None:
    # The anchor has no elements: nothing to initialise, so nothing to warn about.
    class Covered(Regressor):
        def __init__(self) -> None:
            super().__init__()
            self.init_cfg = dict(type="Constant", layer="Linear", val=0.0)

    with torch.device("meta"):
        model = Covered()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.init_weights(device="cpu")


def test_the_anchor_is_not_in_the_model_state_dict() -> None:
    assert sorted(Regressor().state_dict()) == ["linear.bias", "linear.weight"]


@pytest.mark.gpu
def test_train_step_on_cuda_moves_the_batch(make_optim_wrapper: MakeWrapper) -> None:
    model = Regressor(data_preprocessor=dict(non_blocking=True)).cuda()
    assert model.data_preprocessor.device.type == "cuda"
    log_vars = model.train_step((torch.randn(4, 3), torch.randn(4, 1)), make_optim_wrapper(model))
    assert log_vars["loss"].is_cuda
    model.cpu()
    assert model.data_preprocessor.device == torch.device("cpu")


# --- construction ----------------------------------------------------------------------


def test_data_preprocessor_dict_without_type_builds_the_base_class() -> None:
    cfg = dict(non_blocking=True)
    model = Regressor(data_preprocessor=cfg)
    assert type(model.data_preprocessor) is BaseDataPreprocessor
    assert model.data_preprocessor._non_blocking is True
    assert cfg == dict(non_blocking=True)  # the caller's dict is not mutated


def test_data_preprocessor_dict_with_a_type() -> None:
    by_name = Regressor(data_preprocessor=dict(type="BaseDataPreprocessor"))
    by_class = Regressor(data_preprocessor=dict(type=NormalizeDataPreprocessor))
    assert type(by_name.data_preprocessor) is BaseDataPreprocessor
    assert type(by_class.data_preprocessor) is NormalizeDataPreprocessor


def test_data_preprocessor_module_is_kept_as_a_submodule() -> None:
    preprocessor = NormalizeDataPreprocessor()
    model = Regressor(data_preprocessor=preprocessor)
    assert model.data_preprocessor is preprocessor
    assert dict(model.named_children())["data_preprocessor"] is preprocessor


def test_init_cfg_reaches_base_module() -> None:
    class Zeroed(Regressor):
        def __init__(self) -> None:
            BaseModel.__init__(self, init_cfg=dict(type="Constant", layer="Linear", val=0.0))
            self.linear = nn.Linear(3, 1)

    model = Zeroed()
    model.init_weights()
    assert model.linear.weight.abs().sum() == 0


def test_forward_is_abstract() -> None:
    class NoForward(BaseModel):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoForward()  # type: ignore[abstract]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, "BaseDataPreprocessor", [dict(type="BaseDataPreprocessor")]])
def test_data_preprocessor_of_the_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match=rf"`data_preprocessor` must be .*got {type(bad).__name__}"):
        Regressor(data_preprocessor=bad)


def test_loss_mode_returning_a_non_dict(make_optim_wrapper: MakeWrapper) -> None:
    class ReturnsTensor(Regressor):
        def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mode: str = "tensor") -> Any:
            return F.mse_loss(self.linear(inputs), targets)

    model = ReturnsTensor()
    with pytest.raises(
        TypeError, match=r"ReturnsTensor.forward\(mode='loss'\) must return a dict .*got Tensor"
    ):
        model.train_step((torch.randn(2, 3), torch.randn(2, 1)), make_optim_wrapper(model))


def test_loss_dict_without_a_loss_key() -> None:
    with pytest.raises(ValueError, match=r"containing 'loss'.*got keys \['acc', 'top5'\]"):
        Regressor().parse_losses({"acc": torch.tensor(1.0), "top5": torch.tensor(1.0)})
    with pytest.raises(ValueError, match=r"got keys \[\]"):
        Regressor().parse_losses({})


@pytest.mark.parametrize(
    ("value", "kind"), [(1.5, "float"), ([torch.tensor(1.0), 2.0], "list"), (None, "NoneType")]
)
def test_loss_value_not_a_tensor(value: object, kind: str) -> None:
    with pytest.raises(TypeError, match=rf"loss 'loss_x' must be a tensor .*got {kind}"):
        Regressor().parse_losses({"loss_x": value})


def test_loss_value_empty_list() -> None:
    with pytest.raises(ValueError, match=r"loss 'loss_x' is an empty list"):
        Regressor().parse_losses({"loss_x": []})


def test_losses_not_a_mapping() -> None:
    with pytest.raises(TypeError, match=r"`losses` must be a dict .*got list"):
        Regressor().parse_losses([torch.tensor(1.0)])  # type: ignore[arg-type]


def test_batch_that_cannot_be_unpacked(make_optim_wrapper: MakeWrapper) -> None:
    model = Regressor()
    with pytest.raises(TypeError, match=r"must be a dict .* or a list/tuple .*got Tensor"):
        model.val_step(torch.randn(2, 3))
    with pytest.raises(TypeError, match=r"got Tensor"):
        model.train_step(torch.randn(2, 3), make_optim_wrapper(model))


def test_bare_optimizer_instead_of_a_wrapper() -> None:
    model = Regressor()
    optimizer = SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"`optim_wrapper` must have .*got SGD.*HINT"):
        model.train_step((torch.randn(2, 3), torch.randn(2, 1)), optimizer)  # type: ignore[arg-type]
