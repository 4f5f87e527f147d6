"""Fetching checkpoints: local paths, file:// URLs, and downloads from a real HTTP server."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from camshaft.init import (
    CheckpointDownloadError,
    CheckpointError,
    CheckpointNotFoundError,
    fetch_checkpoint,
    get_checkpoint_cache_dir,
    load_checkpoint,
)


def _checkpoint_bytes(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- cache folder -------------------------------------------------------------


def test_cache_dir_follows_camshaft_home(cache_home: Path) -> None:
    assert get_checkpoint_cache_dir() == cache_home


def test_cache_dir_falls_back_to_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAMSHAFT_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_checkpoint_cache_dir() == tmp_path / "xdg" / "camshaft" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_checkpoint_cache_dir() == tmp_path / "home" / ".cache" / "camshaft" / "checkpoints"


# --- downloads ----------------------------------------------------------------


def test_download_once_then_reuse_cache(http_server, cache_home: Path) -> None:
    source = nn.Linear(3, 2)
    body = _checkpoint_bytes(source)
    url = http_server.serve("/weights/linear.pth", body)

    first = fetch_checkpoint(url)
    second = fetch_checkpoint(url)

    assert http_server.hits["/weights/linear.pth"] == 1
    assert first == second
    assert first.name == "linear.pth"
    assert first.is_relative_to(cache_home)
    assert first.read_bytes() == body
    assert _files(cache_home) == [first]  # no temporary leftovers


def test_load_checkpoint_from_url(http_server, cache_home: Path) -> None:
    source = nn.Linear(3, 2)
    url = http_server.serve("/linear.pth", _checkpoint_bytes(source))
    target = nn.Linear(3, 2)
    load_checkpoint(target, url)
    assert torch.equal(target.weight, source.weight)
    load_checkpoint(nn.Linear(3, 2), url)
    assert http_server.hits["/linear.pth"] == 1


def test_query_string_does_not_change_cache_entry(http_server, cache_home: Path) -> None:
    url = http_server.serve("/signed.pth", b"payload")
    assert fetch_checkpoint(url + "?token=1") == fetch_checkpoint(url + "?token=2")
    assert http_server.hits["/signed.pth"] == 1


def test_same_file_name_on_two_paths_is_cached_separately(http_server, cache_home: Path) -> None:
    a = fetch_checkpoint(http_server.serve("/a/model.pth", b"first"))
    b = fetch_checkpoint(http_server.serve("/b/model.pth", b"second"))
    assert a != b
    assert (a.read_bytes(), b.read_bytes()) == (b"first", b"second")


def test_explicit_cache_dir(http_server, cache_home: Path, tmp_path: Path) -> None:
    path = fetch_checkpoint(http_server.serve("/x.pth", b"abc"), cache_dir=tmp_path / "own")
    assert path.is_relative_to(tmp_path / "own")
    assert _files(cache_home) == []


def test_http_404_raises_and_caches_nothing(http_server, cache_home: Path) -> None:
    url = f"{http_server.base}/missing.pth"
    with pytest.raises(CheckpointDownloadError, match="HTTP 404") as info:
        fetch_checkpoint(url)
    assert url in str(info.value)
    assert isinstance(info.value, OSError)
    assert _files(cache_home) == []


@pytest.mark.parametrize("mode", ["short", "reset"])
def test_interrupted_download_raises_and_leaves_no_file(
    http_server, cache_home: Path, mode: str
) -> None:
    url = http_server.serve("/cut.pth", b"x" * 200_000, mode=mode)
    with pytest.raises(CheckpointDownloadError, match="nothing was cached"):
        fetch_checkpoint(url)
    assert _files(cache_home) == []
    # A later call tries again instead of reading a broken cache entry.
    http_server.serve("/cut.pth", b"complete")
    assert fetch_checkpoint(url).read_bytes() == b"complete"


def test_short_read_names_both_lengths(http_server, cache_home: Path) -> None:
    url = http_server.serve("/short.pth", b"y" * 100, mode="short")
    with pytest.raises(CheckpointDownloadError, match="after 100 of 1100 bytes"):
        fetch_checkpoint(url)


def test_connection_refused_is_a_download_error(cache_home: Path) -> None:
    import socket

    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CheckpointDownloadError, match="nothing was cached"):
        fetch_checkpoint(f"http://127.0.0.1:{port}/model.pth", timeout=5)
    assert _files(cache_home) == []


# --- hash suffix --------------------------------------------------------------


def test_hash_suffix_accepted_when_it_matches(http_server, cache_home: Path) -> None:
    body = b"checkpoint bytes"
    prefix = hashlib.sha256(body).hexdigest()[:10]
    path = fetch_checkpoint(http_server.serve(f"/model-{prefix}.pth", body))
    assert path.read_bytes() == body


def test_hash_suffix_mismatch_names_both_hashes_and_deletes(http_server, cache_home: Path) -> None:
    body = b"tampered bytes"
    actual = hashlib.sha256(body).hexdigest()
    url = http_server.serve("/model-deadbeef00.pth", body)
    with pytest.raises(CheckpointDownloadError) as info:
        fetch_checkpoint(url)
    assert "deadbeef00" in str(info.value)
    assert actual in str(info.value)
    assert _files(cache_home) == []


def test_hash_check_can_be_turned_off(http_server, cache_home: Path) -> None:
    url = http_server.serve("/model-20240101.pth", b"dated, not hashed")
    assert fetch_checkpoint(url, check_hash=False).read_bytes() == b"dated, not hashed"


def test_short_hex_suffix_is_not_a_hash(http_server, cache_home: Path) -> None:
    url = http_server.serve("/model-v1-abc.pth", b"no hash here")
    assert fetch_checkpoint(url).read_bytes() == b"no hash here"


# --- local paths and bad input --------------------------------------------------


def test_local_path_and_file_url(tmp_path: Path) -> None:
    path = tmp_path / "local.pth"
    path.write_bytes(b"data")
    assert fetch_checkpoint(path) == path
    assert fetch_checkpoint(str(path)) == path
    assert fetch_checkpoint(path.as_uri()) == path


def test_missing_local_path_and_file_url(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointNotFoundError, match=r"nope\.pth") as info:
        fetch_checkpoint(missing)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match=r"nope\.pth"):
        fetch_checkpoint(missing.as_uri())


def test_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder"):
        fetch_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("filename", "error", "match"),
    [
        (42, TypeError, "`filename` must be a str"),
        ("", ValueError, "`filename` is empty"),
        ("s3://bucket/model.pth", CheckpointError, "scheme 's3://'"),
        ("http://127.0.0.1:1/folder/", CheckpointError, "does not end in a file name"),
        ("file://otherhost/x.pth", CheckpointError, "only local files"),
    ],
)
def test_bad_filename(
    filename: object, error: type[Exception], match: str, cache_home: Path
) -> None:
    with pytest.raises(error, match=match):
        fetch_checkpoint(filename)  # type: ignore[arg-type]
    assert _files(cache_home) == []


@pytest.mark.parametrize("timeout", [0, -1, "10", True])
def test_bad_timeout(timeout: object, cache_home: Path) -> None:
    with pytest.raises(ValueError, match="`timeout`"):
        fetch_checkpoint("http://127.0.0.1:1/x.pth", timeout=timeout)  # type: ignore[arg-type]
