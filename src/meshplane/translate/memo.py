"""A bounded cache keyed by object identity, for pure functions of immutable specs.

The specs a snapshot holds are frozen and parsed once per change, so a pure
function of one (its listeners read for their protocols, its untranslated
members) gives the same answer for the same object every time. Specs are
slotted (no weak references), so the cache holds each key object itself — which
also keeps its ``id`` from being reused while the entry lives — and forgets
everything once it holds :data:`LIMIT` entries, bounding the memory it pins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

LIMIT = 16384
"""Entries kept before the cache starts over (a 10x-quota mesh has ~4,500 specs)."""


class IdentityCache(Generic[K, V]):
    """``compute(key)`` remembered per key object (by identity, not equality)."""

    def __init__(self, compute: Callable[[K], V], limit: int = LIMIT) -> None:
        """Cache ``compute``; start over past ``limit`` entries."""
        self._compute = compute
        self._limit = limit
        self._entries: dict[int, tuple[K, V]] = {}

    def __call__(self, key: K) -> V:
        """The remembered value for ``key`` (computed on first use)."""
        found = self._entries.get(id(key))
        if found is not None and found[0] is key:
            return found[1]
        value = self._compute(key)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value
