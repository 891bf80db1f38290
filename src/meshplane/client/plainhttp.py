"""One HTTP/1.1 exchange over a plain socket, for ``http://`` URLs that no proxy applies to.

``urllib.request`` imports ``http.client``, ``email``, ``ssl`` and ``tempfile``: ~50 ms of
CPU before a CLI command sends its first byte, half a client command's start-up budget.
The control plane is nearly always reached over plain HTTP on a known host, so
:class:`~meshplane.client.transport.Transport` sends those requests here — one request per
connection (``Connection: close``), the body framed by ``Content-Length`` or chunked, as
the server frames it — and leaves ``https://`` and proxies to urllib. The request carries
the headers urllib would send for the same call (``Host`` as the URL names it, the
signed ones, ``Content-Length`` when there is a body), so a signature reads the same.
Redirects are not followed: the control plane sends none.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import BinaryIO
from urllib.parse import urlsplit


def applies(url: str, trust_env: bool) -> bool:
    """Whether ``url`` is plain HTTP and no ``*_proxy`` variable could route it elsewhere."""
    if not url.startswith("http://"):
        return False
    if not trust_env:
        return True
    return not any(name.lower().endswith("_proxy") and v for name, v in os.environ.items())


def _read_chunked(reader: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = reader.readline(65537)
        if not size_line:
            raise ConnectionResetError("the connection closed inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(_exactly(reader, size))
        reader.readline(65537)  # the chunk's CRLF


def _exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise ConnectionResetError(f"the connection closed after {len(data)} of {size} bytes")
    return data


def exchange(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> tuple[int, bytes]:
    """Send one request to ``url`` and return the answer's status and body (OSError if none)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    hostname = parts.hostname or ""
    # An ASCII name goes as bytes (getaddrinfo takes either; typeshed says str): a str is
    # IDNA-encoded, and the idna codec's import costs a CLI command more than connecting.
    address = hostname.encode("ascii") if hostname.isascii() else hostname
    with socket.create_connection((address, parts.port or 80), timeout) as sock:  # type: ignore[arg-type]
        sock.sendall(request)
        with sock.makefile("rb") as reader:
            while True:
                status_line = reader.readline(65537)
                words = status_line.split(None, 2)
                if len(words) < 2 or not words[0].startswith(b"HTTP/"):
                    raise ConnectionResetError(f"not an HTTP answer: {status_line[:80]!r}")
                status = int(words[1])
                fields: dict[str, str] = {}
                while (line := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    fields[name.strip().lower()] = value.strip()
                if status >= 200:
                    break  # 1xx (100 Continue): the real answer follows
            if method == "HEAD" or status in (204, 304):
                return status, b""
            if "chunked" in fields.get("transfer-encoding", "").lower():
                return status, _read_chunked(reader)
            if "content-length" in fields:
                return status, _exactly(reader, int(fields["content-length"]))
            return status, reader.read()
