"""TLS along whole paths through real Envoys: caller's client policy → callee's listener.

File-based mutual TLS as App Mesh's howto-k8s-mtls-file-based sets it up: the backend's
listener requires a client certificate from the CA with the frontend's SAN; the frontend's
``backendDefaults`` client policy presents it and checks the backend's SAN. A client policy
expecting another SAN makes the calls fail (Envoy's 503) instead of reaching an unverified
peer. A TCP listener's TLS and a gateway listener's TLS are checked with real handshakes.
"""

from __future__ import annotations

import dataclasses
import http.client
import pathlib
import ssl
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshplane.model.snapshot import Endpoint
from meshplane.translate import NodeIdentity, build

from . import casefiles, certs, sidecars
from .test_envoy_tls import _context, _https, _plain
from .test_envoy_traffic import fetch, free_port, servers  # noqa: F401 - the servers fixture

pytestmark = pytest.mark.integration
Started = Callable[..., Any]


def _file(directory: pathlib.Path, role: str) -> dict[str, str]:
    return {
        "certificateChain": str(directory / f"{role}.pem"),
        "privateKey": str(directory / f"{role}-key.pem"),
    }


def _mesh(directory: pathlib.Path, expected_san: str) -> dict[str, Any]:
    ca = {"file": {"certificateChain": str(directory / "ca.pem")}}
    backend_tls = {
        "mode": "STRICT",
        "certificate": {"file": _file(directory, "server")},
        "validation": {
            "trust": ca,
            "subjectAlternativeNames": {"match": {"exact": ["client.example.com"]}},
        },
    }
    return {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            {
                "virtualNodeName": "vn-backend",
                "spec": {
                    "listeners": [
                        {"portMapping": {"port": 80, "protocol": "http"}, "tls": backend_tls},
                        {"portMapping": {"port": 90, "protocol": "tcp"}, "tls": backend_tls},
                    ],
                    "serviceDiscovery": {"dns": {"hostname": "server.example.com"}},
                },
            },
            {
                "virtualNodeName": "vn-frontend",
                "spec": {
                    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                    "serviceDiscovery": {"dns": {"hostname": "client.example.com"}},
                    "backends": [{"virtualService": {"virtualServiceName": "vs-backend"}}],
                    "backendDefaults": {
                        "clientPolicy": {
                            "tls": {
                                "certificate": {"file": _file(directory, "client")},
                                "validation": {
                                    "trust": ca,
                                    "subjectAlternativeNames": {"match": {"exact": [expected_san]}},
                                },
                            }
                        }
                    },
                },
            },
        ],
        "virtualServices": [
            {
                "virtualServiceName": "vs-backend",
                "spec": {"provider": {"virtualNode": {"virtualNodeName": "vn-backend"}}},
            }
        ],
    }


@pytest.fixture
def mesh(tmp_path: pathlib.Path, servers: dict[str, int]) -> Iterator[Started]:  # noqa: F811
    """Starts the backend's and the frontend's sidecars; yields a starter taking the SAN."""
    directory = tmp_path / "certs"
    certs.write_files(directory)
    running: list[subprocess.Popen[bytes]] = []

    def start(expected_san: str) -> dict[str, int]:
        ports = {"http": free_port(), "tcp": free_port(), "egress": free_port()}
        snapshot = casefiles.snapshot_of(_mesh(directory, expected_san))
        backend = NodeIdentity(
            mesh="demos",
            kind="virtualNode",
            name="vn-backend",
            egress_port=free_port(),
            ingress_ports={80: ports["http"], 90: ports["tcp"]},
            app_addresses={80: ("127.0.0.1", servers["blue"]), 90: ("127.0.0.1", servers["blue"])},
        )
        resources = build(snapshot, backend)
        assert resources.warnings == ()
        running.append(
            sidecars.start(
                resources, backend.node_id, [ports["http"], ports["tcp"]], tmp_path / "be.json"
            )
        )
        registered = {"vn-backend": (Endpoint(80, "127.0.0.1", ports["http"]),)}
        frontend = NodeIdentity(
            mesh="demos",
            kind="virtualNode",
            name="vn-frontend",
            egress_port=ports["egress"],
            ingress_ports={80: free_port()},
        )
        resources = build(dataclasses.replace(snapshot, endpoints=registered), frontend)
        assert resources.warnings == ()
        running.append(
            sidecars.start(resources, frontend.node_id, [ports["egress"]], tmp_path / "fe.json")
        )
        return ports

    yield start
    for process in running:
        sidecars.stop(process)


def test_file_based_mtls_between_two_sidecars(mesh: Started) -> None:
    """The frontend's sidecar presents its certificate and checks the backend's: 200."""
    ports = mesh("server.example.com")
    assert {fetch(ports["egress"], "http://vs-backend:80/") for _ in range(5)} == {(200, "blue")}


def test_a_client_policy_expecting_another_san_fails_the_calls(mesh: Started) -> None:
    """The backend's certificate is for server.example.com, the policy wants another: 503."""
    ports = mesh("other.example.com")
    status, _ = fetch(ports["egress"], "http://vs-backend:80/")
    assert status == 503


def test_a_tcp_listener_serves_mutual_tls_only(mesh: Started, tmp_path: pathlib.Path) -> None:
    """The tcp listener's tcp_proxy is behind the same TLS: mTLS passes, the rest is refused."""
    ports = mesh("server.example.com")
    directory = tmp_path / "certs"
    assert _https(ports["tcp"], _context(directory, "client")) == (200, "blue")
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _https(ports["tcp"], _context(directory, None))
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _plain(ports["tcp"])


def test_a_gateway_listener_serves_tls(
    tmp_path: pathlib.Path,
    servers: dict[str, int],  # noqa: F811
) -> None:
    """A STRICT gateway listener: TLS clients reach the backend, plaintext is refused."""
    directory = tmp_path / "certs"
    certs.write_files(directory)
    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [
            {
                "virtualNodeName": "vn-backend",
                "spec": {
                    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                    "serviceDiscovery": {"dns": {"hostname": "backend.example.com"}},
                },
            }
        ],
        "virtualServices": [
            {
                "virtualServiceName": "vs-backend",
                "spec": {"provider": {"virtualNode": {"virtualNodeName": "vn-backend"}}},
            }
        ],
        "virtualGateways": [
            {
                "virtualGatewayName": "vg",
                "spec": {
                    "listeners": [
                        {
                            "portMapping": {"port": 8443, "protocol": "http"},
                            "tls": {
                                "mode": "STRICT",
                                "certificate": {"file": _file(directory, "server")},
                            },
                        }
                    ]
                },
            }
        ],
        "gatewayRoutes": [
            {
                "virtualGatewayName": "vg",
                "gatewayRouteName": "all",
                "spec": {
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "action": {
                            "target": {"virtualService": {"virtualServiceName": "vs-backend"}}
                        },
                    }
                },
            }
        ],
        "endpoints": {
            "vn-backend": [{"listenerPort": 80, "address": "127.0.0.1", "port": servers["blue"]}]
        },
    }
    port = free_port()
    gateway = NodeIdentity(
        mesh="demos",
        kind="virtualGateway",
        name="vg",
        egress_port=free_port(),
        ingress_ports={8443: port},
    )
    resources = build(casefiles.snapshot_of(data), gateway)
    assert resources.warnings == ()
    process = sidecars.start(resources, gateway.node_id, [port], tmp_path / "vg.json")
    try:
        assert _https(port, _context(directory, None)) == (200, "blue")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _plain(port)
    finally:
        sidecars.stop(process)
