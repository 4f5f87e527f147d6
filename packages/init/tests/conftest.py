"""Shared fixtures for the camshaft.init tests."""

from __future__ import annotations

import http.server
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

# --- dtype / device fixtures (initializers) ---------------------------------

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.fixture(params=FLOAT_DTYPES, ids=lambda dtype: str(dtype).removeprefix("torch."))
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Every floating dtype the initializers promise to handle."""
    return request.param


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> torch.device:
    """CPU always; CUDA when the root conftest lets gpu-marked tests run."""
    return torch.device(request.param)


# --- checkpoint fixtures (fetch / checkpoint / pretrained) -------------------


@dataclass
class Route:
    """What the test server answers on one path.

    ``mode`` is ``"ok"`` (send the body), ``"short"`` (announce ``Content-Length``
    larger than the body, send the body, close) or ``"reset"`` (send half the body,
    then reset the connection).
    """

    body: bytes = b""
    status: int = 200
    mode: str = "ok"


@dataclass
class CheckpointServer:
    """A real HTTP server on 127.0.0.1, run in a thread for one test."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def serve(self, path: str, body: bytes = b"", status: int = 200, mode: str = "ok") -> str:
        """Answer GET ``path`` as :class:`Route` describes; returns its URL."""
        self.routes[path] = Route(body, status, mode)
        return f"{self.base}{path}"


def _handler(server: CheckpointServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.hits[path] += 1
            route = server.routes.get(path, Route(status=404))
            if route.status != 200:
                self.send_error(route.status)
                return
            self.send_response(200)
            extra = 1000 if route.mode == "short" else 0
            self.send_header("Content-Length", str(len(route.body) + extra))
            self.end_headers()
            if route.mode == "reset":
                self.wfile.write(route.body[: len(route.body) // 2])
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.wfile.write(route.body)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # silence the log
            pass

    return Handler


@pytest.fixture
def http_server() -> Iterator[CheckpointServer]:
    """A started :class:`CheckpointServer`; add ``routes`` and read ``hits``."""
    state = CheckpointServer(base="")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``CAMSHAFT_HOME`` at a fresh folder; returns the checkpoint cache folder."""
    home = tmp_path / "camshaft_home"
    monkeypatch.setenv("CAMSHAFT_HOME", str(home))
    return home / "checkpoints"
