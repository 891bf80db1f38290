"""Processes and sockets for the xds integration tests: free ports, backends, Envoys."""

from __future__ import annotations

import http.server
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on right now (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NamedHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and the class attribute ``answer``."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real app behind Envoy
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms stalls
    answer = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging."""


class Backend(http.server.ThreadingHTTPServer):
    """A threaded test backend with a deep accept queue.

    socketserver's default backlog of 5 overflows when the test process is
    starved of CPU; Linux then drops the SYN and Envoy's 1 s connect timeout
    fires before the retransmit, which would show up as a 503 unrelated to xDS.
    """

    request_queue_size = 256


class EnvoyProcess:
    """A real Envoy started from meshplane's bootstrap; the fixture always kills it."""

    def __init__(self, process: subprocess.Popen[bytes], admin_path: Path, log: Path) -> None:
        self.process = process
        self.admin_path = admin_path
        self.log = log

    def admin_url(self, deadline_s: float = 30.0) -> str:
        """The admin base URL, once Envoy has written its bound address."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.admin_path.exists() and self.admin_path.read_text().strip():
                return "http://" + self.admin_path.read_text().strip()
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.02)  # polling a file Envoy writes; no event to wait on
        raise TimeoutError("envoy did not write its admin address")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
