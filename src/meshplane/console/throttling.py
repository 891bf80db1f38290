"""A bound on guessing console secrets: failed logins per client address are limited.

A login form is an oracle for secrets, so after :data:`FAILURES` wrong logins from one
client address within :data:`WINDOW` seconds, that address is refused (429) until the
oldest of those failures is :data:`WINDOW` seconds old — right secrets included, so the
limit cannot be probed. A successful login forgets the address's failures. At most
:data:`TRACKED` addresses are remembered (the oldest are forgotten first), so a flood of
addresses cannot grow the table without bound.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

FAILURES = 5
WINDOW = 60.0
TRACKED = 10_000


class LoginThrottle:
    """Failed logins per client address over a sliding window of ``clock`` seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        """Count with ``clock`` (the console's)."""
        self._clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def _recent(self, address: str) -> collections.deque[float]:
        times = self._failures.get(address, collections.deque())
        cutoff = self._clock() - WINDOW
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or ``None`` if it may now."""
        times = self._recent(address)
        if len(times) < FAILURES:
            return None
        return times[0] + WINDOW - self._clock()

    def failed(self, address: str) -> None:
        """Count one wrong login from ``address``."""
        times = self._recent(address)
        times.append(self._clock())
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """Forget ``address``'s failures."""
        self._failures.pop(address, None)
