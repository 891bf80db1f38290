"""Serialized shared pieces, kept across publish passes while their pieces live.

Each proxy's snapshot holds every cluster and load assignment of its targets;
at ten times App Mesh's quotas that is ~400 messages a proxy, most of them one
object shared by every caller (:mod:`meshplane.translate.reuse`). The sync stage
serialized each shared object once per pass; a full rebuild that keeps its
pieces (:mod:`meshplane.sync.meshdiff`) then spent a third of its time
serializing and hashing the same unchanged messages again.

:class:`KeptEncodings` keeps the encoding of a message that two proxies used in
one pass — a shared piece, since a per-proxy message belongs to one proxy —
for later passes too. An entry holds its message, so the ``id`` it is found by
cannot be reused while it is kept; pieces are never modified, so the encoding
stays right. It is dropped when its piece is (``forget``: the values of the
pieces a change dropped), when the mesh's table is cleared, and after a pass
that translated every proxy of the mesh if that pass did not use it
(``prune``): such a pass used everything still alive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import Message

from meshplane.envoy import resources as envoy_resources
from meshplane.translate.routes import SerializedRouteConfiguration
from meshplane.xds.snapshot import Resource, ResourceEncoder, Snapshot

Entry = tuple[Message, Resource]
Serialized = SerializedRouteConfiguration
"""A resource the translation built as its wire bytes (one proxy's, never kept here)."""


def serialized(encoder: ResourceEncoder, built: Serialized, like: Snapshot | None) -> Resource:
    """The resource of bytes a translation built, found in ``like`` when they are its bytes.

    ``like`` (the proxy's previous snapshot): equal bytes are the same content, hence
    the very resource the encoder interned — a full rebuild mostly gives a proxy's
    route configuration back unchanged, and is spared hashing its 68 KB again.
    """
    held = like.resources(envoy_resources.ROUTE).get(built.name) if like is not None else None
    if held is not None and held.body == built.body:
        return held
    return encoder.encode_serialized(envoy_resources.ROUTE, built.name, built.body)


class KeptEncodings:
    """id(message) → (message, its encoding) for one mesh's shared pieces."""

    def __init__(self) -> None:
        """Start empty."""
        self._entries: dict[int, Entry] = {}
        self._used: set[int] = set()

    def __len__(self) -> int:
        """How many encodings are kept."""
        return len(self._entries)

    def get(self, message: Message) -> Resource | None:
        """The kept encoding of this very object, or ``None``."""
        found = self._entries.get(id(message))
        if found is None or found[0] is not message:
            return None
        self._used.add(id(message))
        return found[1]

    def lookup(self, messages: Sequence[Message]) -> list[Resource | None]:
        """:meth:`get` of each of ``messages``, in one loop (a proxy's ~400 per rebuild)."""
        entries = self._entries.get
        used = self._used.add
        found: list[Resource | None] = []
        append = found.append
        for message in messages:
            entry = entries(id(message))
            if entry is not None and entry[0] is message:
                used(id(message))
                append(entry[1])
            else:
                append(None)
        return found

    def keep(self, message: Message, encoded: Resource) -> None:
        """Keep ``message``'s encoding (it is shared: a second proxy of the pass used it)."""
        self._entries[id(message)] = (message, encoded)
        self._used.add(id(message))

    def forget(self, values: Iterable[object]) -> None:
        """Drop the encodings of every message inside ``values`` (dropped pieces' values).

        A message is itself, or inside tuples, lists and dicts; walked with a stack, not
        recursive generators (an endpoints change drops pieces holding ~1,600 values).
        """
        entries = self._entries
        stack: list[Any] = list(values)
        pop, extend = stack.pop, stack.extend
        while stack:
            value = pop()
            if isinstance(value, Message):
                entries.pop(id(value), None)
            elif isinstance(value, tuple | list):
                extend(value)
            elif isinstance(value, dict):
                extend(value.values())

    def prune(self) -> None:
        """Keep only what was used since the last prune (call after a pass built every proxy)."""
        self._entries = {i: e for i, e in self._entries.items() if i in self._used}
        self._used = set()

    def clear(self) -> None:
        """Drop everything (the mesh's pieces were all dropped)."""
        self._entries.clear()
        self._used.clear()
