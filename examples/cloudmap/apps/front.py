"""front: ``GET /<service>`` calls ``http://<service>.$DOMAIN:8080/`` and answers what it said.

The call goes through ``HTTP_PROXY``, which meshplane's runtime points at the replica's Envoy
sidecar, so the virtual service's routes and its nodes' Cloud Map instances decide who
answers. A failed call answers 502 with the reason. Environment: ``DOMAIN``, ``PORT``.
"""

from __future__ import annotations

import http.server
import json
import os
import urllib.error
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler())  # HTTP_PROXY, as set


class Front(http.server.BaseHTTPRequestHandler):
    """Forwards one GET to the named virtual service."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Call the service named by the path; answer its JSON, or 502."""
        service = self.path.strip("/").split("/")[0]
        url = f"http://{service}.{os.environ['DOMAIN']}:8080/"
        status, body = 200, b""
        try:
            with OPENER.open(url, timeout=20) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            status, body = 502, json.dumps({"error": f"backend answered {error.code}"}).encode()
        except OSError as error:
            status, body = 502, json.dumps({"error": f"backend unreachable: {error}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: meshplane up prefixes and shows what apps print."""


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Front)
    server.serve_forever()


if __name__ == "__main__":
    main()
