"""echo-frontend 2.0: the walkthrough's frontend; it reports which backend version answered.

Environment: ``BACKEND`` (e.g. ``http://vs-echo-backend:80``; when unset the
frontend answers alone), ``VERSION`` (default ``2.0``), ``PORT`` (set by
meshplane's runtime), ``HOST`` (default ``127.0.0.1``), ``HOSTNAME`` (the
``hostname`` reported; the runtime sets it to the replica's name, as a pod's).

The backend call uses ``urllib``, which honours ``HTTP_PROXY``: meshplane's
runtime points it at the replica's Envoy sidecar (its egress listener), the way
App Mesh's iptables rules sent a pod's outbound traffic to Envoy. The name
``vs-echo-backend`` is resolved by Envoy's routes, never by this process.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import socket
import urllib.error
import urllib.request


class EchoFrontend(http.server.BaseHTTPRequestHandler):
    """Answers GET with its own version and the backend's."""

    version = "2.0"
    hostname = ""
    backend_url: str | None = None
    opener: urllib.request.OpenerDirector | None = None  # built in main(), from the environment
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see echo_backend.py: no ~40 ms stall on reused connections

    def do_GET(self) -> None:
        """Call the backend (if any) and answer JSON."""
        body: dict[str, str | None] = {
            "backend": None,
            "hostname": self.hostname,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "version": self.version,
        }
        status = 200
        if self.backend_url and self.opener is not None:
            try:
                with self.opener.open(self.backend_url, timeout=20) as answer:
                    body["backend"] = json.loads(answer.read())["version"]
            except urllib.error.HTTPError as error:
                status, body["error"] = 502, f"backend answered {error.code}"
            except (OSError, ValueError, KeyError) as error:
                status, body["error"] = 502, f"backend unreachable: {error}"
        self._answer(status, body)

    def _answer(self, status: int, body: dict[str, str | None]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet per request: load loops would drown the runtime's log."""


def main() -> None:
    """Serve until killed."""
    EchoFrontend.version = os.environ.get("VERSION", "2.0")
    EchoFrontend.backend_url = os.environ.get("BACKEND") or None
    # A pod's hostname is its name; meshplane's runtime sets HOSTNAME to the replica's.
    EchoFrontend.hostname = os.environ.get("HOSTNAME") or socket.gethostname()
    # ProxyHandler reads HTTP_PROXY/NO_PROXY now, so build the opener after startup.
    EchoFrontend.opener = urllib.request.build_opener(urllib.request.ProxyHandler())
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    server = http.server.ThreadingHTTPServer((host, port), EchoFrontend)
    proxy = urllib.request.getproxies().get("http", "none")
    print(
        f"echo-frontend {EchoFrontend.version} listening on {host}:{port}, "
        f"backend {EchoFrontend.backend_url or 'none'} via proxy {proxy}",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
