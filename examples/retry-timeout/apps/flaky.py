"""flaky: an HTTP backend that fails or stalls on demand and counts the attempts it saw.

Requests are told apart by ``key`` (a query parameter), so each experiment counts alone:

* ``…/fail?key=K&times=N&code=C`` answers ``C`` (default 503) to the first ``N`` attempts of
  ``K`` and 200 afterwards, the body naming the attempt: ``{"key": K, "attempt": 3}``;
* ``…/delay?key=K&ms=M`` waits ``M`` milliseconds, then answers 200;
* ``…/count?key=K`` answers how many attempts of ``K`` arrived so far.

Only the last path segment counts (``/retry/fail`` and ``/fail`` are the same action), so
the router's prefixes choose the policy and the app the behaviour. Environment: ``PORT``.
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import threading
import time
import urllib.parse

ATTEMPTS: collections.Counter[str] = collections.Counter()
"""Attempts seen per key (guarded by LOCK: the server answers on a thread per request)."""
LOCK = threading.Lock()


class Flaky(http.server.BaseHTTPRequestHandler):
    """Fails, delays or counts, as the request asks."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        """One attempt: counted under its key, then answered as its action says."""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        key, action = query.get("key", ""), url.path.rstrip("/").rsplit("/", 1)[-1]
        if action == "count":
            with LOCK:
                self._answer(200, {"key": key, "attempts": ATTEMPTS[key]})
            return
        with LOCK:
            ATTEMPTS[key] += 1
            attempt = ATTEMPTS[key]
        if action == "fail" and attempt <= int(query.get("times", "0")):
            self._answer(int(query.get("code", "503")), {"key": key, "attempt": attempt})
            return
        if action == "delay":
            time.sleep(int(query.get("ms", "0")) / 1000)
        self._answer(200, {"key": key, "attempt": attempt})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet per request."""


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Flaky)
    server.serve_forever()


if __name__ == "__main__":
    main()
