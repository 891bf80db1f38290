"""Clocks and id factories, injected so tests are deterministic."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns the current time as epoch seconds."""

IdFactory = Callable[[], str]
"""Returns a fresh unique id (App Mesh uses UUID-shaped uids)."""


def system_clock() -> float:
    """Wall-clock epoch seconds, rounded to App Mesh's millisecond precision."""
    return round(time.time(), 3)


def uuid_ids() -> str:
    """A random UUID4 string, the production id factory."""
    return str(uuid.uuid4())


class FakeClock:
    """A clock tests advance by hand; it never moves on its own."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        """Start at a fixed, recognisable epoch."""
        self.now = start

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now = round(self.now + seconds, 3)


def counting_ids(prefix: str = "00000000-0000-4000-8000-") -> IdFactory:
    """Deterministic UUID-shaped ids for tests: ...-000000000001, ...-000000000002."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):012d}"
