"""build_optim_wrapper and its constructor: configs, paramwise_cfg, several optimizers."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import pytest
import torch
from torch import nn

from camshaft.registry import BuildError, ConfigDict, RegistryError
from camshaft.runner.optim import (
    AmpOptimWrapper,
    DefaultOptimWrapperConstructor,
    OptimWrapper,
    OptimWrapperDict,
    build_optim_wrapper,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, 4, 3),
                bn=nn.BatchNorm2d(4),
                dw=nn.Conv2d(4, 4, 3, groups=4),
            )
        )
        self.neck = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(4))


def _options(wrapper: OptimWrapper, model: nn.Module) -> dict[str, dict[str, Any]]:
    """Each parameter's param group (without 'params'), by parameter name."""
    group_of = {id(p): g for g in wrapper.param_groups for p in g["params"]}
    return {
        name: {k: v for k, v in group_of[id(param)].items() if k != "params"}
        for name, param in model.named_parameters()
    }


def _lr_wd(wrapper: OptimWrapper, model: nn.Module) -> dict[str, tuple[float, float]]:
    return {
        name: (round(opts["lr"], 8), round(opts["weight_decay"], 8))
        for name, opts in _options(wrapper, model).items()
    }


SGD_CFG = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-2)


# --- building from a config ------------------------------------------------------------


@pytest.mark.parametrize("optimizer_type", ["SGD", torch.optim.SGD])
def test_a_config_builds_the_optimizer_by_name_or_class(optimizer_type: Any) -> None:
    model = nn.Linear(2, 1)
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type=optimizer_type, lr=0.01, momentum=0.9),
            accumulative_counts=2,
            clip_grad=dict(max_norm=1.0),
        ),
    )
    assert type(wrapper) is OptimWrapper
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    assert wrapper.get_lr() == {"lr": [0.01]}
    assert wrapper.accumulative_counts == 2
    assert wrapper.param_groups[0]["params"] == list(model.parameters())


def test_the_callers_config_is_never_modified() -> None:
    cfg = ConfigDict(
        type="OptimWrapper",
        optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-2),
        clip_grad=dict(type="norm", max_norm=1.0),
        paramwise_cfg=dict(bias_lr_mult=2.0, custom_keys={"head": dict(lr_mult=0.5)}),
    )
    before = copy.deepcopy(cfg)
    build_optim_wrapper(Net(), cfg)
    build_optim_wrapper(Net(), cfg)  # and it can be built again
    assert cfg == before


def test_amp_wrapper_by_type_name() -> None:
    wrapper = build_optim_wrapper(
        nn.Linear(2, 1),
        dict(type="AmpOptimWrapper", dtype="bfloat16", optimizer=dict(type="AdamW")),
    )
    assert isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.cast_dtype == torch.bfloat16


def test_built_wrappers_are_returned_as_they_are() -> None:
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert build_optim_wrapper(model, wrapper) is wrapper
    wrappers = OptimWrapperDict(only=wrapper)
    assert build_optim_wrapper(model, wrappers) is wrappers


def test_a_config_around_a_built_optimizer() -> None:
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    wrapper = build_optim_wrapper(model, dict(optimizer=optimizer, accumulative_counts=4))
    assert wrapper.optimizer is optimizer
    assert wrapper.accumulative_counts == 4
    with pytest.raises(ValueError, match=r"already built, so \['paramwise_cfg'\] cannot"):
        build_optim_wrapper(model, dict(optimizer=optimizer, paramwise_cfg=dict(bias_lr_mult=2)))


def test_a_constructor_given_by_class_receives_the_config() -> None:
    received: list[tuple[dict[str, Any], Any]] = []

    class RecordingConstructor(DefaultOptimWrapperConstructor):
        def __init__(self, optim_wrapper_cfg: Any, paramwise_cfg: Any = None) -> None:
            received.append((dict(optim_wrapper_cfg), paramwise_cfg))
            super().__init__(optim_wrapper_cfg, paramwise_cfg)

    paramwise_cfg = dict(bias_lr_mult=2.0)
    cfg = dict(
        constructor=RecordingConstructor,
        optimizer=dict(type="SGD", lr=0.1),
        paramwise_cfg=paramwise_cfg,
    )
    wrapper = build_optim_wrapper(nn.Linear(2, 1), cfg)
    assert received == [({"optimizer": dict(type="SGD", lr=0.1)}, paramwise_cfg)]
    assert sorted(wrapper.get_lr()["lr"]) == [0.1, 0.2]


def test_the_constructor_unwraps_a_ddp_style_module_and_accepts_paramwise_in_the_cfg() -> None:
    class Wrapped(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    net = Net()
    constructor = DefaultOptimWrapperConstructor(
        dict(optimizer=SGD_CFG, paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.5)}))
    )
    wrapper = constructor(Wrapped(net))
    assert _lr_wd(wrapper, net)["head.weight"] == (0.05, 0.01)  # names relative to `net`


def test_torch_optimizers_are_found_without_being_registered_at_import() -> None:
    code = (
        "import sys, torch\n"
        "import camshaft.runner.optim\n"
        "from camshaft.runner._registry import OPTIMIZERS\n"
        "assert len(OPTIMIZERS) == 0, list(OPTIMIZERS.module_dict)\n"
        "assert 'camshaft.runner.optim._torch_optimizers' not in sys.modules\n"
        "assert OPTIMIZERS.get('AdamW') is torch.optim.AdamW\n"
        "assert OPTIMIZERS.get('TorchAdafactor') is OPTIMIZERS.get('Adafactor')\n"
        "assert 'Optimizer' not in OPTIMIZERS\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- paramwise_cfg ---------------------------------------------------------------------


def test_paramwise_multipliers_reach_the_right_parameters() -> None:
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=SGD_CFG,
            paramwise_cfg=dict(
                bias_lr_mult=2.0,
                bias_decay_mult=0.5,
                norm_decay_mult=0.0,
                dwconv_decay_mult=0.1,
                flat_decay_mult=0.3,
            ),
        ),
    )
    assert _lr_wd(wrapper, model) == {
        "scale": (0.1, 0.003),  # any other 1-d parameter: flat_decay_mult
        "backbone.conv.weight": (0.1, 0.01),
        "backbone.conv.bias": (0.2, 0.005),
        "backbone.bn.weight": (0.1, 0.0),  # norm layers: norm_decay_mult ...
        "backbone.bn.bias": (0.1, 0.0),  # ... and no bias_lr_mult
        "backbone.dw.weight": (0.1, 0.001),  # depth-wise conv
        "backbone.dw.bias": (0.2, 0.005),  # bias_decay_mult comes before dwconv_decay_mult
        "neck.weight": (0.1, 0.0),
        "neck.bias": (0.1, 0.0),
        "head.weight": (0.1, 0.01),
        "head.bias": (0.2, 0.005),
    }


def test_custom_keys_longest_match_wins_and_overrides_the_other_rules() -> None:
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=SGD_CFG,
            paramwise_cfg=dict(
                bias_lr_mult=2.0,
                custom_keys={
                    "backbone": dict(lr_mult=0.1),
                    "backbone.bn": dict(lr_mult=0.5, decay_mult=0.0),
                    "head": dict(lr_mult=10, momentum=0.5),
                },
            ),
        ),
    )
    lr_wd = _lr_wd(wrapper, model)
    assert lr_wd["backbone.conv.bias"] == (0.01, 0.01)  # 'backbone', not bias_lr_mult
    assert lr_wd["backbone.bn.weight"] == (0.05, 0.0)  # the longer 'backbone.bn'
    assert lr_wd["head.bias"] == (1.0, 0.01)
    options = _options(wrapper, model)
    assert options["head.weight"]["momentum"] == 0.5  # every custom entry lands in the group
    assert options["head.weight"]["lr_mult"] == 10
    assert options["scale"]["momentum"] == 0.9


def test_custom_keys_of_equal_length_resolve_alphabetically() -> None:
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=SGD_CFG,
            paramwise_cfg=dict(custom_keys={"conv": dict(lr_mult=0.2), "bias": dict(lr_mult=0.3)}),
        ),
    )
    assert _lr_wd(wrapper, model)["backbone.conv.bias"] == (0.03, 0.01)  # 'bias' < 'conv'


def test_frozen_parameters_get_a_plain_group() -> None:
    model = Net()
    model.head.weight.requires_grad_(False)
    wrapper = build_optim_wrapper(
        model,
        dict(optimizer=SGD_CFG, paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=10)})),
    )
    assert _lr_wd(wrapper, model)["head.weight"] == (0.1, 0.01)
    assert "lr_mult" not in _options(wrapper, model)["head.weight"]


def test_a_custom_key_that_matches_no_parameter_is_warned_with_close_names() -> None:
    with pytest.warns(
        UserWarning, match=r"custom_keys\['hed.weight'\] matches no parameter"
    ) as rec:
        build_optim_wrapper(
            Net(),
            dict(
                optimizer=SGD_CFG, paramwise_cfg=dict(custom_keys={"hed.weight": dict(lr_mult=2)})
            ),
        )
    assert "'head.weight'" in str(rec[0].message)


def test_shared_parameters_need_bypass_duplicate() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = model[0].weight
    cfg = dict(optimizer=SGD_CFG, paramwise_cfg=dict(bias_lr_mult=2.0))
    with pytest.raises(BuildError, match="more than one parameter group"):
        build_optim_wrapper(model, cfg)
    cfg["paramwise_cfg"] = dict(bias_lr_mult=2.0, bypass_duplicate=True)
    with pytest.warns(UserWarning, match=r"1.weight is the same parameter.*bypass_duplicate"):
        wrapper = build_optim_wrapper(model, cfg)
    assert sum(len(group["params"]) for group in wrapper.param_groups) == 3


# --- several optimizers ----------------------------------------------------------------


class GAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 1)
        self.frozen = nn.Linear(2, 2)


def test_a_dict_of_configs_builds_one_wrapper_per_submodule() -> None:
    gan = GAN()
    disc_wrapper = OptimWrapper(torch.optim.SGD(gan.discriminator.parameters(), lr=0.3))
    wrappers = build_optim_wrapper(
        gan,
        dict(
            generator=dict(type="AmpOptimWrapper", dtype="bfloat16", optimizer=dict(type="Adam")),
            discriminator=disc_wrapper,
        ),
    )
    assert isinstance(wrappers, OptimWrapperDict)
    assert isinstance(wrappers["generator"], AmpOptimWrapper)
    assert wrappers["discriminator"] is disc_wrapper
    params = wrappers["generator"].param_groups[0]["params"]
    assert params == list(gan.generator.parameters())


def test_a_dict_of_configs_needs_existing_submodules_and_wrapper_configs() -> None:
    with pytest.raises(ValueError, match=r"entry 'encoder'.*children are \['generator', "):
        build_optim_wrapper(GAN(), dict(encoder=dict(optimizer=dict(type="SGD", lr=0.1))))
    with pytest.raises(TypeError, match=r"`optim_wrapper\['generator'\]` must be a wrapper config"):
        build_optim_wrapper(GAN(), dict(generator=dict(lr=0.1)))


# --- bad input -------------------------------------------------------------------------


def test_an_unknown_optimizer_name_lists_the_closest_names() -> None:
    with pytest.raises(RegistryError, match=r"'SDG' is not a registered optimizer") as info:
        build_optim_wrapper(nn.Linear(1, 1), dict(optimizer=dict(type="SDG", lr=0.1)))
    assert "Closest registered names: 'SGD'" in str(info.value)
    with pytest.raises(RegistryError, match=r"Closest registered names: .*'AdamW'"):
        build_optim_wrapper(nn.Linear(1, 1), dict(optimizer=dict(type="adamw")))


def test_an_unknown_wrapper_type_lists_the_closest_names() -> None:
    with pytest.raises(
        RegistryError, match=r"(?s)'AmpOptimWraper' is not registered.*'AmpOptimWrapper'"
    ):
        build_optim_wrapper(
            nn.Linear(1, 1), dict(type="AmpOptimWraper", optimizer=dict(type="SGD", lr=0.1))
        )


@pytest.mark.parametrize(
    ("extra", "cause", "match"),
    [
        (dict(accumulative_counts=0), ValueError, "`accumulative_counts` must be an int >= 1"),
        (dict(accumulative_counts=-2), ValueError, "`accumulative_counts` must be an int >= 1"),
        (dict(clip_grad="norm"), TypeError, "`clip_grad` must be a dict or None"),
        (dict(clip_grad=dict(type="l1", max_norm=1)), ValueError, "must be 'norm' or 'value'"),
    ],
)
def test_bad_wrapper_arguments_fail_with_the_wrappers_message(
    extra: dict[str, Any], cause: type[Exception], match: str
) -> None:
    with pytest.raises(BuildError, match=match) as info:
        build_optim_wrapper(nn.Linear(1, 1), dict(optimizer=dict(type="SGD", lr=0.1), **extra))
    assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize(
    ("cfg", "error", "match"),
    [
        ([("optimizer", "SGD")], TypeError, r"`optim_wrapper` must be a dict \(config\)"),
        ({}, ValueError, r"`optim_wrapper` is an empty dict"),
    ],
)
def test_configs_of_the_wrong_shape_are_refused(
    cfg: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        build_optim_wrapper(nn.Linear(1, 1), cfg)


@pytest.mark.parametrize(
    ("cfg", "cause", "match"),
    [
        (dict(optimizer="SGD"), ValueError, r"needs an 'optimizer' dict with a 'type'"),
        (dict(type="OptimWrapper"), ValueError, r"needs an 'optimizer' dict with a 'type'"),
        (dict(optimizer=dict(lr=0.1)), ValueError, r"needs an 'optimizer' dict with a 'type'"),
        (dict(optimizer=dict(type="SGD", lr=0.1, params=[])), ValueError, r"must not set 'params'"),
        (
            dict(optimizer=dict(type=3, lr=0.1)),
            TypeError,
            r"`optim_wrapper.optimizer.type` must be",
        ),
    ],
)
def test_malformed_optimizer_configs_are_refused(
    cfg: Any, cause: type[Exception], match: str
) -> None:
    # The constructor is built from the registry, so its error arrives as a BuildError
    # that quotes it and chains it.
    with pytest.raises(BuildError, match=match) as info:
        build_optim_wrapper(nn.Linear(1, 1), cfg)
    assert isinstance(info.value.__cause__, cause)


def test_model_must_be_a_module() -> None:
    with pytest.raises(TypeError, match=r"`model` must be an nn.Module, got list"):
        build_optim_wrapper([], dict(optimizer=dict(type="SGD", lr=0.1)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("paramwise_cfg", "optimizer", "error", "match"),
    [
        ([("bias_lr_mult", 2)], SGD_CFG, TypeError, r"`paramwise_cfg` must be a dict or None"),
        (
            dict(bias_lr_mul=2.0),
            SGD_CFG,
            ValueError,
            r"unknown option 'bias_lr_mul'.*'bias_lr_mult'",
        ),
        (dict(custom_keys=["head"]), SGD_CFG, TypeError, r"`paramwise_cfg.custom_keys` must be"),
        (dict(custom_keys={"head": 0.1}), SGD_CFG, TypeError, r"must map str to dict"),
        (dict(norm_decay_mult=-1), SGD_CFG, ValueError, r"`paramwise_cfg.norm_decay_mult` must"),
        (
            dict(custom_keys={"head": dict(lr_mult="x")}),
            SGD_CFG,
            ValueError,
            r"custom_keys\['head'\].lr_mult` must be a number",
        ),
        (dict(bypass_duplicate=1), SGD_CFG, TypeError, r"`paramwise_cfg.bypass_duplicate` must"),
        (
            dict(norm_decay_mult=0.0),
            dict(type="SGD", lr=0.1),
            ValueError,
            r"norm_decay_mult multiplies the optimizer's weight_decay.*sets no 'weight_decay'",
        ),
        (
            dict(custom_keys={"head": dict(decay_mult=0.0)}),
            dict(type="SGD", lr=0.1),
            ValueError,
            r"custom_keys\['head'\].decay_mult multiplies the optimizer's weight_decay",
        ),
        (
            dict(bias_lr_mult=2.0),
            dict(type="Adam"),
            ValueError,
            r"bias_lr_mult multiplies the optimizer's lr.*sets no 'lr'",
        ),
    ],
)
def test_bad_paramwise_cfg_is_refused(
    paramwise_cfg: Any, optimizer: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DefaultOptimWrapperConstructor(dict(optimizer=optimizer), paramwise_cfg)
    with pytest.raises(BuildError, match=match) as info:  # the same through the builder
        build_optim_wrapper(Net(), dict(optimizer=optimizer, paramwise_cfg=paramwise_cfg))
    assert isinstance(info.value.__cause__, error)


def test_paramwise_cfg_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="`paramwise_cfg` is given twice"):
        DefaultOptimWrapperConstructor(
            dict(optimizer=SGD_CFG, paramwise_cfg=dict(bias_lr_mult=2.0)),
            paramwise_cfg=dict(bias_lr_mult=3.0),
        )


def test_deformable_conv_offsets_get_dcn_offset_lr_mult() -> None:
    class DeformConv2d(nn.Module):  # recognised by class name, as mmcv's is
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(2, 2, 1, 1))
            self.bias = nn.Parameter(torch.zeros(2))
            self.conv_offset = nn.Conv2d(2, 2, 1)

    model = nn.Sequential(OrderedDict(dcn=DeformConv2d(), head=nn.Conv2d(2, 2, 1)))
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=SGD_CFG,
            paramwise_cfg=dict(dcn_offset_lr_mult=0.1, bias_lr_mult=2.0, bias_decay_mult=0.0),
        ),
    )
    assert _lr_wd(wrapper, model) == {
        "dcn.weight": (0.1, 0.01),
        "dcn.bias": (0.2, 0.0),  # the deformable conv's own bias is an ordinary bias
        "dcn.conv_offset.weight": (0.01, 0.01),
        "dcn.conv_offset.bias": (0.01, 0.01),  # offsets: no bias_lr_mult, no bias_decay_mult
        "head.weight": (0.1, 0.01),
        "head.bias": (0.2, 0.0),
    }
