"""Fixtures for the xds tests: free ports, tiny HTTP backends and real Envoy processes."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshplane import envoy


def free_port() -> int:
    """A port nothing listens on right now (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NamedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real app behind Envoy
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms stalls
    answer = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging."""


@pytest.fixture
def backends() -> Iterator[Callable[[str], int]]:
    """Start tiny HTTP servers answering their own name; returns name → port."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(name: str) -> int:
        handler = type(f"Handler_{name}", (_NamedHandler,), {"answer": name.encode()})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class EnvoyProcess:
    """A real Envoy started from meshplane's bootstrap; the fixture always kills it."""

    def __init__(self, process: subprocess.Popen[bytes], admin_path: Path, log: Path) -> None:
        self.process = process
        self.admin_path = admin_path
        self.log = log

    def admin_url(self, deadline_s: float = 30.0) -> str:
        """The admin base URL, once Envoy has written its bound address."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.admin_path.exists() and self.admin_path.read_text().strip():
                return "http://" + self.admin_path.read_text().strip()
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.02)  # polling a file Envoy writes; no event to wait on
        raise TimeoutError("envoy did not write its admin address")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def envoys(tmp_path: Path) -> Iterator[Callable[..., EnvoyProcess]]:
    """Start real Envoys bootstrapped for an ADS server on 127.0.0.1; kill them all at teardown."""
    started: list[EnvoyProcess] = []

    def start(node_id: str, xds_port: int, replica: str | None = None) -> EnvoyProcess:
        index = len(started)
        admin_path = tmp_path / f"envoy-{index}.admin"
        log = tmp_path / f"envoy-{index}.log"
        metadata = {"meshplane": {"replica": replica}} if replica else {}
        config = envoy.bootstrap(node_id, node_id, "127.0.0.1", xds_port, "127.0.0.1", 0, metadata)
        argv = envoy.command(config, admin_address_path=admin_path, log_level="info")
        with log.open("wb") as sink:
            process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
        started.append(EnvoyProcess(process, admin_path, log))
        return started[-1]

    yield start
    for proxy in started:
        with contextlib.suppress(ProcessLookupError):
            proxy.process.kill()
        proxy.process.wait(timeout=30)


def admin_json(url: str) -> object:
    """GET an admin endpoint and parse its JSON."""
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
