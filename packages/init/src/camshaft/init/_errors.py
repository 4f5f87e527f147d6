"""Exceptions raised while fetching, reading and loading checkpoints.

One family, rooted at :class:`CheckpointError` (a ``ValueError``), so a caller can
catch every checkpoint problem at once or one kind precisely. Where a builtin says
the same thing, the class also derives from it: a missing file is a
``FileNotFoundError`` and a failed download an ``OSError``, so code written against
the builtins keeps working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointDownloadError",
    "UnsafeCheckpointError",
]


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not fit the model it is loaded into.

    Raised for corrupt or truncated files, files that are not checkpoints, contents
    of an unexpected shape, and ``strict=True`` loads whose keys do not match.
    The message names the file (or the keys) and what was wrong; the original
    exception, when there is one, is chained as ``__cause__``.
    """

    def __str__(self) -> str:
        # OSError subclasses would otherwise format ``args`` as a tuple.
        return str(self.args[0]) if self.args else ""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint needs arbitrary code to unpickle, and unsafe loading was not allowed.

    The message lists the globals (classes or functions) that blocked the safe
    loader, says that no unsafe fallback was tried, and how to opt in.

    Attributes:
        unsafe_globals: The fully qualified names that blocked loading, as far as
            they could be determined (may be empty).
    """

    def __init__(self, message: str, unsafe_globals: list[str] | None = None) -> None:
        super().__init__(message)
        self.unsafe_globals: list[str] = list(unsafe_globals or [])


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The local checkpoint path (or ``file://`` URL) does not exist."""


class CheckpointDownloadError(CheckpointError, OSError):
    """Downloading a checkpoint failed: HTTP error, network error, short read, bad hash.

    Nothing is left in the cache folder when this is raised.
    """
