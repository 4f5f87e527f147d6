"""NonFiniteGuard: the check before backward, its messages, and the one-transfer path."""

from __future__ import annotations

import pytest
import torch

from camshaft.runner.optim import NonFiniteGuard, NonFiniteLossError, OptimWrapper


class _Terms:
    """Stands in for a BaseModel: remembers the log_vars of one total."""

    def __init__(self, total: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        self.total, self.terms = total, terms

    def last_loss_terms(self, loss: torch.Tensor) -> dict[str, torch.Tensor] | None:
        return self.terms if loss is self.total else None


def test_finite_loss_passes_and_nan_raises_naming_every_term() -> None:
    total = torch.tensor(float("nan"))
    source = _Terms(
        total, {"loss": total, "loss_cls": torch.tensor(float("nan")), "acc": torch.tensor(0.5)}
    )
    guard = NonFiniteGuard("error", terms_source=source, position=lambda: "iteration 7 (epoch 2)")
    assert guard(torch.tensor(0.25)) is True
    with pytest.raises(
        NonFiniteLossError, match=r"iteration 7 \(epoch 2\): loss=nan, loss_cls=nan, acc=0\.5"
    ):
        guard(total)


def test_skip_policy_counts_and_reports() -> None:
    seen: list[str] = []
    guard = NonFiniteGuard("skip", on_skip=seen.append)
    assert guard(torch.tensor(float("inf"))) is False
    assert guard.skipped == 1
    assert seen == ["non-finite loss at this step: loss=inf; step skipped (1 so far)"]


def test_one_transfer_path_replaces_terms_with_host_copies() -> None:
    terms = {"loss": torch.tensor(1.5), "loss_aux": torch.tensor(0.5)}
    guard = NonFiniteGuard("error")
    assert guard._finite_terms(terms) is True
    assert [float(v) for v in terms.values()] == [1.5, 0.5]
    assert all(v.device.type == "cpu" and v.dim() == 0 for v in terms.values())
    terms["loss"] = torch.tensor(float("nan"))
    assert guard._finite_terms(terms) is False


def test_wrapper_with_skip_guard_leaves_weights_untouched() -> None:
    model = torch.nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    wrapper.loss_guard = NonFiniteGuard("skip")
    before = model.weight.detach().clone()
    wrapper.update_params(model(torch.ones(1, 2)).sum() * float("nan"))
    assert torch.equal(model.weight, before)
    assert model.weight.grad is None or not model.weight.grad.any()


def test_create_reads_the_config_value() -> None:
    assert NonFiniteGuard.create("off") is None
    assert isinstance(NonFiniteGuard.create("skip"), NonFiniteGuard)
    with pytest.raises(
        ValueError, match="`nonfinite` must be one of 'error', 'skip', 'off', got 'warn'"
    ):
        NonFiniteGuard.create("warn")
    with pytest.raises(ValueError, match="`policy` must be 'error' or 'skip', got 'off'"):
        NonFiniteGuard("off")
