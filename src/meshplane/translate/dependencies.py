"""What one translation looked up, so the sync stage rebuilds only the proxies a change affects.

A sidecar's translation reads a bounded part of its mesh: its own virtual node
(or gateway and gateway routes), each backend service, the service's provider
(a node, or a router with all of its routes and every node those routes
target) and the registered endpoints of the target nodes. :class:`Recorder`
hands the translator a :class:`~meshplane.model.snapshot.MeshSnapshot` whose
mappings note every name looked up — found *or missing*, because creating a
looked-up-but-absent service must rebuild the proxy that wanted it — and every
collection walked (the routes of router R), so adding a route to R counts too.

Translation stays pure: recording is a side effect on a private set only,
and the resources built are exactly those built from the bare snapshot.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot

ANY = "*"
"""Wildcard in a read key's parent or name: "every resource of this kind (under this parent)"."""

V = TypeVar("V")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Reads:
    """The resources one translation depended on.

    ``keys`` holds exact keys (found or not) and wildcard keys (``name == ANY``:
    every child of ``parent``; ``parent == name == ANY``: every resource of the
    kind). ``endpoints`` names the virtual nodes whose registered endpoints
    were read (``ANY`` for all of them).
    """

    keys: frozenset[ResourceKey] = frozenset()
    endpoints: frozenset[str] = frozenset()
    direct_keys: frozenset[ResourceKey] = dataclasses.field(default=frozenset(), compare=False)
    direct_endpoints: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)
    """The parts of ``keys`` and ``endpoints`` read outside every shared piece (:mod:`.reuse`):
    the rest reached the resources only through pieces, which the sync stage can patch in
    place (:mod:`.patching`)."""

    def affected_by(self, key: ResourceKey, op: str) -> bool:
        """Whether a change (``op`` on ``key``) can alter what was built from these reads.

        The mesh resource itself is read by every translation (egress filter,
        IP preference), so any change to it counts.
        """
        return self.touched_by((touch(key, op),))

    def touched_by(self, touches: Iterable[Touch]) -> bool:
        """Whether any of the changes (each made a :class:`Touch` once) can alter these reads."""
        return _touched(self.keys, self.endpoints, touches)

    def directly_touched_by(self, touches: Iterable[Touch]) -> bool:
        """:meth:`touched_by`, counting only the reads made outside shared pieces."""
        return _touched(self.direct_keys, self.direct_endpoints, touches)


@dataclasses.dataclass(frozen=True, slots=True)
class Touch:
    """One change as the reads it hits: worked out once per change, checked per proxy."""

    everything: bool
    """A change to the mesh resource: every translation read it."""
    keys: frozenset[ResourceKey] = frozenset()
    """The key and its wildcards (every child of its parent, every resource of its kind):
    a set, whose stored hashes a proxy's reads are checked against without hashing the
    keys (a generated ``__hash__`` per key, per proxy) again."""
    endpoints: frozenset[str] = frozenset()
    """The node whose registered endpoints changed, and ``ANY``."""


def touch(key: ResourceKey, op: str) -> Touch:
    """The reads a change (``op`` on ``key``) hits."""
    if key.kind == kinds.MESH.key:
        return Touch(everything=True)
    if op == "endpoints":
        return Touch(everything=False, endpoints=frozenset((key.name, ANY)))
    return Touch(
        everything=False,
        keys=frozenset(
            (
                _interned(key.kind, key.mesh, key.parent, key.name),
                _interned(key.kind, key.mesh, key.parent, ANY),
                _interned(key.kind, key.mesh, ANY, ANY),
            )
        ),
    )


def _touched(
    keys: frozenset[ResourceKey], endpoints: frozenset[str], touches: Iterable[Touch]
) -> bool:
    for change in touches:
        if (
            change.everything
            or not keys.isdisjoint(change.keys)
            or not endpoints.isdisjoint(change.endpoints)
        ):
            return True
    return False


class _Recording(Mapping[str, V]):
    """A read-only view of ``inner`` that reports each key looked up and each walk."""

    def __init__(
        self, inner: Mapping[str, V], looked_up: Callable[[str], None], walked: Callable[[], None]
    ) -> None:
        self._inner = inner
        self._looked_up = looked_up
        self._walked = walked

    def __getitem__(self, name: str) -> V:
        # Mapping.get and ``in`` go through here, so misses are recorded as well as hits.
        self._looked_up(name)
        return self._inner[name]

    def __iter__(self) -> Iterator[str]:
        self._walked()
        return iter(self._inner)

    def __len__(self) -> int:
        self._walked()
        return len(self._inner)


_interned = functools.lru_cache(maxsize=1 << 16)(ResourceKey)
"""The one :class:`ResourceKey` object for these four values, while it is cached.

Every translation records a key per lookup, and a reused piece's reads are merged into
each translation that uses it: with equal keys the same object, those set unions match
them by identity instead of calling the dataclass's generated ``__eq__`` (in Python) per
duplicate, and a key costs a C-level cache hit instead of a frozen dataclass's init.
"""


class Recorder:
    """Wraps one snapshot; :attr:`snapshot` is what to translate, :meth:`reads` what it used."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        """Record lookups made through :attr:`snapshot`, a view of ``snapshot``."""
        mesh = snapshot.name
        self._keys: set[ResourceKey] = {_interned(kinds.MESH.key, mesh, "", mesh)}
        self._endpoints: set[str] = set()
        self._direct_keys: set[ResourceKey] = set(self._keys)
        self._direct_endpoints: set[str] = set()
        self._captures: list[tuple[set[ResourceKey], set[str]]] = []
        """Open :meth:`capture` calls, innermost last: each also gets every read."""

        def flat(kind: kinds.Kind, inner: Mapping[str, V]) -> _Recording[V]:
            return _Recording(
                inner,
                lambda name: self._key(_interned(kind.key, mesh, "", name)),
                lambda: self._key(_interned(kind.key, mesh, ANY, ANY)),
            )

        def nested(kind: kinds.Kind, inner: Mapping[str, V]) -> _Recording[V]:
            # Looking up a parent's children depends on all of them, present or future.
            return _Recording(
                inner,
                lambda parent: self._key(_interned(kind.key, mesh, parent, ANY)),
                lambda: self._key(_interned(kind.key, mesh, ANY, ANY)),
            )

        # Constructed directly: dataclasses.replace's field checks cost more than the rest
        # of setting up a recorder, which runs once per proxy translated.
        self.snapshot = MeshSnapshot(
            revision=snapshot.revision,
            mesh=snapshot.mesh,
            virtual_nodes=flat(kinds.VIRTUAL_NODE, snapshot.virtual_nodes),
            virtual_services=flat(kinds.VIRTUAL_SERVICE, snapshot.virtual_services),
            virtual_routers=flat(kinds.VIRTUAL_ROUTER, snapshot.virtual_routers),
            routes=nested(kinds.ROUTE, snapshot.routes),
            virtual_gateways=flat(kinds.VIRTUAL_GATEWAY, snapshot.virtual_gateways),
            gateway_routes=nested(kinds.GATEWAY_ROUTE, snapshot.gateway_routes),
            endpoints=_Recording(snapshot.endpoints, self._endpoint, self._all_endpoints),
        )

    def _key(self, key: ResourceKey) -> None:
        self._keys.add(key)
        if not self._captures:
            self._direct_keys.add(key)
        for keys, _ in self._captures:
            keys.add(key)

    def _endpoint(self, name: str) -> None:
        self._endpoints.add(name)
        if not self._captures:
            self._direct_endpoints.add(name)
        for _, endpoints in self._captures:
            endpoints.add(name)

    def _all_endpoints(self) -> None:
        self._endpoint(ANY)

    def capture(self, compute: Callable[[], T]) -> tuple[T, Reads]:
        """``compute()`` and what it read (recorded here as well, as any read is).

        The mesh resource is not in the result: every translation reads it anyway.
        """
        captured: tuple[set[ResourceKey], set[str]] = (set(), set())
        self._captures.append(captured)
        try:
            value = compute()
        finally:
            self._captures.pop()
        return value, Reads(frozenset(captured[0]), frozenset(captured[1]))

    def replay(self, reads: Reads) -> None:
        """Record ``reads`` as if made here: a reused piece depends on what its build read."""
        self._keys |= reads.keys
        self._endpoints |= reads.endpoints
        for keys, endpoints in self._captures:
            keys.update(reads.keys)
            endpoints.update(reads.endpoints)

    def reads(self) -> Reads:
        """Everything looked up through :attr:`snapshot` so far."""
        return Reads(
            frozenset(self._keys),
            frozenset(self._endpoints),
            frozenset(self._direct_keys),
            frozenset(self._direct_endpoints),
        )
