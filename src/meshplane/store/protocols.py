"""The roles every store backend plays: ``Store``, its read and write transactions, its ``Feed``.

Writers (:mod:`meshplane.service`, :mod:`meshplane.manifests`) and readers
(:mod:`meshplane.sync`, :mod:`meshplane.api`) depend on these protocols only, so a
second backend (PostgreSQL, several control-plane replicas on one database) plugs
in without touching them. SQLite (:mod:`meshplane.store.sqlite`) is the one
implementation today; only the composition root names it.

The contract a backend keeps:

- A :class:`WriteTransaction` is atomic: everything it did commits when its block
  ends, or nothing does if the block raises. Checks and writes of one request run
  in one transaction, so concurrent writers cannot interleave between them.
- Every write that changes the data plane appends one entry to the change feed;
  the entry's number is the store's **revision**, which only grows.
- The :class:`Feed` is woken *after* commit, never before, and says only that the
  revision moved. A consumer remembers the last revision it handled and reads
  :meth:`Feed.changes_since` it; it never relies on being told *what* changed, so a
  notification that is lost, merged with another, or comes from another replica
  (PostgreSQL ``LISTEN``/``NOTIFY``) costs nothing but a read.
- The feed is compacted: entries at or below its *floor* are gone. Asked for the
  changes since a revision below the floor, it raises :class:`FeedCompacted`; the
  reader then rereads what it follows whole and goes on from the current revision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource
from meshplane.store.records import Change, Event, Record, Tag
from meshplane.store.waking import Waker


class FeedCompacted(Exception):
    """The changes asked for were compacted away: reread everything, then follow on."""

    def __init__(self, asked: int, floor: int) -> None:
        """``asked`` is below the oldest revision the feed still has the changes after."""
        super().__init__(f"changes after revision {asked} were compacted (floor {floor})")
        self.asked = asked
        self.floor = floor


class ReadTransaction(Protocol):
    """A consistent view of the store: every read in it sees one revision."""

    # -- App Mesh resources ----------------------------------------------------------------

    def get(self, key: ResourceKey) -> Record | None:
        """The stored resource at ``key``, or ``None``."""
        ...

    def get_by_arn(self, arn: str) -> Record | None:
        """The stored resource with this ARN, or ``None``."""
        ...

    def list_records(
        self, kind: str, mesh: str | None, parent: str = "", after: int = 0, limit: int = -1
    ) -> list[Record]:
        """Resources of one kind in one scope (``mesh=None`` for meshes), by creation order."""
        ...

    def list_mesh(self, mesh: str) -> list[Record]:
        """Every resource of one mesh (the mesh itself included), by creation order."""
        ...

    def count(self, kind: str, mesh: str | None, parent: str = "") -> int:
        """How many resources of one kind live in one scope."""
        ...

    def count_in_mesh(self, mesh: str, exclude_kind: str) -> int:
        """How many resources other than ``exclude_kind`` a mesh holds."""
        ...

    def name_page(
        self, kind: str, mesh: str, contains: str = "", offset: int = 0, limit: int = -1
    ) -> tuple[int, int, list[tuple[str, str]]]:
        """``(total, matching, page)`` for one kind in a mesh, names only (no spec decoded).

        ``total`` counts the kind; ``matching`` those whose name or parent's name contains
        ``contains`` (ASCII case ignored); ``page`` is ``limit`` of those ``(parent, name)``
        pairs from ``offset`` on, in Python's string order. The console pages a large mesh
        with it and then reads only the shown resources.
        """
        ...

    def mentioning(self, kind: str, mesh: str, value: str) -> list[Record]:
        """Resources of one kind in a mesh whose spec may hold the string ``value``.

        A superset (the caller checks the spec): it finds the virtual nodes whose backends
        name a service, which no stored reference records, without decoding every node.
        """
        ...

    def referrers(self, dst: ResourceKey) -> list[ResourceKey]:
        """Every resource that references ``dst``, sorted."""
        ...

    def token(
        self, principal: str, operation: str, token: str, newer_than: float
    ) -> tuple[str, Any] | None:
        """The (request digest, response) ``principal`` recorded for a clientToken.

        Only a record made after ``newer_than`` counts (an older one has expired).
        """
        ...

    def endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every registered endpoint of a mesh, by virtual node, sorted."""
        ...

    def node_endpoints(self, mesh: str, virtual_node: str) -> tuple[Endpoint, ...]:
        """The registered endpoints of one virtual node, sorted."""
        ...

    def registrations(self) -> dict[tuple[str, str, str], tuple[Endpoint, ...]]:
        """Every registration: (mesh, virtual node, source) → its endpoints, sorted."""
        ...

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        ...

    # -- v1beta2 manifest objects ----------------------------------------------------------

    def manifest_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One stored manifest object's document, or ``None``."""
        ...

    def manifest_objects(self) -> list[dict[str, Any]]:
        """Every stored manifest object, ordered by kind, namespace and name."""
        ...

    def manifest_events(self, kind: str, namespace: str, name: str) -> list[Event]:
        """A manifest object's events, oldest first."""
        ...


class WriteTransaction(ReadTransaction, Protocol):
    """A read transaction that may also write; atomic, committed when its block ends."""

    def insert(self, resource: Resource, tags: Sequence[Tag]) -> Record:
        """Store a new resource and record the change."""
        ...

    def replace(self, resource: Resource) -> None:
        """Overwrite a resource's spec and metadata (its tags and order are kept)."""
        ...

    def set_tags(self, key: ResourceKey, tags: Sequence[Tag]) -> None:
        """Replace a resource's tags (a change only when its extension tags move)."""
        ...

    def delete(self, key: ResourceKey) -> None:
        """Remove a resource, its outgoing references and (for nodes) its endpoints."""
        ...

    def set_refs(self, src: ResourceKey, targets: Sequence[ResourceKey]) -> None:
        """Replace the references ``src`` holds (the edges that keep targets alive)."""
        ...

    def remember_token(
        self, principal: str, operation: str, token: str, digest: str, response: Any, at: float
    ) -> None:
        """Record the outcome of a request of ``principal`` carrying a clientToken."""
        ...

    def trim_tokens(self, principal: str, keep: int) -> int:
        """Forget all but ``principal``'s newest ``keep`` clientToken records; returns how many."""
        ...

    def forget_tokens(self, not_newer_than: float) -> int:
        """Delete the clientToken records made at or before a time; returns how many."""
        ...

    def set_endpoints(
        self, mesh: str, virtual_node: str, source: str, endpoints: Sequence[Endpoint]
    ) -> None:
        """Replace the endpoints one source registered for a virtual node."""
        ...

    def put_manifest_object(
        self, kind: str, namespace: str, name: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace one manifest object."""
        ...

    def remove_manifest_object(self, kind: str, namespace: str, name: str) -> None:
        """Forget a manifest object and its events."""
        ...

    def record_manifest_event(
        self,
        identity: tuple[str, str, str, str],
        event_type: str,
        reason: str,
        message: str,
        at: float,
    ) -> None:
        """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
        ...


class Feed(Protocol):
    """The change feed: what changed after a revision, and a way to wait until it moves."""

    def revision(self) -> int:
        """The newest committed revision."""
        ...

    def changes_since(self, revision: int, limit: int = 1000) -> list[Change]:
        """Up to ``limit`` changes after ``revision``, oldest first.

        Raises :class:`FeedCompacted` when ``revision`` is below the feed's floor.
        """
        ...

    async def wait(self, after_revision: int) -> int:
        """Return the newest revision once it is past ``after_revision`` (at once if it is)."""
        ...

    @property
    def objects(self) -> Waker:
        """A number that grows with each commit that stored or removed manifest objects.

        A manifest object's status, labels or deletion mark are written without a revision
        of their own, so ``get -w`` waits on this beside the revision, whichever replica
        made the commit. SQLite (one process) counts the commits; PostgreSQL uses each
        commit's transaction id, so every replica gives the same commit the same number.
        """
        ...


class Store(Protocol):
    """The source of truth: transactions over resources and manifest objects, and a feed."""

    @property
    def location(self) -> str:
        """Where the data lives, for operators: a file path, a database URL without secrets."""
        ...

    @property
    def schema_version(self) -> int:
        """How many schema migrations the data has had."""
        ...

    def transaction(self) -> contextlib.AbstractContextManager[WriteTransaction]:
        """One atomic unit: committed when the block ends, rolled back if it raises."""
        ...

    def read(self) -> contextlib.AbstractContextManager[ReadTransaction]:
        """A transaction used only for reading (a consistent view)."""
        ...

    @property
    def feed(self) -> Feed:
        """The change feed of this store."""
        ...

    def revision(self) -> int:
        """The newest committed revision."""
        ...

    def close(self) -> None:
        """Release the backend's connections."""
        ...
