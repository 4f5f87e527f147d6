"""Capture and restore every random number generator a training run draws from.

``get_rng_state()`` returns a dict of plain Python types and tensors only, so it goes
into a checkpoint and comes back through ``torch.load(weights_only=True)``:

* ``'python'``: ``random.getstate()`` as ``{'version', 'state' (int64 tensor),
  'gauss_next'}``;
* ``'numpy'``: numpy's legacy global generator (``np.random.get_state()``) as
  ``{'bit_generator', 'state' (int64 tensor), 'pos', 'has_gauss', 'cached_gaussian'}``;
* ``'torch'``: ``torch.get_rng_state()`` (a CPU ``uint8`` tensor);
* ``'cuda'``: one ``uint8`` tensor per device, only when CUDA has been initialised
  (capturing it otherwise would initialise CUDA, and nothing has drawn from it).

``set_rng_state(state)`` restores each generator present, so the draws after a
restore equal the draws after the capture.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["get_rng_state", "set_rng_state"]

_KEYS = ("python", "numpy", "torch", "cuda")


def get_rng_state() -> dict[str, Any]:
    """Capture the python, numpy, torch CPU and (if initialised) CUDA generator states.

    Returns:
        A dict of plain types and tensors (see the module docstring), safe for
        ``torch.save`` / ``torch.load(weights_only=True)``.

    Example:
        >>> state = get_rng_state()
        >>> a = random.random()
        >>> set_rng_state(state)
        >>> random.random() == a
        True
    """
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        # The generator words as int64 tensors: one pickled object, not 625 ints.
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": str(name),
            "state": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generator states captured by :func:`get_rng_state`.

    Each generator named in ``state`` is restored; missing ones are left alone. CUDA
    states are restored when CUDA is available and the device count matches;
    otherwise a warning says they were skipped.

    Args:
        state: The dict :func:`get_rng_state` returned (possibly after a round trip
            through ``torch.save``/``torch.load``).

    Raises:
        TypeError: ``state`` is not a mapping.
        ValueError: ``state`` has an unknown key or a malformed entry; the message
            names the entry.

    Example:
        >>> state = get_rng_state()
        >>> x = torch.rand(2)
        >>> set_rng_state(state)
        >>> torch.equal(torch.rand(2), x)
        True
    """
    if not isinstance(state, Mapping):
        raise TypeError(
            f"`state` must be the dict get_rng_state() returned, got {type(state).__name__}"
        )
    unknown = sorted(str(key) for key in state if key not in _KEYS)
    if unknown:
        raise ValueError(
            f"`state` has unknown keys {unknown}; expected some of {list(_KEYS)}, as "
            "get_rng_state() returns"
        )
    try:
        if "python" in state:
            py = state["python"]
            words = py["state"]
            words = words.tolist() if isinstance(words, torch.Tensor) else words
            random.setstate((int(py["version"]), tuple(int(w) for w in words), py["gauss_next"]))
        if "numpy" in state:
            npy = state["numpy"]
            np.random.set_state(
                (
                    str(npy["bit_generator"]),
                    np.asarray(
                        npy["state"].numpy()
                        if isinstance(npy["state"], torch.Tensor)
                        else npy["state"],
                        dtype=np.int64,
                    ).astype(np.uint32),
                    int(npy["pos"]),
                    int(npy["has_gauss"]),
                    float(npy["cached_gaussian"]),
                )
            )
        if "torch" in state:
            torch.set_rng_state(_byte_tensor(state["torch"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"`state` is not a valid RNG state ({type(exc).__name__}: {exc}); pass the dict "
            "get_rng_state() returned, unchanged"
        ) from exc
    if "cuda" in state:
        _set_cuda(state["cuda"])


def _byte_tensor(value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"a generator state must be a uint8 tensor, got {type(value).__name__}")
    return value.detach().to(device="cpu", dtype=torch.uint8).clone()


def _set_cuda(states: object) -> None:
    if not isinstance(states, list | tuple):
        raise ValueError(
            f"`state['cuda']` must be a list of per-device tensors, got {type(states).__name__}"
        )
    if not torch.cuda.is_available() or torch.cuda.device_count() != len(states):
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        warnings.warn(
            f"the RNG state holds {len(states)} CUDA device state(s) but this process sees "
            f"{have} device(s); the CUDA generators were not restored, so GPU random draws "
            "will differ from the uninterrupted run",
            stacklevel=3,
        )
        return
    torch.cuda.set_rng_state_all([_byte_tensor(s) for s in states])
