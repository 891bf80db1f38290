"""What console pages compute from the store alone, kept until the store or the proxies move.

A mesh page's resource sections, its topology's resources and the meshes list change only
when the store's revision does, yet every load, every open tab and every live refresh
asked the store again and rendered them again. :class:`Recent` keeps the last few
answers under keys that hold the store revision they were read at, so a write makes
every old entry unreachable (and the least recently used fall out) instead of needing an
invalidation. What a proxy's stream changes (connects, ACKs, NACKs) is keyed by
:class:`Generation`: the read model's ``changed()`` event is replaced at every change, so
the event an answer was computed under identifies the state it saw.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
SIZE = 64
"""Entries kept: a few views (pages, filters, focused graphs) of a few meshes at once."""


class Recent(Generic[V]):
    """The :data:`SIZE` most recently used answers by key (a key names its revision)."""

    def __init__(self, size: int = SIZE) -> None:
        """Keep at most ``size`` answers."""
        self._size = size
        self._entries: collections.OrderedDict[Hashable, V] = collections.OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The answer for ``key``: the kept one, or ``compute()``'s, then kept."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = compute()
        self._entries[key] = value
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        """How many answers are kept."""
        return len(self._entries)


class Generation(Generic[V]):
    """One answer about the proxies, kept while the read model's ``changed()`` event is."""

    def __init__(self, changed: Callable[[], asyncio.Event]) -> None:
        """Key answers by the event ``changed()`` returns (a new one after every change)."""
        self._changed = changed
        self._seen: tuple[asyncio.Event, Hashable, V] | None = None

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``'s answer, computed again only after a change or for another ``key``."""
        event = self._changed()  # taken before computing: a change meanwhile is not missed
        seen = self._seen
        if seen is not None and seen[0] is event and seen[1] == key:
            return seen[2]
        value = compute()
        self._seen = (event, key, value)
        return value
