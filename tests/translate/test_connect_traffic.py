"""Real traffic through a real sidecar Envoy running the ``grpc-connect`` case's translation.

The client side is a local-mode app with no iptables: a grpcio client honouring
``grpc_proxy`` tunnels through the egress listener with HTTP CONNECT, and a TCP client dials
the loopback port the runtime announced for its TCP backend. Listeners, routes and clusters
are exactly the translator's (EDS/RDS inlined by :mod:`.staticconfig`).
"""

from __future__ import annotations

import dataclasses
import socket
import socketserver
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from meshplane.model.snapshot import Endpoint
from meshplane.translate import NodeIdentity, build

from . import casefiles, sidecars

pytestmark = pytest.mark.integration


class _Named(grpc.GenericRpcHandler):
    """Serves every unary method, answering ``<server name>:<method path>``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        answer = f"{self.name}:{details.method}".encode()

        def handle(request: bytes, context: Any) -> bytes:
            return answer

        return grpc.unary_unary_rpc_method_handler(handle)


class _EchoHandler(socketserver.StreamRequestHandler):
    """Answers each line with ``<server name>:<line>``."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(f"{self.server.name}:".encode() + line)  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Sidecar:
    egress_port: int
    tcp_port: int


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """Two greeters, two TCP echo servers and vn-client's Envoy with its tunnel and TCP port."""
    greeters = {}
    for name in ("a", "b"):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[_Named(name)])
        greeters[name] = (server, server.add_insecure_port("127.0.0.1:0"))
        server.start()
    echoes = {}
    for name in ("a", "b"):
        echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
        echo.daemon_threads = True
        echo.name = name  # type: ignore[attr-defined]
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        echoes[name] = echo
    case = casefiles.load("grpc-connect")
    snapshot = dataclasses.replace(
        case.snapshot,
        endpoints={
            **{
                f"vn-greeter-{name}": (Endpoint(9111, "127.0.0.1", port),)
                for name, (_, port) in greeters.items()
            },
            **{
                f"vn-echo-{name}": (Endpoint(7000, "127.0.0.1", echo.server_address[1]),)
                for name, echo in echoes.items()
            },
        },
    )
    ports = Sidecar(egress_port=_free_port(), tcp_port=_free_port())
    node = dataclasses.replace(
        case.node,
        egress_port=ports.egress_port,
        ingress_ports={8080: _free_port()},
        tcp_ports={"echo.demos": ports.tcp_port},
    )
    assert isinstance(node, NodeIdentity)
    resources = build(snapshot, node)
    assert resources.warnings == ()
    path = tmp_path_factory.mktemp("connect") / "bootstrap.json"
    envoy = sidecars.start(resources, node.node_id, (ports.egress_port, ports.tcp_port), path)
    try:
        yield ports
    finally:
        sidecars.stop(envoy)
        for server, _ in greeters.values():
            server.stop(None)
        for echo in echoes.values():
            echo.shutdown()
            echo.server_close()


def _call(egress_port: int, method: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """One unary call to greeter.demos:9111 by a grpcio client that reads ``grpc_proxy``."""
    for variable in ("no_proxy", "NO_PROXY", "no_grpc_proxy", "https_proxy", "http_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("grpc_proxy", f"http://127.0.0.1:{egress_port}")
    with grpc.insecure_channel("greeter.demos:9111") as channel:
        return bytes(channel.unary_unary(method)(b"", timeout=10, wait_for_ready=True))


def test_grpc_client_tunnels_through_connect_and_meets_the_grpc_routes(
    sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the tunnel SayHello reaches vn-greeter-a and other Greeter methods vn-greeter-b."""
    assert _call(sidecar.egress_port, "/helloworld.Greeter/SayHello", monkeypatch) == (
        b"a:/helloworld.Greeter/SayHello"
    )
    assert _call(sidecar.egress_port, "/helloworld.Greeter/SayGoodbye", monkeypatch) == (
        b"b:/helloworld.Greeter/SayGoodbye"
    )


def _status_line(egress_port: int, authority: str) -> bytes:
    """The first line of the egress listener's answer to ``CONNECT <authority>``."""
    with socket.create_connection(("127.0.0.1", egress_port), timeout=10) as connection:
        connection.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_connect_is_accepted_only_for_the_meshs_services(sidecar: Sidecar) -> None:
    """A CONNECT to a backend's authority is answered 200; to any other host 404 (DROP_ALL)."""
    assert _status_line(sidecar.egress_port, "greeter.demos:9111") == b"HTTP/1.1 200 OK"
    assert _status_line(sidecar.egress_port, "elsewhere.example.com:443") == (
        b"HTTP/1.1 404 Not Found"
    )


def test_tcp_backend_is_reached_on_its_own_loopback_port(sidecar: Sidecar) -> None:
    """Bytes sent to the TCP backend's announced port reach vn-echo-a (weight 100 of 100)."""
    with socket.create_connection(("127.0.0.1", sidecar.tcp_port), timeout=10) as connection:
        reader = connection.makefile("rb")
        for line in (b"one\n", b"two\n"):
            connection.sendall(line)
            assert reader.readline() == b"a:" + line
