"""colorapp: answers every GET with ``{"color", "hostname"}``: which node's replica answered.

Environment: ``COLOR``, ``PORT`` and ``HOSTNAME`` (the replica's name), set by meshplane's
runtime. Standard library only.
"""

from __future__ import annotations

import http.server
import json
import os


class ColorApp(http.server.BaseHTTPRequestHandler):
    """One JSON answer per GET."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Say which color and which replica this is."""
        body = json.dumps(
            {"color": os.environ.get("COLOR", "none"), "hostname": os.environ.get("HOSTNAME")}
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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), ColorApp)
    server.serve_forever()


if __name__ == "__main__":
    main()
