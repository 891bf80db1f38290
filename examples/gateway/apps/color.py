"""color: answers every GET with ``{"color", "host", "path"}`` as it received them.

Shows what a gateway delivered: the prefix rewrite (``path``) and whether the client's Host
was kept (``host``). ``GET /greet`` instead calls the greeter's ``SayHello`` over gRPC and
answers ``{"greeting": …}``: grpcio honours the ``http_proxy`` meshplane's runtime sets, so the
call tunnels (HTTP CONNECT) through this replica's sidecar, which routes it to the greeter.
Environment: ``COLOR``, ``GREETER`` (the greeter's ``<service>:<port>``) and ``PORT``.
"""

from __future__ import annotations

import http.server
import json
import os


class Color(http.server.BaseHTTPRequestHandler):
    """One JSON answer per GET."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path == "/greet":
            self._answer(_greet())
            return
        self._answer(
            {
                "color": os.environ.get("COLOR", "none"),
                "host": self.headers["Host"],
                "path": self.path,
            }
        )

    def _answer(self, answer: dict[str, str]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: meshplane up prefixes and shows what apps print."""


def _greet() -> dict[str, str]:
    """One SayHello to $GREETER through the sidecar (grpcio reads http_proxy itself)."""
    import grpc  # noqa: PLC0415 - only /greet needs it (a meshplane dependency)

    with grpc.insecure_channel(os.environ.get("GREETER", "")) as channel:
        try:
            answer = channel.unary_unary("/helloworld.Greeter/SayHello")(b"", timeout=10)
        except grpc.RpcError as error:
            return {"error": str(error.code())}
    return {"greeting": bytes(answer).decode()}


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Color)
    server.serve_forever()


if __name__ == "__main__":
    main()
