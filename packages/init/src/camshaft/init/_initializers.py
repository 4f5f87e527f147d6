"""The built-in initializers, registered in ``WEIGHT_INITIALIZERS``.

Each class wraps one function of ``_functional`` and is registered under a short and
a long name (``"Kaiming"`` and ``"KaimingInit"``), as MMEngine's configs spell them.
Arguments are validated when the initializer is built, so a bad ``init_cfg`` fails
before any weight is written. See :class:`~camshaft.init.BaseInit` for ``bias``,
``bias_prob`` and ``layer``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from camshaft.init._base_init import BaseInit
from camshaft.init._functional import (
    _check_distribution,
    _check_kaiming,
    _require_real,
    constant_init,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from camshaft.init._registry import WEIGHT_INITIALIZERS

__all__ = [
    "Caffe2XavierInit",
    "ConstantInit",
    "KaimingInit",
    "NormalInit",
    "TruncNormalInit",
    "UniformInit",
    "XavierInit",
]


@WEIGHT_INITIALIZERS.register_module(name=["Constant", "ConstantInit"])
class ConstantInit(BaseInit):
    """Fill weights with ``val`` and biases with ``bias``.

    Args:
        val: The value for every weight element.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.

    Example:
        >>> ConstantInit(val=1, layer="BatchNorm2d")(nn.Sequential(nn.BatchNorm2d(4)))
    """

    def __init__(self, val: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _require_real("val", val)
        self.val = val

    def init_module(self, module: nn.Module) -> None:
        """Fill ``module``'s own weight with ``val`` and its bias with ``bias``."""
        constant_init(module, self.val, self.bias)
        self._report(module)

    def describe(self) -> str:
        """The init log line, e.g. ``ConstantInit: val=1, bias=0``."""
        return f"{type(self).__name__}: val={self.val}, bias={self.bias}"


@WEIGHT_INITIALIZERS.register_module(name=["Xavier", "XavierInit"])
class XavierInit(BaseInit):
    """Xavier (Glorot) initialisation, see :func:`~camshaft.init.xavier_init`.

    Args:
        gain: Scaling factor of the distribution.
        distribution: ``'normal'`` or ``'uniform'``.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.
    """

    def __init__(self, gain: float = 1, distribution: str = "normal", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _require_real("gain", gain)
        _check_distribution(distribution)
        self.gain = gain
        self.distribution = distribution

    def init_module(self, module: nn.Module) -> None:
        """Xavier-fill ``module``'s own weight; its bias gets ``bias``."""
        xavier_init(module, self.gain, self.bias, self.distribution)
        self._report(module)

    def describe(self) -> str:
        """The init log line, e.g. ``XavierInit: gain=1, distribution=normal, bias=0``."""
        return (
            f"{type(self).__name__}: gain={self.gain}, "
            f"distribution={self.distribution}, bias={self.bias}"
        )


@WEIGHT_INITIALIZERS.register_module(name=["Normal", "NormalInit"])
class NormalInit(BaseInit):
    """Draw weights from N(``mean``, ``std``²).

    Args:
        mean: Mean of the normal distribution.
        std: Standard deviation of the normal distribution.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.
    """

    def __init__(self, mean: float = 0, std: float = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _require_real("mean", mean)
        _require_real("std", std)
        if std < 0:
            raise ValueError(f"`std` must be >= 0, got {std!r}")
        self.mean = mean
        self.std = std

    def init_module(self, module: nn.Module) -> None:
        """Draw ``module``'s own weight from the normal; its bias gets ``bias``."""
        normal_init(module, self.mean, self.std, self.bias)
        self._report(module)

    def describe(self) -> str:
        """The init log line, e.g. ``NormalInit: mean=0, std=1, bias=0``."""
        return f"{type(self).__name__}: mean={self.mean}, std={self.std}, bias={self.bias}"


@WEIGHT_INITIALIZERS.register_module(name=["TruncNormal", "TruncNormalInit"])
class TruncNormalInit(BaseInit):
    """Draw weights from N(``mean``, ``std``²) truncated to [``a``, ``b``].

    Args:
        mean: Mean of the normal distribution before truncation.
        std: Standard deviation of the normal distribution before truncation.
        a: Lower bound of the weight values.
        b: Upper bound of the weight values.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.
    """

    def __init__(
        self, mean: float = 0, std: float = 1, a: float = -2, b: float = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("mean", mean), ("std", std), ("a", a), ("b", b)):
            _require_real(name, value)
        if std < 0:
            raise ValueError(f"`std` must be >= 0, got {std!r}")
        if not a < b:
            raise ValueError(f"`a` must be below `b`, got a={a!r} and b={b!r}")
        self.mean = mean
        self.std = std
        self.a = a
        self.b = b

    def init_module(self, module: nn.Module) -> None:
        """Draw ``module``'s own weight from the truncated normal; its bias gets ``bias``."""
        trunc_normal_init(module, self.mean, self.std, self.a, self.b, self.bias)
        self._report(module)

    def describe(self) -> str:
        """The init log line, e.g. ``TruncNormalInit: a=-2, b=2, mean=0, std=1, bias=0``."""
        return (
            f"{type(self).__name__}: a={self.a}, b={self.b}, "
            f"mean={self.mean}, std={self.std}, bias={self.bias}"
        )


@WEIGHT_INITIALIZERS.register_module(name=["Uniform", "UniformInit"])
class UniformInit(BaseInit):
    """Draw weights from U(``a``, ``b``).

    Args:
        a: Lower bound of the distribution.
        b: Upper bound of the distribution.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.
    """

    def __init__(self, a: float = 0, b: float = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _require_real("a", a)
        _require_real("b", b)
        if a > b:
            raise ValueError(f"`a` must not exceed `b`, got a={a!r} and b={b!r}")
        self.a = a
        self.b = b

    def init_module(self, module: nn.Module) -> None:
        """Draw ``module``'s own weight from the uniform; its bias gets ``bias``."""
        uniform_init(module, self.a, self.b, self.bias)
        self._report(module)

    def describe(self) -> str:
        """The init log line, e.g. ``UniformInit: a=0, b=1, bias=0``."""
        return f"{type(self).__name__}: a={self.a}, b={self.b}, bias={self.bias}"


@WEIGHT_INITIALIZERS.register_module(name=["Kaiming", "KaimingInit"])
class KaimingInit(BaseInit):
    """Kaiming (He) initialisation, see :func:`~camshaft.init.kaiming_init`.

    Args:
        a: Negative slope of the rectifier after the layer (for ``'leaky_relu'``).
        mode: ``'fan_out'`` or ``'fan_in'``.
        nonlinearity: The nonlinearity after the layer, as
            ``torch.nn.init.calculate_gain`` names it.
        distribution: ``'normal'`` or ``'uniform'``.
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.

    Example:
        >>> init = KaimingInit(layer="Conv2d")
        >>> str(init)
        'KaimingInit: a=0, mode=fan_out, nonlinearity=relu, distribution =normal, bias=0'
    """

    def __init__(
        self,
        a: float = 0,
        mode: str = "fan_out",
        nonlinearity: str = "relu",
        distribution: str = "normal",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_kaiming(a, mode, nonlinearity)
        _check_distribution(distribution)
        self.a = a
        self.mode = mode
        self.nonlinearity = nonlinearity
        self.distribution = distribution

    def init_module(self, module: nn.Module) -> None:
        """Kaiming-fill ``module``'s own weight; its bias gets ``bias``."""
        kaiming_init(module, self.a, self.mode, self.nonlinearity, self.bias, self.distribution)
        self._report(module)

    def describe(self) -> str:
        """The init log line (``distribution =`` with a space, as MMEngine prints it)."""
        return (
            f"{type(self).__name__}: a={self.a}, mode={self.mode}, "
            f"nonlinearity={self.nonlinearity}, distribution ={self.distribution}, "
            f"bias={self.bias}"
        )


@WEIGHT_INITIALIZERS.register_module(name=["Caffe2Xavier", "Caffe2XavierInit"])
class Caffe2XavierInit(KaimingInit):
    """Caffe2's "XavierFill": Kaiming uniform with ``a=1``, ``fan_in``, ``leaky_relu``.

    Args:
        **kwargs: ``bias``, ``bias_prob``, ``layer``, as for :class:`BaseInit`.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            a=1, mode="fan_in", nonlinearity="leaky_relu", distribution="uniform", **kwargs
        )
