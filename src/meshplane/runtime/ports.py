"""Free loopback ports for apps, sidecar listeners and admin interfaces.

The kernel picks a free port when we bind port 0; we release it at once and
hand it to the child that will bind it. Another process could take it in
between, which on a developer machine is rare; a port this allocator handed
out is never handed out twice, so replicas never collide with each other.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


class PortAllocator:
    """Hands out distinct free TCP ports on one address."""

    def __init__(self, host: str = LOOPBACK) -> None:
        """Allocate on ``host`` (loopback by default: meshplane's local mode never leaves it)."""
        self.host = host
        self._given: set[int] = set()

    def allocate(self) -> int:
        """A port that is free now and was not handed out before."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                port = int(probe.getsockname()[1])
            if port not in self._given:
                self._given.add(port)
                return port
        raise OSError(f"no free port on {self.host} after 100 tries")


def check_bindable(host: str, port: int) -> None:
    """Raise OSError naming ``host:port`` if a server could not listen there now.

    ``meshplane up`` asks before starting its control plane, so a port another process
    holds is refused instead of ``up`` applying to whatever answers there.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: a port left in TIME_WAIT by an earlier run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            message = f"cannot listen on {host}:{port}: {error.strerror}"
            raise OSError(error.errno, message) from None
