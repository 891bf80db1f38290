"""front: an HTTP app that asks a TCP backend through its sidecar and reports the answer.

``GET /<word>`` opens a TCP connection to the backend, sends ``<word>`` and a newline, and
answers with the line that came back (``v1:<word>``), or 502 naming the failure. There is no
iptables in local mode, so the app cannot dial the backend's name: meshplane's runtime
announces a loopback port of the sidecar for each TCP backend in
``MESHPLANE_BACKEND_<NAME>_ADDR``, NAME being the virtual service's name upper-cased with every
other character turned into ``_``.

Environment: ``TCP_BACKEND`` (the virtual service's name), ``PORT`` (set by the runtime).
"""

from __future__ import annotations

import http.server
import os
import socket


def backend_address(service: str) -> tuple[str, int] | None:
    """Where the sidecar listens for ``service``, from the variable the runtime set."""
    word = "".join(c if c.isascii() and c.isalnum() else "_" for c in service.upper())
    value = os.environ.get(f"MESHPLANE_BACKEND_{word}_ADDR")
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return host, int(port)


class Front(http.server.BaseHTTPRequestHandler):
    """Answers ``GET /<word>`` with the TCP backend's echo of ``<word>``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """One TCP exchange per request (a fresh connection, so weights apply to each)."""
        address = backend_address(os.environ.get("TCP_BACKEND", ""))
        status, body = 502, b"no TCP backend announced"
        if address is not None:
            try:
                with socket.create_connection(address, timeout=10) as connection:
                    connection.sendall(self.path.lstrip("/").encode() + b"\n")
                    line = connection.makefile("rb").readline()
                status, body = (200, line.rstrip(b"\n")) if line else (502, b"connection closed")
            except OSError as error:
                body = f"backend unreachable: {error}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the runtime prefixes and shows stderr."""


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Front)
    server.serve_forever()


if __name__ == "__main__":
    main()
