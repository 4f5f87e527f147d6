"""Functional weight initialisation: fill a module's ``weight`` and ``bias`` in place.

These are the building blocks of the initializer classes and are public for
``init_weights`` methods written by hand. Each function

* touches ``module.weight`` / ``module.bias`` only when the attribute exists and
  holds a tensor (a layer built with ``bias=False`` keeps ``bias=None`` untouched);
* calls the in-place ``torch.nn.init`` routine once per tensor under
  ``torch.no_grad()``, with no extra pass over the data, so it costs what a
  hand-written ``torch.nn.init`` loop costs;
* works for float16, bfloat16, float32 and float64 on any device: where torch has
  no kernel for a low-precision dtype, it fills a float32 copy and copies it back;
* does nothing to tensors on the ``meta`` device, which hold no data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any, cast

import torch
from torch import nn

__all__ = [
    "bias_init_with_prob",
    "caffe2_xavier_init",
    "constant_init",
    "kaiming_init",
    "normal_init",
    "trunc_normal_",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]

_DISTRIBUTIONS = ("normal", "uniform")
_MODES = ("fan_in", "fan_out")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _fill(tensor: torch.Tensor, fill: Callable[[torch.Tensor], object]) -> None:
    """Run the in-place ``fill`` on ``tensor``; float32 round trip where torch lacks a kernel."""
    if tensor.is_meta:
        return
    try:
        fill(tensor)
    except (RuntimeError, NotImplementedError) as exc:
        if tensor.dtype not in _LOW_PRECISION or "not implemented" not in str(exc):
            raise
        work = torch.empty_like(tensor, dtype=torch.float32)
        fill(work)
        tensor.copy_(work)


def _tensor_attr(module: nn.Module, name: str) -> torch.Tensor | None:
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) else None


def _fill_bias(module: nn.Module, bias: float) -> None:
    tensor = _tensor_attr(module, "bias")
    if tensor is not None and not tensor.is_meta:
        nn.init.constant_(tensor, bias)


def _require_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__})")


def _check_distribution(distribution: object) -> None:
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"`distribution` must be one of {_DISTRIBUTIONS}, got {distribution!r}")


def _check_kaiming(a: object, mode: object, nonlinearity: object) -> None:
    _require_real("a", a)
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}")
    try:
        nn.init.calculate_gain(cast(Any, nonlinearity), cast(float, a))
    except ValueError as exc:
        raise ValueError(
            f"`nonlinearity` {nonlinearity!r} is not one torch.nn.init.calculate_gain knows "
            f"({exc}); use e.g. 'relu', 'leaky_relu', 'tanh', 'linear' or 'selu'"
        ) from exc


def _check_fan(module: nn.Module, weight: torch.Tensor, method: str) -> None:
    if weight.dim() < 2:
        raise ValueError(
            f"{method} needs a weight with at least 2 dimensions to compute its fans, but "
            f"{type(module).__name__}.weight has shape {tuple(weight.shape)}; initialise this "
            "layer with constant_init or normal_init instead"
        )


@torch.no_grad()
def constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    """Fill ``module.weight`` with ``val`` and ``module.bias`` with ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        val: The value for every weight element.
        bias: The value for every bias element.

    Example:
        >>> layer = nn.BatchNorm2d(8)
        >>> constant_init(layer, 1)
    """
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        _fill(weight, lambda t: nn.init.constant_(t, val))
    _fill_bias(module, bias)


@torch.no_grad()
def xavier_init(
    module: nn.Module, gain: float = 1, bias: float = 0, distribution: str = "normal"
) -> None:
    """Xavier (Glorot) initialisation of ``module.weight``; ``module.bias`` set to ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        gain: Scaling factor of the distribution.
        bias: The value for every bias element.
        distribution: ``'normal'`` or ``'uniform'``.

    Raises:
        ValueError: ``distribution`` is not one of the two, or the weight has fewer than
            two dimensions.
    """
    _check_distribution(distribution)
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        _check_fan(module, weight, "xavier_init")
        if distribution == "uniform":
            _fill(weight, lambda t: nn.init.xavier_uniform_(t, gain=gain))
        else:
            _fill(weight, lambda t: nn.init.xavier_normal_(t, gain=gain))
    _fill_bias(module, bias)


@torch.no_grad()
def normal_init(module: nn.Module, mean: float = 0, std: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from N(``mean``, ``std``²); ``module.bias`` set to ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        mean: Mean of the normal distribution.
        std: Standard deviation of the normal distribution (>= 0).
        bias: The value for every bias element.
    """
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        _fill(weight, lambda t: nn.init.normal_(t, mean, std))
    _fill_bias(module, bias)


@torch.no_grad()
def trunc_normal_(
    tensor: torch.Tensor, mean: float = 0, std: float = 1, a: float = -2, b: float = 2
) -> torch.Tensor:
    """Fill ``tensor`` from N(``mean``, ``std``²) truncated to [``a``, ``b``], in place.

    Args:
        tensor: The tensor to fill.
        mean: Mean of the normal distribution before truncation.
        std: Standard deviation of the normal distribution before truncation.
        a: Lower bound of the values (absolute, not in units of ``std``).
        b: Upper bound of the values.

    Returns:
        ``tensor`` itself.

    Raises:
        ValueError: ``a`` is not below ``b``.
    """
    if not a < b:
        raise ValueError(f"`a` must be below `b`, got a={a!r} and b={b!r}")
    _fill(tensor, lambda t: nn.init.trunc_normal_(t, mean, std, a, b))
    return tensor


@torch.no_grad()
def trunc_normal_init(
    module: nn.Module,
    mean: float = 0,
    std: float = 1,
    a: float = -2,
    b: float = 2,
    bias: float = 0,
) -> None:
    """Truncated-normal initialisation of ``module.weight``; ``module.bias`` set to ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        mean: Mean of the normal distribution before truncation.
        std: Standard deviation of the normal distribution before truncation.
        a: Lower bound of the weight values.
        b: Upper bound of the weight values.
        bias: The value for every bias element.
    """
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        trunc_normal_(weight, mean, std, a, b)
    _fill_bias(module, bias)


@torch.no_grad()
def uniform_init(module: nn.Module, a: float = 0, b: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from U(``a``, ``b``); ``module.bias`` set to ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        a: Lower bound of the distribution.
        b: Upper bound of the distribution.
        bias: The value for every bias element.
    """
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        _fill(weight, lambda t: nn.init.uniform_(t, a, b))
    _fill_bias(module, bias)


@torch.no_grad()
def kaiming_init(
    module: nn.Module,
    a: float = 0,
    mode: str = "fan_out",
    nonlinearity: str = "relu",
    bias: float = 0,
    distribution: str = "normal",
) -> None:
    """Kaiming (He) initialisation of ``module.weight``; ``module.bias`` set to ``bias``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        a: Negative slope of the rectifier after this layer (used by ``'leaky_relu'``).
        mode: ``'fan_out'`` keeps the variance of the backward pass, ``'fan_in'`` that
            of the forward pass.
        nonlinearity: The nonlinearity after this layer, as
            ``torch.nn.init.calculate_gain`` names it.
        bias: The value for every bias element.
        distribution: ``'normal'`` or ``'uniform'``.

    Raises:
        ValueError: ``mode``, ``nonlinearity`` or ``distribution`` is not a known value,
            or the weight has fewer than two dimensions.

    Example:
        >>> conv = nn.Conv2d(3, 16, 3)
        >>> kaiming_init(conv, mode="fan_out", nonlinearity="relu")
    """
    _check_kaiming(a, mode, nonlinearity)
    _check_distribution(distribution)
    weight = _tensor_attr(module, "weight")
    if weight is not None:
        _check_fan(module, weight, "kaiming_init")
        fan_mode = cast(Any, mode)
        act = cast(Any, nonlinearity)
        if distribution == "uniform":
            _fill(weight, lambda t: nn.init.kaiming_uniform_(t, a, fan_mode, act))
        else:
            _fill(weight, lambda t: nn.init.kaiming_normal_(t, a, fan_mode, act))
    _fill_bias(module, bias)


def caffe2_xavier_init(module: nn.Module, bias: float = 0) -> None:
    """Caffe2's "XavierFill": Kaiming uniform with ``a=1``, ``fan_in``, ``leaky_relu``.

    Args:
        module: The module whose own ``weight`` and ``bias`` are filled.
        bias: The value for every bias element.
    """
    kaiming_init(
        module, a=1, mode="fan_in", nonlinearity="leaky_relu", bias=bias, distribution="uniform"
    )


def bias_init_with_prob(prior_prob: float) -> float:
    """The bias that makes a sigmoid output ``prior_prob`` for a zero input.

    Used for classification heads trained with focal loss, where every anchor should
    start out as "background" with probability ``1 - prior_prob``.

    Args:
        prior_prob: The initial positive probability, strictly between 0 and 1.

    Returns:
        ``-log((1 - prior_prob) / prior_prob)``.

    Raises:
        ValueError: ``prior_prob`` is not a number in the open interval (0, 1).

    Example:
        >>> round(bias_init_with_prob(0.01), 4)
        -4.5951
    """
    if isinstance(prior_prob, bool) or not isinstance(prior_prob, Real) or not 0 < prior_prob < 1:
        raise ValueError(
            f"`prior_prob` must be a probability in the open interval (0, 1), got {prior_prob!r}"
        )
    p = float(prior_prob)
    return float(-math.log((1 - p) / p))
