"""line_echo: a plain TCP server answering every line with ``<VERSION>:<line>``.

So a caller sees which version its connection reached. Environment: ``PORT`` (set by
meshplane's runtime), ``VERSION``.
"""

from __future__ import annotations

import os
import socketserver


class LineEcho(socketserver.StreamRequestHandler):
    """Echo each line of one connection, prefixed with this server's version."""

    def handle(self) -> None:
        """Answer line by line until the caller closes."""
        prefix = f"{os.environ.get('VERSION', 'v0')}:".encode()
        for line in self.rfile:
            self.wfile.write(prefix + line)


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", int(os.environ["PORT"])), LineEcho) as s:
        s.serve_forever()


if __name__ == "__main__":
    main()
