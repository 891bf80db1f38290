"""HTTP limits over raw sockets: slowloris and idle clients are cut, the cap evicts, errors render.

Each test runs an in-process control plane with short timeouts and talks to it
with plain sockets, as an attacker would. Waiting for the server to close a
socket is waiting for an event (``recv`` returns ``b""``), not a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshplane.envoy import resources
from meshplane.testing import ControlPlane
from meshplane.testing.ads import FakeAdsClient

SAFETY = 30.0
"""A socket wait that outlives this failed: the server never closed or answered."""


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane whose HTTP timeouts are half a second and whose cap is 8 connections."""
    with ControlPlane(
        tmp_path / "data",
        http_header_timeout=0.5,
        http_idle_timeout=0.5,
        http_body_timeout=0.5,
        http_max_connections=8,
    ) as running:
        yield running


def _connect(plane: ControlPlane) -> socket.socket:
    host, port = plane.endpoint.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=SAFETY)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def _signed_head(plane: ControlPlane, method: str, path: str, body: bytes) -> bytes:
    """A request head signed by the administrator for ``body`` (which may never be sent)."""
    signer = plane.signer()
    assert signer is not None
    headers = signer.sign(method, plane.endpoint + path, body, {"Content-Type": "application/json"})
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _healthz(plane: ControlPlane) -> int:
    with _connect(plane) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status, _, body = _response(_read_all(sock))
    assert json.loads(body)["status"] == "ok"
    return status


def _revision(plane: ControlPlane) -> int:
    with _connect(plane) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        _, _, body = _response(_read_all(sock))
    return int(json.loads(body)["revision"])


def test_a_slowloris_head_is_cut_while_healthz_answers(plane: ControlPlane) -> None:
    """A request head that never completes is closed unanswered; /healthz answers meanwhile."""
    with _connect(plane) as slow:
        slow.sendall(b"GET /v20190125/meshes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: a")
        assert _healthz(plane) == 200
        assert _read_all(slow) == b""


def test_an_idle_connection_is_closed(plane: ControlPlane) -> None:
    """A connection that sends nothing is closed after the idle timeout."""
    with _connect(plane) as idle:
        assert _read_all(idle) == b""


def test_a_slow_body_is_refused_in_app_mesh_form(plane: ControlPlane) -> None:
    """A body that does not arrive in time is a 400 BadRequestException naming the limit."""
    with _connect(plane) as sock:
        sock.sendall(_signed_head(plane, "PUT", "/v20190125/meshes", b'{"meshName": "slow"}'))
        sock.sendall(b"{")
        status, headers, body = _response(_read_all(sock))
    assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException")
    assert json.loads(body) == {
        "__type": "BadRequestException",
        "message": "The request body did not arrive within 0.5 seconds",
    }


def test_oversize_request_line_and_headers_are_app_mesh_400s(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    """Request lines and headers over the limit, and garbage, get App Mesh 400s, no traceback."""
    caplog.set_level(logging.DEBUG)
    requests = [
        b"GET /v20190125/meshes/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 10000 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ]
    for raw in requests:
        with _connect(plane) as sock:
            sock.sendall(raw)
            status, headers, body = _response(_read_all(sock))
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException")
        assert json.loads(body)["message"].startswith(
            "The request is malformed or over meshplane's limits: "
        )
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_oversize_bodies_are_app_mesh_400s_on_every_endpoint(plane: ControlPlane) -> None:
    """A body over 4 MiB is a 400 BadRequestException on the API and the meshplane endpoints."""
    big = b" " * (4 * 1024 * 1024 + 1)
    for method, path in (
        ("PUT", "/v20190125/meshes"),
        ("POST", "/meshplane/v1/manifests/apply"),
        ("PUT", "/meshplane/v1/meshes/m/virtualNodes/vn/endpoints"),
    ):
        with _connect(plane) as sock:
            sock.sendall(_signed_head(plane, method, path, big))
            # The server may answer and close before the whole body is sent.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(big)
            status, headers, body = _response(_read_all(sock))
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException"), path
        assert json.loads(body)["message"] == (
            "The request body is larger than the 4194304 bytes meshplane accepts"
        )


def test_an_unsigned_body_is_refused_before_the_server_reads_it(plane: ControlPlane) -> None:
    """Without a known key the 403 arrives while the announced 3 MB body is still unsent."""
    signer = plane.signer()
    assert signer is not None
    forged = _signed_head(plane, "PUT", "/v20190125/meshes", b"{}").replace(
        signer.credentials.access_key.encode(), b"AKIDNOTKNOWN0000"
    )
    refused = []
    for head in (b"", forged):
        with _connect(plane) as sock:
            sock.sendall(
                b"PUT /v20190125/meshes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
                if not head
                else head.replace(b"Content-Length: 2\r\n", b"Content-Length: 3000000\r\n")
            )
            status, headers, _ = _response(_read_all(sock))
        refused.append((status, headers["x-amzn-errortype"]))
    assert refused == [
        (403, "MissingAuthenticationTokenException"),
        (403, "UnrecognizedClientException"),
    ]


def test_at_the_cap_idle_connections_are_evicted_and_xds_stays_reachable(
    tmp_path: Path,
) -> None:
    """Eight idle sockets fill the cap; /healthz still answers, evicting the oldest; xDS serves."""
    with ControlPlane(tmp_path / "data", http_max_connections=8) as plane:  # 60 s idle timeout
        _fill_the_cap(plane)


def _fill_the_cap(plane: ControlPlane) -> None:
    token = plane.proxy_credential("mesh/m/virtualNode/vn")  # before the cap fills
    idle = [_connect(plane) for _ in range(8)]
    try:
        assert _healthz(plane) == 200
        assert idle[0].recv(1) == b""

        async def xds() -> int:
            async with FakeAdsClient(
                plane.xds_port, "mesh/m/virtualNode/vn", credential=token
            ) as ads:
                await ads.request(resources.CLUSTER)
                response = await asyncio.wait_for(ads.receive(), SAFETY)
                return len(response.resources)

        assert plane.plane is not None
        assert asyncio.run(xds()) == 0
    finally:
        for sock in idle:
            sock.close()


def test_a_body_announced_over_the_limit_is_refused_unread(plane: ControlPlane) -> None:
    """A signed 5 MB Content-Length gets the limit's 400 before any body byte; nothing written."""
    before = _revision(plane)
    big = b" " * 5_000_000
    for method, path in (
        ("PUT", "/v20190125/meshes"),
        ("POST", "/meshplane/v1/manifests/apply"),
    ):
        with _connect(plane) as sock:
            sock.sendall(_signed_head(plane, method, path, big))  # the body never follows
            status, headers, body = _response(_read_all(sock))
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException"), path
        assert json.loads(body)["message"] == (
            "The request body is larger than the 4194304 bytes meshplane accepts"
        )
    assert _revision(plane) == before
