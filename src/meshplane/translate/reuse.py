"""Translate a shared piece of a mesh once per revision, not once per proxy that uses it.

Most of a sidecar's outbound config does not depend on the sidecar: the plan
of a virtual service (its router's routes and their targets) and the cluster
and load assignment of a target listener are the same for every caller. At
fleet scale that is most of the work — 50 callers of 20 router-provided
services each translated the same 400 clusters 50 times over.

:class:`SharedTranslations` keeps those pieces for one mesh at one revision.
Each entry remembers what its build read
(:class:`~meshplane.translate.dependencies.Reads`) and the warnings it
recorded; reusing it replays both into the caller's recorder and warning
list, so a translation with reuse returns exactly what one without returns —
the same resources, warnings in the same order, the same reads — and the
sync stage's per-proxy invalidation stays exact. :meth:`SharedTranslations.advance`
moves the table to a newer revision of the mesh, dropping only the entries a
change can alter (by the same rule that decides which proxies to rebuild).

Only caller-independent pieces are entered: a piece that depends on the
caller (a client policy's TLS, automatic mTLS naming the caller's identity)
is built per caller as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar, cast

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import dependencies, diagnostics

T = TypeVar("T")

Warnings = list[diagnostics.Warning]


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """One kept translation piece: its value and what building it read and warned."""

    value: object
    reads: dependencies.Reads
    warnings: tuple[diagnostics.Warning, ...]


class SharedTranslations:
    """Caller-independent translation pieces of one mesh at one revision."""

    def __init__(self) -> None:
        """Start empty, bound to no snapshot."""
        self._entries: dict[Hashable, Piece] = {}
        self._readers: dict[ResourceKey, set[Hashable]] = {}
        """Read key (exact or wildcard) → the entries whose build read it."""
        self._endpoint_readers: dict[str, set[Hashable]] = {}
        """Virtual node name (or ANY) → the entries that read its registered endpoints."""
        self._bound: tuple[str, int] | None = None
        self.hits = 0
        """Pieces reused (for tests and benchmarks)."""
        self.misses = 0
        """Pieces built."""

    def __len__(self) -> int:
        """How many pieces are kept."""
        return len(self._entries)

    def advance(
        self, snapshot: MeshSnapshot, changes: Iterable[tuple[ResourceKey, str]]
    ) -> dict[Hashable, Piece]:
        """Follow the mesh to ``snapshot``, the previous one plus ``changes`` (key, op).

        Entries whose reads a change touches are dropped; the rest hold for
        ``snapshot`` too, since nothing they read differs. Returns the dropped
        entries (what the proxies built from them were given).
        """
        dropped: dict[Hashable, Piece] = {}
        for key, op in changes:
            if key.kind == kinds.MESH.key:
                dropped.update(self._entries)
                self._drop_all()  # every piece read the mesh (as Reads.affected_by says)
                break
            if op == "endpoints":
                stale = self._endpoint_readers.get(key.name, set()) | self._endpoint_readers.get(
                    dependencies.ANY, set()
                )
            else:
                stale = set().union(
                    *(
                        self._readers.get(read, ())
                        for read in (
                            key,
                            ResourceKey(key.kind, key.mesh, key.parent, dependencies.ANY),
                            ResourceKey(key.kind, key.mesh, dependencies.ANY, dependencies.ANY),
                        )
                    )
                )
            for entry_key in stale:
                entry = self._drop(entry_key)
                if entry is not None:
                    dropped[entry_key] = entry
        self._bound = (snapshot.name, snapshot.revision)
        return dropped

    def get(self, entry_key: Hashable) -> Piece | None:
        """The kept piece ``entry_key``, if any."""
        return self._entries.get(entry_key)

    def clear(self) -> None:
        """Forget every piece (the mesh was reread whole)."""
        self._drop_all()
        self._bound = None

    def _drop_all(self) -> None:
        self._entries.clear()
        self._readers.clear()
        self._endpoint_readers.clear()

    def _drop(self, entry_key: Hashable) -> Piece | None:
        entry = self._entries.pop(entry_key, None)
        if entry is None:
            return None
        for read in entry.reads.keys:
            readers = self._readers.get(read)
            if readers is not None:
                readers.discard(entry_key)
                if not readers:
                    del self._readers[read]
        for name in entry.reads.endpoints:
            readers = self._endpoint_readers.get(name)
            if readers is not None:
                readers.discard(entry_key)
                if not readers:
                    del self._endpoint_readers[name]
        return entry

    def _enter(self, entry_key: Hashable, entry: Piece) -> None:
        self._entries[entry_key] = entry
        for read in entry.reads.keys:
            self._readers.setdefault(read, set()).add(entry_key)
        for name in entry.reads.endpoints:
            self._endpoint_readers.setdefault(name, set()).add(entry_key)

    def using(self, snapshot: MeshSnapshot, recorder: dependencies.Recorder) -> Reuse:
        """The handle one translation of ``snapshot`` uses (through ``recorder``).

        A snapshot of another mesh or revision than the table follows starts it
        afresh: reuse is an optimisation, never a source of stale pieces.
        """
        if self._bound != (snapshot.name, snapshot.revision):
            self._drop_all()
            self._bound = (snapshot.name, snapshot.revision)
        return Reuse(self, recorder)


class Reuse:
    """One translation's access to a :class:`SharedTranslations` table."""

    __slots__ = ("_recorder", "_shared")

    def __init__(self, shared: SharedTranslations, recorder: dependencies.Recorder) -> None:
        """Reuse pieces of ``shared``, replaying their reads into ``recorder``."""
        self._shared = shared
        self._recorder = recorder

    def piece(self, key: Hashable, build: Callable[[Warnings], T], warnings: Warnings) -> T:
        """The piece ``key``: kept, or ``build(its_warnings)`` now; its warnings join ``warnings``.

        ``build`` must read the mesh only through the translation's snapshot (so its
        reads are recorded) and depend on nothing of the caller that ``key`` omits.
        """
        shared = self._shared
        entry = shared._entries.get(key)
        if entry is None:
            found: Warnings = []
            value, reads = self._recorder.capture(lambda: build(found))
            entry = Piece(value, reads, tuple(found))
            shared._enter(key, entry)
            shared.misses += 1
        else:
            self._recorder.replay(entry.reads)
            shared.hits += 1
        warnings.extend(entry.warnings)
        return cast(T, entry.value)
