"""Wake feed consumers when the revision moves: the notification half of a :class:`Feed`.

A backend calls :meth:`Waker.notify` with the newest revision after each commit
(SQLite from the writer's thread; a PostgreSQL backend would call it from the
thread that receives ``NOTIFY``). Consumers ``await`` :meth:`Waker.wait` on their
own event loop. Only the newest revision is kept: two commits before a consumer
wakes are one wake-up, which is all a consumer that reads
``changes_since(last_seen)`` needs.

A waker also serves as a plain counter (:meth:`Waker.bump`): the store counts the
commits that wrote manifest objects, which have no revision of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Waker:
    """The newest notified revision, and the event loops waiting for it to pass a number."""

    def __init__(self) -> None:
        """Start at revision 0; the backend notifies its current revision when it opens."""
        self._lock = threading.Lock()
        self._revision = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = []

    @property
    def revision(self) -> int:
        """The newest revision notified so far."""
        return self._revision

    def notify(self, revision: int) -> None:
        """Record that ``revision`` is committed and wake every waiter; safe from any thread."""
        with self._lock:
            if revision <= self._revision:
                return
            self._revision = revision
            waiters, self._waiters = self._waiters, []
        _wake(waiters, revision)

    def bump(self) -> None:
        """Count one more event and wake every waiter (a waker used as a counter)."""
        with self._lock:
            self._revision += 1
            waiters, self._waiters = self._waiters, []
        _wake(waiters, self._revision)

    async def wait(self, after_revision: int) -> int:
        """The newest revision once it is past ``after_revision`` (at once if it already is)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._revision > after_revision:
                return self._revision
            future: asyncio.Future[int] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
        try:
            await future
            # Later commits may have landed while the wake-up travelled: report the newest.
            return self._revision
        finally:
            # A cancelled waiter leaves no entry behind for notify() to resolve.
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(entry)


def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]], at: int) -> None:
    for loop, future in waiters:
        # The waiter's loop owns its future: resolve it there, not on this thread.
        if not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, future, at)


def _resolve(future: asyncio.Future[int], revision: int) -> None:
    if not future.done():
        future.set_result(revision)
