"""examples/gateway end to end: `meshplane up` runs VirtualGateways' Envoys, real traffic crosses.

The example's files are used as published (a copy, so the session's processes can be told
apart by directory); only `--publish` moves the gateway to a free port. Requests enter at
the published address, cross the gateway's Envoy (ingress routes, self-redirect, egress
routing), the color backend's sidecar and reach the app, which answers with the Host and
path it received; gRPC calls cross the gRPC gateway to a greeter that answers with the
method path it was called on.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from meshplane import client

from .harness import free_port, running_in
from .traffic import DIRECT, poll

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway"
STARTUP = 90.0
"""Seconds the session gets to come up on a loaded 2-core box (generous on purpose)."""


def _get(port: int, path: str, host: str | None = None) -> tuple[int, dict[str, str] | None]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if host is not None:
        request.add_header("Host", host)
    try:
        with DIRECT.open(request, timeout=10) as answer:
            return answer.status, dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        return error.code, None


def _reachable(port: int) -> bool:
    try:
        return _get(port, "/color/")[0] == 200
    except OSError:
        return False


def _greet(port: int, method: str) -> bytes | None:
    """One unary call through the gRPC gateway (no proxy from the test's environment)."""
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        try:
            return bytes(channel.unary_unary(method)(b"", timeout=10))
        except grpc.RpcError:
            return None


class Session:
    """`meshplane up -f <copy of examples/gateway>` with the gateway on a free port."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        """Copy the example, pick the ports, start `up` (with ``extra`` arguments)."""
        self.workdir = workdir / "gateway"
        shutil.copytree(EXAMPLE, self.workdir)
        self.gateway_port, self.grpc_port, self.api_port = free_port(), free_port(), free_port()
        argv = [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(self.workdir)]
        argv += ["--api-port", str(self.api_port), "--xds-port", str(free_port())]
        argv += ["--data-dir", str(self.workdir / "data")]
        argv += ["--publish", f"ingress-gw=127.0.0.1:{self.gateway_port}"]
        argv += ["--publish", f"grpc-gw=127.0.0.1:{self.grpc_port}"]
        argv += extra
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output = ""

    def proxies(self) -> list[dict[str, object]]:
        """The control plane's proxy read model."""
        signer = client.Signer.from_file(self.workdir / "data" / "credentials", "us-west-2")
        transport = client.Transport(
            f"http://127.0.0.1:{self.api_port}", trust_env=False, signer=signer
        )
        return list(client.MeshplaneClient(transport).proxies().proxies)

    def stop(self) -> int:
        """SIGTERM, collect the output; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate()
        return self.process.returncode


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """The example running; stopped (and checked to leave nothing) after the module."""
    session = Session(tmp_path_factory.mktemp("gateway-example"))
    try:
        poll(lambda: _reachable(session.gateway_port), STARTUP, "the published gateway")
        greeter = "/helloworld.Greeter/SayHello"
        poll(lambda: _greet(session.grpc_port, greeter), STARTUP, "the gRPC gateway")
        yield session
    finally:
        code = session.stop()
    assert code == 0, session.output
    assert running_in(session.workdir) == set()
    assert (
        "apply | deployment.apps/ingress-gw skipped: workloads are Kubernetes' business; "
        "in local mode use a Workload"
    ) in session.output.splitlines()


def test_prefix_route_rewrites_the_prefix_and_the_host(gateway: Session) -> None:
    """/color/x/y reaches the backend as /x/y with Host set to the target virtual service."""
    assert _get(gateway.gateway_port, "/color/x/y") == (
        200,
        {"color": "blue", "host": "color.shop.svc.cluster.local", "path": "/x/y"},
    )


def test_hostname_route_keeps_the_clients_host_with_its_port(gateway: Session) -> None:
    """shop.example.com:<port> matches the exact hostname route and its Host reaches the app."""
    host = f"shop.example.com:{gateway.gateway_port}"
    assert _get(gateway.gateway_port, "/cart", host) == (
        200,
        {"color": "blue", "host": host, "path": "/cart"},
    )
    assert _get(gateway.gateway_port, "/cart", "other.example.com")[0] == 404


def test_grpc_gateway_route_delivers_the_method_path_unchanged(gateway: Session) -> None:
    """/helloworld.Greeter/SayHello crosses the gRPC gateway as it was sent."""
    assert _greet(gateway.grpc_port, "/helloworld.Greeter/SayHello") == (
        b"/helloworld.Greeter/SayHello"
    )


def test_a_grpcio_app_reaches_a_grpc_service_through_its_sidecar(gateway: Session) -> None:
    """color's /greet: grpcio honours http_proxy, tunnels through color's sidecar to the greeter."""
    assert _get(gateway.gateway_port, "/color/greet") == (
        200,
        {"greeting": "/helloworld.Greeter/SayHello"},
    )


def test_the_gateways_run_as_their_own_envoys(gateway: Session) -> None:
    """The control plane sees each gateway's Envoy under its VirtualGateway's node id."""
    ids = sorted(str(proxy["nodeId"]) for proxy in gateway.proxies())
    assert ids == [
        "mesh/shop/virtualGateway/grpc-gw_shop-grpc",
        "mesh/shop/virtualGateway/ingress-gw_shop",
        "mesh/shop/virtualNode/color-blue_shop",
        "mesh/shop/virtualNode/greeter_shop-grpc",
    ]
