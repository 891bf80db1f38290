"""Real traffic through a real gateway Envoy running the ``gateway-routing`` case's translation.

The gateway's listeners, self-redirect and egress routing are exactly the translator's
(EDS/RDS inlined by :mod:`.staticconfig`); the backends are a gRPC server that answers
with the method path it was called on and an HTTP server that answers with the Host and
path it saw, so each assertion reads what App Mesh's gateway would have delivered.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import pathlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from meshplane.model.snapshot import Endpoint
from meshplane.translate import NodeIdentity, build

from . import casefiles, staticconfig

DEADLINE_S = 60.0
pytestmark = pytest.mark.integration


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``<Host> <path>`` as the backend received them."""

    def do_GET(self) -> None:
        body = f"{self.headers['Host']} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _AnyMethod(grpc.GenericRpcHandler):
    """Serves every unary method, answering with the method path it was called on."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method

        def answer(request: bytes, context: Any) -> bytes:
            return method.encode()

        return grpc.unary_unary_rpc_method_handler(answer)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Gateway:
    http_port: int
    grpc_port: int


@pytest.fixture
def gateway(tmp_path: pathlib.Path) -> Iterator[Gateway]:
    """The backends and vg-front's Envoy, with vn-hello and vn-shop registered on loopback."""
    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    hello = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[_AnyMethod()])
    hello_port = hello.add_insecure_port("127.0.0.1:0")
    hello.start()
    case = casefiles.load("gateway-routing")
    snapshot = dataclasses.replace(
        case.snapshot,
        endpoints={
            "vn-hello": (Endpoint(8080, "127.0.0.1", hello_port),),
            "vn-shop": (Endpoint(80, "127.0.0.1", shop.server_address[1]),),
        },
    )
    ports = Gateway(http_port=_free_port(), grpc_port=_free_port())
    node = NodeIdentity(
        mesh="demos",
        kind="virtualGateway",
        name="vg-front",
        egress_port=_free_port(),
        ingress_ports={8088: ports.http_port, 8089: ports.grpc_port},
    )
    resources = build(snapshot, node)
    assert [w.code for w in resources.warnings] == ["gateway-route-no-listener"]
    path = tmp_path / "bootstrap.json"
    path.write_text(json_format.MessageToJson(staticconfig.bootstrap(resources, node.node_id)))
    command = [str(staticconfig.envoy_binary()), "-c", str(path), "--concurrency", "1"]
    command += ["--disable-hot-restart", "--log-level", "warn"]
    envoy = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE_S
        for port in (ports.http_port, ports.grpc_port, node.egress_port):
            while True:
                assert envoy.poll() is None, "envoy exited"
                assert time.monotonic() < deadline, f"envoy never listened on {port}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)  # polling a condition, not standing in for one
        yield ports
    finally:
        envoy.terminate()
        envoy.wait(timeout=30)
        hello.stop(None)
        shop.shutdown()
        shop.server_close()


def _get(port: int, path: str, host: str, **headers: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, **headers})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def test_grpc_gateway_route_keeps_the_method_path(gateway: Gateway) -> None:
    """A gRPC call /Hello/SayHello through the gateway reaches the backend unchanged."""
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        call = channel.unary_unary("/Hello/SayHello")
        assert call(b"", timeout=10) == b"/Hello/SayHello"


def test_disabled_hostname_rewrite_keeps_the_clients_host_with_its_port(gateway: Gateway) -> None:
    """`defaultTargetHostname: DISABLED` delivers the client's Host; exact matches a :port Host."""
    assert _get(gateway.http_port, "/cart", "shop.example.com:8088") == (
        200,
        "shop.example.com:8088 /cart",
    )
    assert _get(gateway.http_port, "/cart", "shop.example.com") == (200, "shop.example.com /cart")


def test_suffix_hostname_matches_a_host_with_a_port_and_rewrites_host(gateway: Gateway) -> None:
    """A suffix route matches `www.example.com:8088`, rewrites Host to the target; forgery fails."""
    assert _get(gateway.http_port, "/x", "www.example.com:8088") == (200, "vs-shop /x")
    forged = {"x-meshplane-gateway-host": "evil.test"}
    assert _get(gateway.http_port, "/x", "www.example.com", **forged) == (200, "vs-shop /x")
    assert _get(gateway.http_port, "/x", "shop.other.test:8088")[0] == 404
