"""Plain http:// over a socket: the request urllib would send, every framing of the answer."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from meshplane.client import plainhttp, transport


class _Canned:
    """A one-shot TCP server: reads one request, answers ``answer`` bytes, closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.request = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.request:
                self.request += connection.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            while length and len(body) < length[0]:
                body += connection.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            connection.sendall(self.answer)

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.listener.close()


@pytest.fixture
def canned() -> Iterator[list[_Canned]]:
    """Servers made by the test, closed after it."""
    made: list[_Canned] = []
    yield made
    for server in made:
        server.close()


def _exchange(
    canned: list[_Canned], answer: bytes, method: str = "GET", body: bytes | None = None
) -> tuple[tuple[int, bytes], bytes]:
    server = _Canned(answer)
    canned.append(server)
    url = f"http://127.0.0.1:{server.port}/meshplane/v1/objects/vs?namespace=demos"
    got = plainhttp.exchange(method, url, {"content-type": "application/json"}, body, 5)
    server.thread.join(timeout=10)
    return got, server.request


def test_the_request_carries_the_host_the_url_names_and_its_body(
    canned: list[_Canned],
) -> None:
    """Request line, Host as in the URL, Content-Length, the given headers, Connection: close."""
    answer = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"
    got, request = _exchange(canned, answer, "POST", b'{"a": 1}')
    assert got == (201, b"{}")
    port = canned[0].port
    assert request == (
        b"POST /meshplane/v1/objects/vs?namespace=demos HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + b"Accept-Encoding: identity\r\nContent-Length: 8\r\n"
        b"content-type: application/json\r\nConnection: close\r\n\r\n"
        b'{"a": 1}'
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", (200, b"hello")),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n",
            (200, b"hello"),
        ),
        (b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nuntil close", (404, b"until close")),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            (200, b"x"),
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"")),
    ],
)
def test_every_framing_of_the_answer_is_read(
    canned: list[_Canned], answer: bytes, expected: tuple[int, bytes]
) -> None:
    """Content-Length, chunked (with an extension and a trailer), until close, 1xx, 204."""
    assert _exchange(canned, answer)[0] == expected


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"SSH-2.0-OpenSSH\r\n",
        b"",
    ],
)
def test_a_cut_or_foreign_answer_is_a_connection_error(
    canned: list[_Canned], answer: bytes
) -> None:
    """A body shorter than announced, a non-HTTP peer, nothing at all: ConnectionResetError."""
    with pytest.raises(ConnectionResetError):
        _exchange(canned, answer)


def test_proxies_and_https_are_left_to_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any *_proxy variable (when the environment is trusted) or https:// means urllib."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    assert plainhttp.applies("http://127.0.0.1:9080", trust_env=True)
    assert not plainhttp.applies("https://127.0.0.1:9080", trust_env=True)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert not plainhttp.applies("http://127.0.0.1:9080", trust_env=True)
    assert plainhttp.applies("http://127.0.0.1:9080", trust_env=False)


def test_a_refused_connection_is_unreachable_in_urllibs_words() -> None:
    """Nothing listening: UnreachableError naming the request and errno 111, as before."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = transport.Transport(f"http://127.0.0.1:{port}")
    with pytest.raises(
        OSError, match=rf"^GET http://127.0.0.1:{port}/x: \[Errno 111\] Connection refused$"
    ):
        sender.send("GET", "/x")
