"""color: answers every GET with ``{"color", "host", "path"}`` as it received them.

Shows what a gateway delivered: the prefix rewrite (``path``) and whether the client's Host
was kept (``host``). Environment: ``COLOR`` and ``PORT`` (set by meshplane's runtime).
Standard library only.
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
        body = json.dumps(
            {
                "color": os.environ.get("COLOR", "none"),
                "host": self.headers["Host"],
                "path": self.path,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: meshplane up prefixes and shows what apps print."""


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Color)
    server.serve_forever()


if __name__ == "__main__":
    main()
