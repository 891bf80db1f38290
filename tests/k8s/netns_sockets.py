"""Sockets opened inside a pod's network namespace by this (host-side) test process.

A thread may switch its own network namespace with ``setns(2)``; a socket
belongs to the namespace of the thread that created it, for its whole life.
So a dedicated short-lived thread enters ``/run/netns/<name>``, creates the
socket and ends, and the host side keeps using the socket. That gives the
fake kubelet two things without adding an address to the host's namespace:

* :func:`call` — run a function (a readiness probe, an admin request) with
  its sockets inside the pod;
* :class:`LoopbackRelay` — a listener on the pod's ``127.0.0.1:<port>``
  whose connections are piped to the host's ``127.0.0.1:<port>``: the way an
  injected Envoy's xDS cluster (``--xds-address 127.0.0.1:<port>``) reaches
  the test's ``meshplane k8s`` with its bootstrap left as the injector wrote it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from interception import pods

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def call(netns: str, function: Callable[[], T]) -> T:
    """``function()`` run in a fresh thread that has entered network namespace ``netns``."""
    result: list[T] = []
    failure: list[BaseException] = []

    def inside() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
        finally:
            os.close(fd)
        try:
            result.append(function())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=inside, name=f"in-{netns}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class LoopbackRelay:
    """Accepts on ``127.0.0.1:port`` inside ``netns``; pipes each connection to the host's."""

    def __init__(self, netns: str, port: int) -> None:
        self._port = port

        def listen() -> socket.socket:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(16)
            return listener

        self._listener = call(netns, listen)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name=f"relay-{netns}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self._port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._open += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=pods.pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        """Stop accepting and cut every relayed connection."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()
