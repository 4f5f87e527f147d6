"""get_rng_state / set_rng_state: exact restore of python, numpy, torch (and CUDA) draws."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from camshaft.runner.checkpoint import (
    check_plain_checkpoint,
    get_rng_state,
    save_checkpoint,
    set_rng_state,
)


def _draws() -> tuple[object, ...]:
    return (
        random.random(),
        random.gauss(0.0, 1.0),  # leaves a cached gauss_next behind
        random.getrandbits(64),
        np.random.rand(3).tolist(),
        float(np.random.randn()),  # leaves a cached gaussian behind
        torch.rand(4).tolist(),
        torch.randint(0, 1000, (3,)).tolist(),
    )


def _scramble() -> None:
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)


def test_restore_replays_the_same_draws() -> None:
    _draws()  # mid-stream, with cached gaussians
    state = get_rng_state()
    expected = _draws()
    _scramble()
    set_rng_state(state)
    assert _draws() == expected


def test_state_survives_torch_save_and_weights_only_load() -> None:
    random.gauss(0.0, 1.0)
    np.random.randn()
    state = get_rng_state()
    check_plain_checkpoint({"rng": state})
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    expected = _draws()
    _scramble()
    set_rng_state(loaded)
    assert _draws() == expected


def test_state_in_a_saved_checkpoint_restores_exactly(tmp_path: Path) -> None:
    from camshaft.init import read_checkpoint

    state = get_rng_state()
    path = save_checkpoint({"meta": {"epoch": 1}, "rng": state}, tmp_path / "epoch_1.pth")
    expected = _draws()
    _scramble()
    set_rng_state(read_checkpoint(path)["rng"])
    assert _draws() == expected


def test_state_holds_only_plain_types_and_tensors() -> None:
    state = get_rng_state()
    assert set(state) <= {"python", "numpy", "torch", "cuda"}
    # Generator words are int64 tensors: one pickled object each, not hundreds of ints.
    assert state["python"]["state"].dtype == torch.int64
    assert state["python"]["state"].shape == (625,)
    assert state["numpy"]["state"].dtype == torch.int64
    assert state["numpy"]["state"].shape == (624,)
    assert state["torch"].dtype == torch.uint8
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        assert "cuda" not in state


def test_states_saved_as_lists_by_older_versions_still_restore() -> None:
    state = get_rng_state()
    expected = (random.random(), np.random.rand())
    state["python"]["state"] = state["python"]["state"].tolist()
    state["numpy"]["state"] = state["numpy"]["state"].tolist()
    set_rng_state(state)
    assert (random.random(), np.random.rand()) == expected


def test_a_partial_state_restores_only_what_it_holds() -> None:
    state = get_rng_state()
    expected = random.random()
    np.random.seed(7)
    numpy_expected = np.random.rand()
    np.random.seed(7)
    set_rng_state({"python": state["python"]})
    assert random.random() == expected
    assert np.random.rand() == numpy_expected


def test_restore_does_not_alias_the_saved_tensor() -> None:
    state = get_rng_state()
    before = state["torch"].clone()
    set_rng_state(state)
    torch.rand(10)
    assert torch.equal(state["torch"], before)


@pytest.mark.parametrize("bad", [None, [1, 2], "state"])
def test_state_that_is_not_a_mapping_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="`state` must be the dict get_rng_state"):
        set_rng_state(bad)  # type: ignore[arg-type]


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['jax'\]"):
        set_rng_state({"jax": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"python": {"version": 3}},
        {"numpy": {"bit_generator": "MT19937", "state": [1, 2]}},
        {"torch": [1, 2, 3]},
        {"torch": torch.zeros(3, dtype=torch.uint8)},
    ],
)
def test_malformed_entries_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a valid RNG state"):
        set_rng_state(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_states_without_cuda_warn_and_the_rest_restores() -> None:
    state = get_rng_state()
    expected = torch.rand(2)
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    with pytest.warns(UserWarning, match="CUDA generators were not restored"):
        set_rng_state(state)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.gpu
def test_cuda_draws_are_restored() -> None:
    torch.cuda.init()
    torch.rand(3, device="cuda")
    state = get_rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(5, device="cuda")
    torch.cuda.manual_seed_all(99)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    set_rng_state(torch.load(buffer, weights_only=True))
    assert torch.equal(torch.rand(5, device="cuda"), expected)
