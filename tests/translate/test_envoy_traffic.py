"""Real traffic through a real Envoy running the translated config (local-mode shape).

The app side is what meshplane's local runtime does: the client reaches the
mesh through ``HTTP_PROXY`` pointing at the egress listener, and backends are
registered endpoints. EDS/RDS are inlined (see :mod:`.staticconfig`), so the
listeners, routes and clusters under test are exactly the translator's.
"""

from __future__ import annotations

import dataclasses
import http.server
import pathlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from google.protobuf import json_format

from meshplane.model.snapshot import Endpoint
from meshplane.model.specs_generated import MeshSpec
from meshplane.translate import NodeIdentity, build

from . import casefiles, staticconfig

DEADLINE_S = 60.0
Starter = Callable[..., int]
"""Starts a sidecar (``allow_all=``) and returns its egress port."""


class _Named(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the server's name."""

    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """Three named HTTP servers on free loopback ports: blue, green, outside."""
    running = {}
    for name in ("blue", "green", "outside"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running[name] = server
    yield {name: server.server_address[1] for name, server in running.items()}
    for server in running.values():
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port the kernel just handed out (bound to 0, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(proxy_port: int, url: str) -> tuple[int, str]:
    """GET ``url`` through the sidecar's egress listener used as an HTTP proxy."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"})
    )
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def sidecar(tmp_path: pathlib.Path, servers: dict[str, int]) -> Iterator[Starter]:
    """Start Envoy for vn-echo-frontend-blue at 50/50; yields a starter taking ALLOW_ALL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*, allow_all: bool) -> int:
        case = casefiles.load("bluegreen-50-50")
        mesh_spec = MeshSpec.from_wire(
            {"egressFilter": {"type": "ALLOW_ALL" if allow_all else "DROP_ALL"}}
        )
        snapshot = dataclasses.replace(
            case.snapshot,
            mesh=dataclasses.replace(case.snapshot.mesh, spec=mesh_spec),
            endpoints={
                "vn-echo-backend-blue": (Endpoint(80, "127.0.0.1", servers["blue"]),),
                "vn-echo-backend-green": (Endpoint(80, "127.0.0.1", servers["green"]),),
            },
        )
        egress = free_port()
        node = NodeIdentity(
            mesh="demos",
            kind="virtualNode",
            name="vn-echo-frontend-blue",
            egress_port=egress,
            ingress_ports={80: free_port()},
        )
        resources = build(snapshot, node)
        assert resources.warnings == ()
        path = tmp_path / f"bootstrap-{allow_all}.json"
        path.write_text(json_format.MessageToJson(staticconfig.bootstrap(resources, node.node_id)))
        command = [str(staticconfig.envoy_binary()), "-c", str(path), "--concurrency", "1"]
        command += ["--disable-hot-restart", "--log-level", "warn"]
        started.append(subprocess.Popen(command, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", egress), timeout=1):
                    return egress
            except OSError:
                assert started[-1].poll() is None, "envoy exited"
                time.sleep(0.05)  # polling a condition, not standing in for one
        raise AssertionError("envoy's egress listener never came up")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.integration
def test_fifty_fifty_reaches_both_colours_through_http_proxy(sidecar: Starter) -> None:
    """The app's HTTP_PROXY requests to vs-echo-backend:80 are split between blue and green."""
    egress = sidecar(allow_all=False)
    answers = [fetch(egress, "http://vs-echo-backend:80/") for _ in range(40)]
    assert {status for status, _ in answers} == {200}
    assert {body for _, body in answers} == {"blue", "green"}


@pytest.mark.integration
def test_drop_all_answers_404_for_unknown_host(sidecar: Starter, servers: dict[str, int]) -> None:
    """Under DROP_ALL a host outside the mesh gets Envoy's 404 and never reaches the server."""
    egress = sidecar(allow_all=False)
    assert fetch(egress, f"http://localhost:{servers['outside']}/")[0] == 404


@pytest.mark.integration
def test_allow_all_passes_unknown_host_through(sidecar: Starter, servers: dict[str, int]) -> None:
    """Under ALLOW_ALL the dynamic forward proxy reaches a host outside the mesh."""
    egress = sidecar(allow_all=True)
    assert fetch(egress, f"http://localhost:{servers['outside']}/") == (200, "outside")
    assert fetch(egress, f"http://127.0.0.1:{servers['outside']}/") == (200, "outside")
    assert fetch(egress, "http://vs-echo-backend:80/")[0] == 200
