"""Turn a checkpoint location into a local file: a path, a ``file://`` or an ``http(s)://`` URL.

URLs are downloaded once into a cache folder and read from there afterwards, with no
network access. The promises:

* A download is atomic: bytes go to a temporary file in the cache folder, are synced
  to disk, and only then renamed onto the final name. A failed, interrupted or
  short download (HTTP error, connection reset, fewer bytes than ``Content-Length``,
  wrong hash) leaves nothing behind, so a later call never reads half a file.
* A file name whose stem ends in ``-<8 or more hex digits>`` (``resnet50-0676ba61.pth``)
  carries a SHA-256 prefix of its bytes, as torch.hub's names do; the download is
  checked against it.
* Each URL gets its own cache sub-folder (a digest of host and path), so two servers'
  ``model.pth`` never shadow each other, while the file keeps its own name.

``urllib.request`` is imported only when something is downloaded, so importing this
module costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import SplitResult, unquote, urlsplit

from camshaft.init._errors import (
    CheckpointDownloadError,
    CheckpointError,
    CheckpointNotFoundError,
)

__all__ = ["fetch_checkpoint", "get_checkpoint_cache_dir"]

_logger = logging.getLogger(__name__)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HASH_SUFFIX = re.compile(r"-([0-9a-fA-F]{8,})$")
_CHUNK = 1 << 20
_SUPPORTED = "a local path, a file:// URL or an http(s):// URL"


def get_checkpoint_cache_dir() -> Path:
    """The folder where downloaded checkpoints are kept.

    ``$CAMSHAFT_HOME/checkpoints`` when ``CAMSHAFT_HOME`` is set, else
    ``$XDG_CACHE_HOME/camshaft/checkpoints``, else ``~/.cache/camshaft/checkpoints``.
    The folder is not created here.

    Returns:
        The cache folder's path.
    """
    home = os.environ.get("CAMSHAFT_HOME")
    if home:
        return Path(home).expanduser() / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "camshaft" / "checkpoints"


def fetch_checkpoint(
    filename: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    check_hash: bool = True,
) -> Path:
    """Return a local path holding the checkpoint ``filename`` names, downloading it if needed.

    Args:
        filename: A local path, a ``file://`` URL, or an ``http://``/``https://`` URL.
        cache_dir: Where downloads are kept; defaults to
            :func:`get_checkpoint_cache_dir`.
        timeout: Seconds to wait for the connection and for each read from it.
        check_hash: Check a ``-<hex>`` suffix of the file's stem against the SHA-256
            of the downloaded bytes. Turn off for names whose suffix is a date or a
            version rather than a hash.

    Returns:
        The path of an existing local file.

    Raises:
        TypeError: ``filename`` is not a str or path.
        CheckpointNotFoundError: A local path (or ``file://`` URL) does not exist.
        CheckpointError: The scheme is not supported, or the path is a folder.
        CheckpointDownloadError: The download failed; nothing was left in the cache.

    Example:
        >>> path = fetch_checkpoint("https://example.com/resnet50-0676ba61.pth")  # doctest: +SKIP
        >>> path.name
        'resnet50-0676ba61.pth'
    """
    text = _as_text(filename)
    match = _SCHEME.match(text)
    if match is None:
        return _existing_file(Path(text).expanduser(), text)
    scheme = match.group(1).lower()
    parts = urlsplit(text)
    if scheme == "file":
        return _existing_file(_file_url_path(parts, text), text)
    if scheme not in ("http", "https"):
        raise CheckpointError(
            f"filename {text!r} uses the scheme '{scheme}://', which camshaft cannot read; "
            f"expected {_SUPPORTED}. Download the file yourself and pass its local path."
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"`timeout` must be a positive number of seconds, got {timeout!r}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else get_checkpoint_cache_dir()
    dest = _cache_path(parts, text, folder)
    if dest.is_file():
        return dest
    _download(text, dest, timeout, _expected_hash(dest.name) if check_hash else None)
    return dest


def _as_text(filename: object) -> str:
    """``filename`` as a non-empty str, or a TypeError/ValueError naming it."""
    if not isinstance(filename, str | os.PathLike):
        raise TypeError(
            f"`filename` must be a str or os.PathLike ({_SUPPORTED}), "
            f"got {type(filename).__name__}: {filename!r}"
        )
    text = os.fspath(filename)
    if not isinstance(text, str):
        raise TypeError(f"`filename` must be a text path, got bytes: {text!r}")
    if not text:
        raise ValueError(f"`filename` is empty; expected {_SUPPORTED}")
    return text


def _existing_file(path: Path, given: str) -> Path:
    """``path`` if it is a file; CheckpointNotFoundError or CheckpointError otherwise."""
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {given!r} is a folder, expected a file; "
            "pass the path of the .pth/.safetensors file inside it"
        )
    if not path.exists():
        resolved = path.absolute()
        raise CheckpointNotFoundError(
            f"checkpoint file {given!r} does not exist (looked for {str(resolved)!r}); "
            "check the path, or pass an http(s):// URL to download it"
        )
    return path


def _file_url_path(parts: SplitResult, given: str) -> Path:
    """The local path a ``file://`` URL names."""
    if parts.netloc not in ("", "localhost"):
        raise CheckpointError(
            f"filename {given!r} is a file:// URL on host {parts.netloc!r}; only local "
            "files are supported: write it as file:///absolute/path"
        )
    from urllib.request import url2pathname

    return Path(url2pathname(parts.path))


def _cache_path(parts: SplitResult, given: str, folder: Path) -> Path:
    """Where the download of ``given`` is cached: ``<folder>/<url digest>/<file name>``."""
    path = unquote(parts.path)
    name = PurePosixPath(path).name
    if path.endswith("/") or name in ("", ".", "..") or "\\" in name or "\x00" in name:
        raise CheckpointError(
            f"filename {given!r} does not end in a file name, so it cannot be cached; "
            "expected a URL like https://host/path/model.pth"
        )
    key = f"{parts.netloc.lower()}{parts.path}".encode()
    return folder / hashlib.sha256(key).hexdigest()[:16] / name


def _expected_hash(name: str) -> str | None:
    """The SHA-256 prefix a file name carries (``model-1a2b3c4d.pth``), or None."""
    match = _HASH_SUFFIX.search(PurePosixPath(name).stem)
    return match.group(1).lower() if match else None


def _download(url: str, dest: Path, timeout: float, expected_hash: str | None) -> None:
    """Download ``url`` to ``dest`` atomically, checking length and hash."""
    folder = dest.parent
    created_folder = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise CheckpointDownloadError(
            f"cannot write into the checkpoint cache folder {str(folder)!r}: {exc}. "
            "Set CAMSHAFT_HOME to a writable folder."
        ) from exc
    tmp = Path(tmp_name)
    done = False
    try:
        _logger.info("Downloading %s to %s", url, dest)
        with os.fdopen(fd, "wb") as out:
            received, expected_length, digest = _stream(url, out, timeout)
            out.flush()
            os.fsync(out.fileno())
        if expected_length is not None and received != expected_length:
            raise CheckpointDownloadError(
                f"downloading {url} failed: the server closed the connection after "
                f"{received} of {expected_length} bytes (Content-Length); nothing was "
                "cached. Try again; if it keeps failing, the server is at fault."
            )
        if expected_hash is not None and not digest.startswith(expected_hash):
            raise CheckpointDownloadError(
                f"downloading {url} failed the hash check: the file name says its SHA-256 "
                f"starts with {expected_hash}, but the downloaded bytes hash to {digest}. "
                "The file was deleted. The download is corrupt or the file changed on the "
                "server; if the suffix is not a hash, use fetch_checkpoint(..., "
                "check_hash=False) and pass the local path."
            )
        os.replace(tmp, dest)
        done = True
        _fsync_folder(folder)
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
            if created_folder:
                _remove_if_empty(folder)


def _stream(url: str, out: IO[bytes], timeout: float) -> tuple[int, int | None, str]:
    """Copy ``url``'s body into ``out``; return (bytes, Content-Length, sha256 hex)."""
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "camshaft-init"})
    hasher = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            header = response.headers.get("Content-Length")
            expected = int(header) if header and header.strip().isdigit() else None
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        raise CheckpointDownloadError(
            f"downloading {url} failed: HTTP {exc.code} {exc.reason}; nothing was cached. "
            "Check the URL (and that the file is public)."
        ) from exc
    except urllib.error.URLError as exc:
        raise CheckpointDownloadError(
            f"downloading {url} failed: {exc.reason}; nothing was cached. Check the URL and "
            "the network, or download the file yourself and pass its local path."
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise CheckpointDownloadError(
            f"downloading {url} failed after {received} bytes: {type(exc).__name__}: {exc}; "
            "nothing was cached. Try again, or raise `timeout` for a slow server."
        ) from exc
    return received, expected, hasher.hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort; not possible on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing is in it (another process may have filled it)."""
    with contextlib.suppress(OSError):
        folder.rmdir()
