"""One event-loop wake-up per burst of gRPC completions, not one per completion.

grpc.aio hands completions to asyncio through a socket pair: its poller thread
writes one byte per completion (a message written, a message read), and the
loop's reader for that socket reads *one* byte and then runs every completion
queued so far. A push to 200 Envoys queues hundreds of completions at once, so
the first wake-up runs them all and leaves hundreds of bytes behind; each one
then costs a whole loop iteration (``epoll_wait``, a one-byte ``recv``, a look
at an empty queue) for nothing. ``strace`` of a fan-out showed ~7 such
iterations per xDS message.

:func:`coalesce_wakeups` wraps that reader: it first takes all but one of the
bytes waiting (peeked, so it never blocks), then lets grpc read the last one and
run the queue. Nothing is lost: grpc queues a completion *before* writing its
byte, so every byte taken belongs to a completion already queued, which the run
that follows handles. Bytes written after the peek stay, and wake the loop again.

This reaches into two internals (the selector loop's reader map and grpc's
poller callback); when either is not found as expected, nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

_POLLER_CALLBACK = "PollerCompletionQueue._handle_events"
"""The qualified name of grpc.aio's reader callback (grpc >= 1.32)."""
_MAX_TAKEN = 65536
"""Bytes taken per wake-up at most; any more wake the loop again."""

_log = logging.getLogger(__name__)


class _Coalesced:
    """grpc's reader callback, run after all but one waiting byte are taken."""

    def __init__(self, sock: socket.socket, handle: Callable[[], Any]) -> None:
        self.sock = sock
        self.handle = handle
        self._scratch = bytearray(_MAX_TAKEN)

    def __call__(self) -> None:
        try:
            waiting = self.sock.recv_into(
                self._scratch, _MAX_TAKEN, socket.MSG_PEEK | socket.MSG_DONTWAIT
            )
        except (BlockingIOError, InterruptedError):
            waiting = 0
        if waiting > 1:
            self.sock.recv_into(self._scratch, waiting - 1)
        try:
            self.handle()
        except RuntimeError as error:
            # grpc hands a completion of a call made on another loop to that loop; once
            # that loop is closed (an earlier asyncio.run), nothing can take it any more.
            if str(error) != "Event loop is closed":
                raise
            _log.debug("xds: a grpc completion for a closed event loop was dropped")


def _is_poller(callback: object) -> bool:
    func = getattr(callback, "func", callback)  # a functools.partial in grpc 1.6x+
    return getattr(func, "__qualname__", "") == _POLLER_CALLBACK


def coalesce_wakeups(loop: asyncio.AbstractEventLoop) -> bool:
    """Wrap grpc.aio's completion reader on ``loop``; whether it is wrapped now.

    Call once grpc.aio is running on ``loop`` (after a server started); calling it
    again is harmless.
    """
    selector = getattr(loop, "_selector", None)
    get_map = getattr(selector, "get_map", None)
    if get_map is None:
        return False
    for key in list(get_map().values()):
        reader = key.data[0] if isinstance(key.data, tuple) and key.data else None
        callback = getattr(reader, "_callback", None)
        if isinstance(callback, _Coalesced):
            return True
        if not _is_poller(callback) or bool(getattr(reader, "_args", None)):
            continue
        sock = key.fileobj
        if not isinstance(sock, socket.socket):
            continue
        assert callback is not None
        loop.remove_reader(sock)
        loop.add_reader(sock, _Coalesced(sock, callback))
        return True
    _log.debug("xds: grpc.aio's completion reader not found; wake-ups left as they are")
    return False
