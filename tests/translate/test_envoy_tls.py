"""Real handshakes against a real Envoy running the translated listener TLS (file certificates).

One sidecar for a virtual node with three listeners, each on its own bound port
in front of one app: STRICT (server certificate only), PERMISSIVE (the same, or
plaintext) and STRICT with a validation (mutual TLS: the client must present a
certificate from the trusted CA carrying an accepted SAN). Clients are Python's
``ssl`` and raw sockets, so every refusal is the handshake's or Envoy's own.
"""

from __future__ import annotations

import http.client
import pathlib
import socket
import ssl
from collections.abc import Iterator

import pytest

from meshplane.kit.clock import system_clock
from meshplane.pki import authority
from meshplane.translate import NodeIdentity, build

from . import casefiles, certs, sidecars
from .test_envoy_traffic import free_port, servers  # noqa: F401 - the servers fixture

pytestmark = pytest.mark.integration


def _spec(directory: pathlib.Path) -> dict[str, object]:
    certificate = {
        "file": {
            "certificateChain": str(directory / "server.pem"),
            "privateKey": str(directory / "server-key.pem"),
        }
    }
    mutual = {
        "trust": {"file": {"certificateChain": str(directory / "ca.pem")}},
        "subjectAlternativeNames": {"match": {"exact": ["client.example.com"]}},
    }
    return {
        "listeners": [
            {
                "portMapping": {"port": 8080, "protocol": "http"},
                "tls": {"mode": "STRICT", "certificate": certificate},
            },
            {
                "portMapping": {"port": 8081, "protocol": "http"},
                "tls": {"mode": "PERMISSIVE", "certificate": certificate},
            },
            {
                "portMapping": {"port": 8082, "protocol": "http"},
                "tls": {"mode": "STRICT", "certificate": certificate, "validation": mutual},
            },
        ],
        "serviceDiscovery": {"dns": {"hostname": "server.example.com"}},
    }


@pytest.fixture
def secured(tmp_path: pathlib.Path, servers: dict[str, int]) -> Iterator[dict[int, int]]:  # noqa: F811
    """A sidecar serving the three listeners; yields listener port → bound port."""
    certs.write_files(tmp_path / "certs")
    data = {
        "mesh": {"meshName": "demos", "spec": {}},
        "virtualNodes": [{"virtualNodeName": "vn-secure", "spec": _spec(tmp_path / "certs")}],
    }
    snapshot = casefiles.snapshot_of(data)
    bound = {port: free_port() for port in (8080, 8081, 8082)}
    node = NodeIdentity(
        mesh="demos",
        kind="virtualNode",
        name="vn-secure",
        egress_port=free_port(),
        ingress_ports=bound,
        app_addresses=dict.fromkeys(bound, ("127.0.0.1", servers["blue"])),
    )
    resources = build(snapshot, node)
    assert resources.warnings == ()
    process = sidecars.start(resources, node.node_id, bound.values(), tmp_path / "b.json")
    yield bound
    sidecars.stop(process)


def _context(directory: pathlib.Path, client: str | None) -> ssl.SSLContext:
    """A client context trusting the test CA, presenting ``client``'s certificate if given."""
    context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    context.check_hostname = True
    if client is not None:
        context.load_cert_chain(directory / f"{client}.pem", directory / f"{client}-key.pem")
    return context


def _https(port: int, context: ssl.SSLContext) -> tuple[int, str]:
    """GET / over TLS, checking the server is server.example.com."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="server.example.com") as wrapped,
    ):
        wrapped.sendall(b"GET / HTTP/1.1\r\nHost: vn-secure\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(wrapped)  # type: ignore[arg-type]
        response.begin()
        return response.status, response.read().decode()


def _plain(port: int) -> tuple[int, str]:
    """GET / in plaintext."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": "vn-secure"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_strict_serves_tls_and_refuses_plaintext(
    secured: dict[int, int], tmp_path: pathlib.Path
) -> None:
    """STRICT: a TLS client validating server.example.com gets the app; plaintext gets nothing."""
    directory = tmp_path / "certs"
    assert _https(secured[8080], _context(directory, None)) == (200, "blue")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _plain(secured[8080])


def test_permissive_serves_tls_and_plaintext_on_one_port(
    secured: dict[int, int], tmp_path: pathlib.Path
) -> None:
    """PERMISSIVE: the same port answers a TLS client and a plaintext one."""
    directory = tmp_path / "certs"
    assert _https(secured[8081], _context(directory, None)) == (200, "blue")
    assert _plain(secured[8081]) == (200, "blue")


def test_mutual_tls_needs_a_trusted_client_certificate_with_an_accepted_san(
    secured: dict[int, int], tmp_path: pathlib.Path
) -> None:
    """mTLS: no certificate, an untrusted one, or a trusted one with another SAN: refused."""
    directory = tmp_path / "certs"
    assert _https(secured[8082], _context(directory, "client")) == (200, "blue")
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _https(secured[8082], _context(directory, None))
    stranger = authority.load_or_create(tmp_path / "stranger-ca", system_clock)
    issued = stranger.issue("client.example.com", 3600)
    (directory / "stranger.pem").write_bytes(issued.chain_pem)
    (directory / "stranger-key.pem").write_bytes(issued.key_pem)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _https(secured[8082], _context(directory, "stranger"))
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _https(secured[8082], _context(directory, "server"))  # trusted, SAN server.example.com
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _plain(secured[8082])
