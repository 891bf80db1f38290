"""Fixtures for the xds tests: tiny HTTP backends and real Envoy processes, always cleaned up."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from xds_processes import Backend, EnvoyProcess, NamedHandler

from meshplane import envoy


@pytest.fixture
def backends() -> Iterator[Callable[[str], int]]:
    """Start tiny HTTP servers answering their own name; returns name → port."""
    servers: list[Backend] = []

    def start(name: str) -> int:
        handler = type(f"Handler_{name}", (NamedHandler,), {"answer": name.encode()})
        server = Backend(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def envoys(tmp_path: Path) -> Iterator[Callable[..., EnvoyProcess]]:
    """Start real Envoys bootstrapped for an ADS server on 127.0.0.1; kill them all at teardown."""
    started: list[EnvoyProcess] = []

    def start(
        node_id: str, xds_port: int, replica: str | None = None, *, delta: bool = False
    ) -> EnvoyProcess:
        index = len(started)
        admin_path = tmp_path / f"envoy-{index}.admin"
        log = tmp_path / f"envoy-{index}.log"
        metadata = {"meshplane": {"replica": replica}} if replica else {}
        config = envoy.bootstrap(
            node_id, node_id, "127.0.0.1", xds_port, "127.0.0.1", 0, metadata, delta=delta
        )
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
