"""Weight averaging: a frozen shadow copy of a model that follows it by a running average.

An averaged model (EMA, SWA) is evaluated in place of the trained one because its
weights are smoother. :class:`BaseAveragedModel` holds the bookkeeping every average
shares; a subclass supplies only the update rule, ``avg_func``.

What it promises:

* ``self.module`` is a deep copy of the source model with ``requires_grad`` off, so
  later changes to the source reach the average only through
  :meth:`~BaseAveragedModel.update_parameters`.
* ``steps`` counts calls to ``update_parameters`` and is a persistent buffer: it is
  saved and restored with ``state_dict`` (keys ``steps`` and ``module.*``, the same as
  MMEngine's, so checkpoints move between the two).
* The first call copies the source; after that, every ``interval``-th call averages
  floating-point tensors and copies the rest (integer counters). Buffers are averaged
  only with ``update_buffers=True``; otherwise they are copied on every call.
* Updates run in place under ``torch.no_grad()``. The built-in rules update each
  (device, dtype) group with one ``torch._foreach_*`` call and never read a device
  tensor back to the host, so no update stalls the GPU. A subclass that overrides
  only ``avg_func`` gets a per-tensor loop instead.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from typing import Any, ClassVar

import torch
from torch import nn

from camshaft.model._registry import MODELS

__all__ = [
    "BaseAveragedModel",
    "ExponentialMovingAverage",
    "MomentumAnnealingEMA",
    "StochasticWeightAverage",
]

_Group = tuple[list[torch.Tensor], list[torch.Tensor]]


class BaseAveragedModel(nn.Module):
    """A copy of a model whose weights are a running average of the model's.

    Subclasses define :meth:`avg_func`. Built-in subclasses also define
    ``_avg_foreach``, the same rule applied to a list of tensors at once.

    Args:
        model: The model to average. It is deep-copied; the copy is ``self.module``.
        interval: Average every ``interval`` calls of :meth:`update_parameters`.
            Defaults to 1.
        device: Where the copy lives (e.g. ``'cpu'`` to spare GPU memory). ``None``
            keeps it beside the model. Defaults to None.
        update_buffers: Average buffers too (BatchNorm running statistics). If
            False, buffers are copied from the model on every call. Defaults to False.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, an argument has the wrong type,
            or the subclass does not define ``avg_func``.
        ValueError: ``interval`` is below 1 or ``device`` names no device.

    Example:
        >>> import torch
        >>> class Halfway(BaseAveragedModel):
        ...     def avg_func(self, averaged_param, source_param, steps):
        ...         averaged_param.lerp_(source_param, 0.5)
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> _ = model.weight.data.fill_(0.0)
        >>> averaged = Halfway(model)
        >>> averaged.update_parameters(model)  # the first call copies
        >>> _ = model.weight.data.fill_(2.0)
        >>> averaged.update_parameters(model)
        >>> float(averaged.module.weight)
        1.0
    """

    steps: torch.Tensor
    _uses_foreach: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The vectorised rule is used only where it matches the per-tensor one: a
        # subclass that overrides ``avg_func`` alone falls back to the per-tensor loop.
        if "_avg_foreach" in cls.__dict__:
            cls._uses_foreach = True
        elif "avg_func" in cls.__dict__:
            cls._uses_foreach = False

    def __init__(
        self,
        model: nn.Module,
        interval: int = 1,
        device: torch.device | str | int | None = None,
        update_buffers: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if type(self).avg_func is BaseAveragedModel.avg_func:
            raise TypeError(f"{name} must define `avg_func`; BaseAveragedModel is abstract")
        _check_module(name, model)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise _bad_interval(name, interval)
        if not isinstance(update_buffers, bool):
            raise TypeError(
                f"{name}: `update_buffers` must be a bool, got {type(update_buffers).__name__}"
            )
        target = _as_device(name, device)
        module = copy.deepcopy(model).requires_grad_(False)
        if target is not None:
            module = module.to(target)
        self.module = module
        self.interval = interval
        self.update_buffers = update_buffers
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long, device=target))
        # Host-side mirror of ``steps``: deciding whether to average never syncs a GPU.
        self._step_count = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the averaged copy: ``self.module(*args, **kwargs)``."""
        return self.module(*args, **kwargs)

    def avg_func(
        self,
        averaged_param: torch.Tensor,
        source_param: torch.Tensor,
        steps: torch.Tensor | int,
    ) -> None:
        """Update ``averaged_param`` in place towards ``source_param``.

        Args:
            averaged_param: A floating-point tensor of ``self.module``.
            source_param: The matching tensor of the source model, already on
                ``averaged_param``'s device and in its dtype.
            steps: The number of :meth:`update_parameters` calls before this one.
        """
        raise NotImplementedError(f"{type(self).__name__} must define `avg_func`")

    def _avg_foreach(
        self, averaged: list[torch.Tensor], source: list[torch.Tensor], step: int
    ) -> None:
        """:meth:`avg_func` on lists of tensors sharing one device and dtype."""
        for averaged_param, source_param in zip(averaged, source, strict=True):
            self.avg_func(averaged_param, source_param, self.steps)

    def update_parameters(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average.

        Args:
            model: The model being trained; its parameter (and buffer) names must
                match the ones this average was built from.

        Raises:
            TypeError: ``model`` is not an ``nn.Module``.
            ValueError: ``model`` has parameters or buffers the average lacks, or
                lacks some it has.

        Example:
            >>> import torch
            >>> model = torch.nn.Linear(2, 2)
            >>> ema = ExponentialMovingAverage(model, momentum=0.1)
            >>> ema.update_parameters(model)
            >>> int(ema.steps)
            1
        """
        name = type(self).__name__
        _check_module(name, model)
        step = self._step_count
        with torch.no_grad():
            if step % self.interval == 0:
                pairs = _pairs(name, self.module, model, "parameters")
                if self.update_buffers:
                    pairs += _pairs(name, self.module, model, "buffers")
                if step == 0:
                    _copy(pairs)
                else:
                    self._average(pairs, step)
            if not self.update_buffers:
                _copy(_pairs(name, self.module, model, "buffers"))
        self.steps.add_(1)
        self._step_count = step + 1

    def _average(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], step: int) -> None:
        """Average floating-point pairs with the subclass rule, copy the others."""
        groups: dict[tuple[torch.device, torch.dtype], _Group] = {}
        others: list[tuple[torch.Tensor, torch.Tensor]] = []
        for averaged, source in pairs:
            if not averaged.is_floating_point():
                others.append((averaged, source))
                continue
            source = source.to(device=averaged.device, dtype=averaged.dtype)
            group = groups.setdefault((averaged.device, averaged.dtype), ([], []))
            group[0].append(averaged)
            group[1].append(source)
        for averaged_list, source_list in groups.values():
            if self._uses_foreach:
                self._avg_foreach(averaged_list, source_list, step)
            else:
                BaseAveragedModel._avg_foreach(self, averaged_list, source_list, step)
        _copy(others)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._step_count = int(self.steps)


@MODELS.register_module()
class ExponentialMovingAverage(BaseAveragedModel):
    """Exponential moving average: ``avg = (1 - momentum) * avg + momentum * source``.

    ``momentum`` weighs the *new* value (MMEngine's convention); it is
    ``1 - decay`` of ``torch.optim.swa_utils`` and timm, so ``decay=0.9998`` is
    ``momentum=0.0002``.

    Args:
        model: The model to average.
        momentum: The weight of the source model in each update, in (0, 1).
            Defaults to 0.0002.
        interval: Average every ``interval`` calls. Defaults to 1.
        device: Where the copy lives; ``None`` keeps it beside the model.
        update_buffers: Average buffers too, instead of copying them.

    Raises:
        TypeError: ``momentum`` is not a real number (or see
            :class:`BaseAveragedModel`).
        ValueError: ``momentum`` is not strictly between 0 and 1.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> _ = model.weight.data.fill_(0.0)
        >>> ema = ExponentialMovingAverage(model, momentum=0.25)
        >>> ema.update_parameters(model)  # the first call copies
        >>> _ = model.weight.data.fill_(4.0)
        >>> ema.update_parameters(model)  # moves a quarter of the way
        >>> float(ema.module.weight)
        1.0
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        interval: int = 1,
        device: torch.device | str | int | None = None,
        update_buffers: bool = False,
    ) -> None:
        checked = _check_momentum(type(self).__name__, momentum)
        super().__init__(model, interval, device, update_buffers)
        self.momentum = checked

    def _momentum_at(self, step: int) -> float:
        """The weight of the source model in the update made at ``step``."""
        return self.momentum

    def avg_func(
        self,
        averaged_param: torch.Tensor,
        source_param: torch.Tensor,
        steps: torch.Tensor | int,
    ) -> None:
        """Move ``averaged_param`` a ``momentum`` fraction of the way to ``source_param``."""
        averaged_param.lerp_(source_param, self._momentum_at(int(steps)))

    def _avg_foreach(
        self, averaged: list[torch.Tensor], source: list[torch.Tensor], step: int
    ) -> None:
        torch._foreach_lerp_(averaged, source, self._momentum_at(step))


@MODELS.register_module()
class MomentumAnnealingEMA(ExponentialMovingAverage):
    """An EMA that follows the model closely at first: ``max(momentum, gamma / (gamma + steps))``.

    Early on the average is mostly the latest weights (``gamma / (gamma + steps)``
    is near 1); the weight of new values then decays towards ``momentum``, its floor.

    Args:
        model: The model to average.
        momentum: The smallest weight of the source model, in (0, 1).
            Defaults to 0.0002.
        gamma: How slowly the weight anneals; larger keeps it high for longer.
            Must be positive. Defaults to 100.
        interval: Average every ``interval`` calls. Defaults to 1.
        device: Where the copy lives; ``None`` keeps it beside the model.
        update_buffers: Average buffers too, instead of copying them.

    Raises:
        TypeError: ``gamma`` or ``momentum`` is not a real number.
        ValueError: ``gamma`` is not positive, or ``momentum`` not in (0, 1).

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> _ = model.weight.data.fill_(0.0)
        >>> ema = MomentumAnnealingEMA(model, momentum=0.01, gamma=1)
        >>> ema.update_parameters(model)  # the first call copies
        >>> _ = model.weight.data.fill_(4.0)
        >>> ema.update_parameters(model)  # steps=1: max(0.01, 1 / (1 + 1)) = 0.5
        >>> float(ema.module.weight)
        2.0
    """

    gamma: float

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        gamma: float = 100,
        interval: int = 1,
        device: torch.device | str | int | None = None,
        update_buffers: bool = False,
    ) -> None:
        name = type(self).__name__
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
            raise TypeError(f"{name}: `gamma` must be a positive number, got {gamma!r}")
        if not float(gamma) > 0:
            raise ValueError(f"{name}: `gamma` must be a positive number, got {gamma!r}")
        super().__init__(model, momentum, interval, device, update_buffers)
        self.gamma = float(gamma)

    def _momentum_at(self, step: int) -> float:
        return max(self.momentum, self.gamma / (self.gamma + step))


@MODELS.register_module()
class StochasticWeightAverage(BaseAveragedModel):
    """Stochastic weight averaging: the arithmetic mean of every averaged snapshot.

    The snapshots are the weights at the first call and at every ``interval``-th
    call after it; after ``k`` of them each weight is their plain mean.

    Args:
        model: The model to average.
        interval: Take a snapshot every ``interval`` calls. Defaults to 1.
        device: Where the copy lives; ``None`` keeps it beside the model.
        update_buffers: Average buffers too, instead of copying them.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> swa = StochasticWeightAverage(model)
        >>> for value in (1.0, 2.0, 6.0):
        ...     _ = model.weight.data.fill_(value)
        ...     swa.update_parameters(model)
        >>> float(swa.module.weight)
        3.0
    """

    def avg_func(
        self,
        averaged_param: torch.Tensor,
        source_param: torch.Tensor,
        steps: torch.Tensor | int,
    ) -> None:
        """Fold ``source_param`` into the mean of the snapshots taken so far."""
        averaged_param.lerp_(source_param, 1.0 / (int(steps) // self.interval + 1))

    def _avg_foreach(
        self, averaged: list[torch.Tensor], source: list[torch.Tensor], step: int
    ) -> None:
        torch._foreach_lerp_(averaged, source, 1.0 / (step // self.interval + 1))


def _check_module(owner: str, model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{owner}: `model` must be a torch.nn.Module, got {type(model).__name__}")


def _bad_interval(owner: str, interval: object) -> Exception:
    message = f"{owner}: `interval` must be an int >= 1, got {interval!r}"
    if isinstance(interval, int) and not isinstance(interval, bool):
        return ValueError(message)
    return TypeError(message)


def _as_device(owner: str, device: object) -> torch.device | None:
    if device is None or isinstance(device, torch.device):
        return device
    if isinstance(device, bool) or not isinstance(device, str | int):
        raise TypeError(
            f"{owner}: `device` must be a torch.device, str, int or None, got {device!r}"
        )
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{owner}: `device` names no device: {device!r} ({error})") from None


def _check_momentum(owner: str, momentum: object) -> float:
    hint = (
        "HINT: `momentum` is the weight of the new value, "
        "avg = (1 - momentum) * avg + momentum * source, i.e. 1 - the `decay` of "
        "torch.optim.swa_utils / timm (decay=0.9998 is momentum=0.0002)."
    )
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"{owner}: `momentum` must be a float in (0, 1), got {momentum!r}")
    value = float(momentum)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{owner}: `momentum` must be in (0, 1), got {momentum!r}. {hint}")
    if value > 0.5:
        warnings.warn(
            f"{owner}: `momentum`={momentum!r} makes the average follow the model "
            f"closely; it is usually small. {hint}",
            UserWarning,
            stacklevel=3,
        )
    return value


def _pairs(
    owner: str, averaged: nn.Module, source: nn.Module, kind: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Match ``averaged``'s parameters (or buffers) with ``source``'s, by name."""
    mine: dict[str, torch.Tensor]
    theirs: dict[str, torch.Tensor]
    if kind == "parameters":
        mine = dict(averaged.named_parameters())
        theirs = dict(source.named_parameters())
    else:
        mine = dict(averaged.named_buffers())
        theirs = dict(source.named_buffers())
    if mine.keys() != theirs.keys():
        missing = sorted(mine.keys() - theirs.keys())
        extra = sorted(theirs.keys() - mine.keys())
        raise ValueError(
            f"{owner}.update_parameters: `model` does not match the averaged model's "
            f"{kind}: missing {missing[:5]}, unexpected {extra[:5]}. Pass the model the "
            "average was built from (unwrapped, e.g. `model.module` of a DDP wrapper)."
        )
    return [(tensor, theirs[key]) for key, tensor in mine.items()]


def _copy(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for averaged, source in pairs:
        averaged.copy_(source)
