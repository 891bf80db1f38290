"""An app that calls a TCP backend by name: ``GET /`` answers with what the backend said.

Env: ``PORT`` (``meshplane up`` sets it), ``TARGET`` (``host:port`` of the TCP echo). No proxy
is read: under ``--isolation netns`` iptables sends the connection to the sidecar. Answers
``{"answer": "<line>"}`` or a 502 ``{"error": "..."}``. Standard library only.
"""

from __future__ import annotations

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Caller(BaseHTTPRequestHandler):
    """One TCP round trip to the target per GET."""

    def do_GET(self) -> None:
        host, _, port = os.environ["TARGET"].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(b"ping\n")
                body, status = {"answer": connection.makefile("rb").readline().decode()}, 200
        except OSError as error:
            body, status = {"error": repr(error)}, 502
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Caller)
    print(f"tcp-caller on 127.0.0.1:{server.server_port} → {os.environ['TARGET']}", flush=True)
    server.serve_forever()
