"""Deadline timers, injected so code that waits "at most N seconds" is testable without waiting.

A :class:`Timer` reads a monotonic clock and calls a function when it reaches a deadline.
:class:`LoopTimer` is the event loop's (production); :class:`ManualTimer` moves only when
a test says so, and lets the test wait until something has armed a deadline, so a
timeout path runs in no wall-clock time at all.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

Cancel = Callable[[], None]
"""Disarms a deadline set with :meth:`Timer.call_at` (a no-op once it fired)."""


class Timer(Protocol):
    """A monotonic clock that can call back at a deadline."""

    def now(self) -> float:
        """Seconds on this timer's monotonic clock."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` once ``now() >= when``; returns the function that disarms it."""


class LoopTimer:
    """The running event loop's clock and ``call_at``."""

    def now(self) -> float:
        """``loop.time()``."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancel:
        """``loop.call_at``; the handle's ``cancel`` disarms it."""
        return asyncio.get_running_loop().call_at(when, callback).cancel


class ManualTimer:
    """A timer tests advance by hand; deadlines fire only inside :meth:`advance`."""

    def __init__(self, start: float = 0.0) -> None:
        """Start at ``start`` seconds with nothing armed."""
        self._now = start
        self._armed: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cancelled: set[int] = set()
        self._changed = asyncio.Event()

    def now(self) -> float:
        """The current manual time."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancel:
        """Arm a deadline; it fires when :meth:`advance` reaches ``when``."""
        ticket = next(self._order)
        heapq.heappush(self._armed, (when, ticket, callback))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return lambda: self._cancelled.add(ticket)

    def armed(self) -> list[float]:
        """The deadlines still armed, earliest first."""
        return sorted(w for w, t, _ in self._armed if t not in self._cancelled)

    async def next_deadline(self) -> float:
        """Wait until a deadline is armed (woken by ``call_at``, not by polling); return it."""
        while True:
            changed = self._changed
            armed = self.armed()
            if armed:
                return armed[0]
            await changed.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and run, in order, every callback whose deadline has come."""
        self._now += seconds
        while self._armed and self._armed[0][0] <= self._now:
            _, ticket, callback = heapq.heappop(self._armed)
            if ticket not in self._cancelled:
                callback()
            self._cancelled.discard(ticket)
