"""The installed camshaft distributions and their versions (for logs and checkpoints)."""

from __future__ import annotations

import functools
from importlib import metadata

__all__ = ["CAMSHAFT_DISTRIBUTIONS", "camshaft_versions"]

CAMSHAFT_DISTRIBUTIONS = (
    "camshaft-registry",
    "camshaft-init",
    "camshaft-model",
    "camshaft-preprocess",
    "camshaft-dist",
    "camshaft-runner",
)


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    found = []
    for name in CAMSHAFT_DISTRIBUTIONS:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def camshaft_versions() -> dict[str, str]:
    """The version of each installed camshaft distribution, by distribution name.

    Example:
        >>> camshaft_versions()['camshaft-runner']  # doctest: +SKIP
        '0.1.0'
    """
    return dict(_installed_versions())  # read once per process: metadata lookups are slow
