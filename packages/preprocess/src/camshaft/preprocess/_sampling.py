"""Where the batch augments get their random numbers, and how a run repeats them.

MixUp, CutMix and RandomBatchAugment share one rule, kept here so that it is stated once:

* ``seed=None`` (the default): draws come from torch's default generator of the device
  the batch is on (``torch.default_generator`` on the CPU, the current CUDA generator
  on a GPU). The runner's ``randomness=dict(seed=...)`` seeds those generators and a
  resume restores them, so a run repeats without anything else. No generator object
  enters the computation, so ``torch.compile`` traces an augment whole.
* ``seed=<int>`` (or ``manual_seed(<int>)`` later): draws come from a private
  ``torch.Generator`` made on the batch's device when the first batch arrives there
  and seeded with ``seed``. Its state is read with ``get_rng_state()`` and put back
  with ``set_rng_state()``, so a checkpoint can carry it. ``torch.compile`` runs the
  draws that take this generator outside the graph (a graph break), and the rest
  inside it.

Every draw is made on the batch's device: nothing is copied to or from the host, so
drawing never waits for the device. In distributed training a seed is per process:
give each rank its own (say ``seed + rank``) unless every rank should draw alike.
"""

from __future__ import annotations

import torch

__all__ = [
    "RandomSource",
    "check_seed",
    "sample_beta",
    "sample_permutation",
    "sample_uniform",
]


def check_seed(seed: object, name: str = "seed") -> int | None:
    """Return ``seed`` if it is None or an int, else raise naming the argument.

    Raises:
        TypeError: ``seed`` is neither None nor an int (bool is refused).
    """
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)):
        return seed
    raise TypeError(f"`{name}` must be an int or None, got {type(seed).__name__}: {seed!r}")


class RandomSource:
    """The generators one augment draws from: torch's defaults, or its own, seeded.

    Args:
        seed: None to draw from torch's default generator of each device, or an int
            to draw from private generators seeded with it (one per device).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def manual_seed(self, seed: int) -> None:
        """Seed the private generators: the next batch starts a fresh stream from ``seed``.

        Raises:
            TypeError: ``seed`` is not an int.
        """
        if check_seed(seed) is None:
            raise TypeError("`seed` must be an int, got None")
        self.seed = seed
        self._generators.clear()

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The generator to pass as ``generator=`` for a draw on ``device``.

        Returns:
            None when unseeded (torch then uses its default generator), else this
            source's generator on ``device``, made and seeded on first use.
        """
        if self.seed is None:
            return None
        found = self._generators.get(device)
        if found is None:
            found = torch.Generator(device=device)
            found.manual_seed(self.seed)
            self._generators[device] = found
        return found

    def get_state(self) -> dict[str, torch.Tensor]:
        """The state of every private generator made so far, keyed by device name."""
        return {str(device): gen.get_state() for device, gen in self._generators.items()}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore states returned by :meth:`get_state` (the seed must already be set).

        Raises:
            TypeError: ``state`` is not a dict of tensors.
            ValueError: this source is unseeded, so it has no generators to restore.
        """
        if not isinstance(state, dict) or not all(
            isinstance(value, torch.Tensor) for value in state.values()
        ):
            raise TypeError(
                f"`state` must be a dict of device name -> tensor as get_rng_state() "
                f"returns, got {type(state).__name__}"
            )
        if self.seed is None and state:
            raise ValueError(
                "`state` holds generator states but this augment is unseeded (seed=None), "
                "so it draws from torch's default generators; seed it first with "
                "manual_seed(<int>)"
            )
        for name, value in state.items():
            gen = self.generator(torch.device(name))
            if gen is not None:
                gen.set_state(value)


def sample_beta(
    alpha: float, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """One draw of Beta(``alpha``, ``alpha``) on ``device``, as a 0-d tensor.

    Beta(a, a) is X / (X + Y) for X, Y ~ Gamma(a). The gammas are drawn in float64
    (float32 on MPS, which has no float64) so that a small ``alpha`` does not
    underflow both to zero; if it still does, the draw is 0.5.
    """
    dtype = torch.float32 if device.type == "mps" else torch.float64
    concentration = torch.full((2,), alpha, dtype=dtype, device=device)
    gammas = torch._standard_gamma(concentration, generator=generator)
    total = gammas.sum()
    return torch.where(total > 0, gammas[0] / total, torch.full_like(total, 0.5))


def sample_uniform(
    count: int, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """``count`` draws of U[0, 1) on ``device`` in float64 (float32 on MPS)."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.rand(count, generator=generator, device=device, dtype=dtype)


def sample_permutation(
    count: int, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """A random permutation of ``range(count)`` on ``device``: sample ``i`` pairs with it."""
    return torch.randperm(count, generator=generator, device=device)
