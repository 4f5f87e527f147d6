"""Exception types raised by camshaft.dist."""

from __future__ import annotations

__all__ = ["LaunchError"]


class LaunchError(RuntimeError):
    """The distributed environment could not be set up by :func:`~camshaft.dist.init_dist`.

    Raised when a variable the launcher should have set is missing or malformed, or
    a default process group already exists. The message names the variable and the
    launcher (torchrun, srun, mpirun) that sets it.
    """
