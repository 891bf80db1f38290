"""echo-backend: the walkthrough's backend, answering ``{"version": "<VERSION>"}``.

Environment: ``VERSION`` (``1.0`` for blue, ``2.0`` for green), ``FAILURE_RATE``
(percent of requests answered with a 500, to watch retries and error counts),
``PORT`` (set by meshplane's runtime) and ``HOST`` (default ``127.0.0.1``).
Standard library only, so it runs with any Python >= 3.11.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import sys


def _failure_rate(text: str) -> float:
    """FAILURE_RATE as a percentage 0..100; anything else stops the app with a clear message."""
    try:
        rate = float(text)
    except ValueError:
        sys.exit(f"echo-backend: FAILURE_RATE must be a number 0..100, got {text!r}")
    if not 0 <= rate <= 100:
        sys.exit(f"echo-backend: FAILURE_RATE must be a number 0..100, got {text!r}")
    return rate


class EchoBackend(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the configured version, failing FAILURE_RATE percent of them."""

    version = "1.0"
    failure_rate = 0.0
    chance: random.Random | None = None  # seeded in main()
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream connections expect
    # Headers and body go out in two writes; with Nagle on, a reused connection waits ~40 ms
    # for the peer's delayed ACK before sending the body.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        """Answer with the version, or an injected 500."""
        if self.chance is not None and self.chance.random() * 100 < self.failure_rate:
            self._answer(500, {"version": self.version, "error": "injected failure"})
        else:
            self._answer(200, {"version": self.version})

    def _answer(self, status: int, body: dict[str, str]) -> None:
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
    EchoBackend.version = os.environ.get("VERSION", "1.0")
    EchoBackend.failure_rate = _failure_rate(os.environ.get("FAILURE_RATE", "0"))
    EchoBackend.chance = random.Random()
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    server = http.server.ThreadingHTTPServer((host, port), EchoBackend)
    print(f"echo-backend {EchoBackend.version} listening on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
