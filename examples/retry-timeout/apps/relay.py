"""relay: forwards every GET to ``BACKEND`` through the sidecar and answers what came back.

Status and body are passed on unchanged, so a caller sees exactly what the sidecar's route
delivered after its retries and timeouts (504 ``upstream request timeout`` when a timeout
fired). Environment: ``BACKEND`` (e.g. ``http://flaky.retry.svc.cluster.local:8080``),
``PORT``, and ``HTTP_PROXY`` (set by meshplane's runtime to the sidecar's egress).
"""

from __future__ import annotations

import http.server
import os
import urllib.error
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler())  # reads HTTP_PROXY


class Relay(http.server.BaseHTTPRequestHandler):
    """One backend call per request."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """Relay the path and query to the backend."""
        url = os.environ["BACKEND"] + self.path
        try:
            with OPENER.open(url, timeout=60) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except OSError as error:
            status, body = 502, f"backend unreachable: {error}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet per request."""


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Relay)
    server.serve_forever()


if __name__ == "__main__":
    main()
