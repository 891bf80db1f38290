"""The SQLite store: WAL mode, fsync on commit, one writer, a change feed.

The one implementation of :mod:`meshplane.store.protocols` today. Every public
write happens inside :meth:`SqliteStore.transaction`; the caller (the domain
service) does its reads and checks inside the same transaction, so a rejected
request changes nothing and concurrent writers cannot interleave between a check
and its write. Each transaction that changes a resource appends a row to
``changes``; its id is the store's revision. The feed's waiters are woken after
commit, never before, so the sync stage only ever reads durable state. Nothing
outside the store sees a ``sqlite3`` object: only the composition root names
this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from meshplane.kit.clock import Clock
from meshplane.model import extensions
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource
from meshplane.store import integrity, objects, refusals, schema, storage
from meshplane.store.protocols import FeedCompacted
from meshplane.store.records import Change, Event, Record, Tag, endpoint_of, endpoint_row
from meshplane.store.waking import Waker

DB_FILE = "meshplane.db"
WAL_LIMIT_BYTES = 4 * 1024 * 1024
"""The WAL is truncated back to this size after a checkpoint."""
VACUUM_PAGES = 2000
"""Free pages returned to the file system per maintenance pass (8 MiB at 4 KiB pages)."""

_RESOURCE_COLUMNS = (
    "seq, kind, mesh, parent, name, uid, arn, owner, version, created_at, updated_at, spec, tags"
)


def _record(row: sqlite3.Row | tuple[Any, ...]) -> Record:
    seq, kind, mesh, parent, name, uid, arn, owner, version, created, updated, spec, tags = row
    tag_list = json.loads(tags)
    resource = Resource(
        key=ResourceKey(kind, mesh, parent, name),
        arn=arn,
        uid=uid,
        version=version,
        created_at=created,
        updated_at=updated,
        spec=json.loads(spec),
        owner=owner,
        extensions=extensions.of((t["key"], t["value"]) for t in tag_list),
    )
    return Record(resource, tuple(Tag(t["key"], t["value"]) for t in tag_list), seq)


def _key_params(key: ResourceKey) -> tuple[str, str, str, str]:
    return (key.kind, key.mesh, key.parent, key.name)


class Transaction:
    """Reads and writes inside one SQLite transaction; obtained from the store only.

    Implements :class:`~meshplane.store.protocols.WriteTransaction` (and so the read one).
    """

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        """Bind to an open transaction."""
        self._conn = conn
        self._clock = clock
        self.changes: list[Change] = []

    # -- resources ---------------------------------------------------------------------------

    def get(self, key: ResourceKey) -> Record | None:
        """The stored resource at ``key``, or ``None``."""
        row = self._conn.execute(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources "
            "WHERE kind=? AND mesh=? AND parent=? AND name=?",
            _key_params(key),
        ).fetchone()
        return _record(row) if row else None

    def get_by_arn(self, arn: str) -> Record | None:
        """The stored resource with this ARN, or ``None``."""
        row = self._conn.execute(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE arn=?", (arn,)
        ).fetchone()
        return _record(row) if row else None

    def list_records(
        self, kind: str, mesh: str | None, parent: str = "", after: int = 0, limit: int = -1
    ) -> list[Record]:
        """Resources of one kind in one scope (``mesh=None`` for meshes), by creation order."""
        if mesh is None:
            rows = self._conn.execute(
                f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE kind=? AND seq>? "
                "ORDER BY seq LIMIT ?",
                (kind, after, limit),
            )
        else:
            rows = self._conn.execute(
                f"SELECT {_RESOURCE_COLUMNS} FROM resources "
                "WHERE mesh=? AND kind=? AND parent=? AND seq>? ORDER BY seq LIMIT ?",
                (mesh, kind, parent, after, limit),
            )
        return [_record(row) for row in rows]

    def list_mesh(self, mesh: str) -> list[Record]:
        """Every resource of one mesh (the mesh itself included), by creation order."""
        rows = self._conn.execute(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE mesh=? ORDER BY seq", (mesh,)
        )
        return [_record(row) for row in rows]

    def count(self, kind: str, mesh: str | None, parent: str = "") -> int:
        """How many resources of one kind live in one scope."""
        if mesh is None:
            row = self._conn.execute("SELECT count(*) FROM resources WHERE kind=?", (kind,))
        else:
            row = self._conn.execute(
                "SELECT count(*) FROM resources WHERE mesh=? AND kind=? AND parent=?",
                (mesh, kind, parent),
            )
        return int(row.fetchone()[0])

    def count_in_mesh(self, mesh: str, exclude_kind: str) -> int:
        """How many resources other than ``exclude_kind`` a mesh holds."""
        row = self._conn.execute(
            "SELECT count(*) FROM resources WHERE mesh=? AND kind!=?", (mesh, exclude_kind)
        )
        return int(row.fetchone()[0])

    def insert(self, resource: Resource, tags: Sequence[Tag]) -> Record:
        """Store a new resource and record the change."""
        cur = self._conn.execute(
            "INSERT INTO resources (kind, mesh, parent, name, uid, arn, owner, version, "
            "created_at, updated_at, spec, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                *_key_params(resource.key),
                resource.uid,
                resource.arn,
                resource.owner,
                resource.version,
                resource.created_at,
                resource.updated_at,
                json.dumps(resource.spec, sort_keys=True),
                _tags_json(tags),
            ),
        )
        self._change(resource.key, "create")
        return Record(resource, tuple(tags), int(cur.lastrowid or 0))

    def replace(self, resource: Resource) -> None:
        """Overwrite a resource's spec and metadata (its tags and order are kept)."""
        self._conn.execute(
            "UPDATE resources SET version=?, updated_at=?, spec=? "
            "WHERE kind=? AND mesh=? AND parent=? AND name=?",
            (
                resource.version,
                resource.updated_at,
                json.dumps(resource.spec, sort_keys=True),
                *_key_params(resource.key),
            ),
        )
        self._change(resource.key, "update")

    def set_tags(self, key: ResourceKey, tags: Sequence[Tag]) -> None:
        """Replace a resource's tags.

        Ordinary tags do not change the data plane, so they add no change row; a change
        to its ``meshplane.dev/`` extension tags does, so the sync stage rebuilds.
        """
        before = self.get(key)
        self._conn.execute(
            "UPDATE resources SET tags=? WHERE kind=? AND mesh=? AND parent=? AND name=?",
            (_tags_json(tags), *_key_params(key)),
        )
        after = extensions.of((t.key, t.value) for t in tags)
        if before is not None and dict(before.resource.extensions) != after:
            self._change(key, "update")

    def delete(self, key: ResourceKey) -> None:
        """Remove a resource, its outgoing references and (for nodes) its endpoints."""
        self._conn.execute(
            "DELETE FROM resources WHERE kind=? AND mesh=? AND parent=? AND name=?",
            _key_params(key),
        )
        self.set_refs(key, [])
        if key.kind == "virtualNode":
            self._conn.execute(
                "DELETE FROM endpoints WHERE mesh=? AND virtual_node=?", (key.mesh, key.name)
            )
        self._change(key, "delete")

    # -- references --------------------------------------------------------------------------

    def set_refs(self, src: ResourceKey, targets: Sequence[ResourceKey]) -> None:
        """Replace the references ``src`` holds (the edges that keep targets alive)."""
        self._conn.execute(
            "DELETE FROM refs WHERE src_kind=? AND src_mesh=? AND src_parent=? AND src_name=?",
            _key_params(src),
        )
        self._conn.executemany(
            "INSERT INTO refs VALUES (?,?,?,?,?,?,?,?)",
            [(*_key_params(src), *_key_params(dst)) for dst in sorted(set(targets))],
        )

    def referrers(self, dst: ResourceKey) -> list[ResourceKey]:
        """Every resource that references ``dst``, sorted."""
        rows = self._conn.execute(
            "SELECT src_kind, src_mesh, src_parent, src_name FROM refs "
            "WHERE dst_kind=? AND dst_mesh=? AND dst_parent=? AND dst_name=? "
            "ORDER BY src_kind, src_parent, src_name",
            _key_params(dst),
        )
        return [ResourceKey(*row) for row in rows]

    # -- idempotency -------------------------------------------------------------------------

    def token(self, operation: str, token: str, newer_than: float) -> tuple[str, Any] | None:
        """The (request digest, response) recorded for a clientToken after ``newer_than``.

        An older record has expired: it reads as absent even before it is pruned.
        """
        row = self._conn.execute(
            "SELECT digest, response FROM client_tokens WHERE operation=? AND token=? AND at>?",
            (operation, token, newer_than),
        ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def remember_token(
        self, operation: str, token: str, digest: str, response: Any, at: float
    ) -> None:
        """Record the outcome of a request carrying a clientToken (replacing an expired one)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO client_tokens VALUES (?,?,?,?,?)",
            (operation, token, digest, json.dumps(response, sort_keys=True), at),
        )

    def forget_tokens(self, not_newer_than: float) -> int:
        """Delete the clientToken records made at or before a time; returns how many."""
        cur = self._conn.execute("DELETE FROM client_tokens WHERE at<=?", (not_newer_than,))
        return cur.rowcount

    # -- endpoints ---------------------------------------------------------------------------

    def set_endpoints(
        self, mesh: str, virtual_node: str, source: str, endpoints: Sequence[Endpoint]
    ) -> None:
        """Replace the endpoints one source registered for a virtual node."""
        self._conn.execute(
            "DELETE FROM endpoints WHERE mesh=? AND virtual_node=? AND source=?",
            (mesh, virtual_node, source),
        )
        self._conn.executemany(
            "INSERT INTO endpoints VALUES (?,?,?,?,?,?,?)",
            [(mesh, virtual_node, source, *endpoint_row(e)) for e in endpoints],
        )
        self._change(ResourceKey("virtualNode", mesh, "", virtual_node), "endpoints")

    def endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every registered endpoint of a mesh, by virtual node, sorted."""
        found: dict[str, list[Endpoint]] = {}
        rows = self._conn.execute(
            "SELECT virtual_node, listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=?",
            (mesh,),
        )
        for node, *columns in rows:
            found.setdefault(node, []).append(endpoint_of(*columns))
        return {node: tuple(sorted(set(eps))) for node, eps in sorted(found.items())}

    def node_endpoints(self, mesh: str, virtual_node: str) -> tuple[Endpoint, ...]:
        """The registered endpoints of one virtual node, sorted (what :meth:`endpoints` holds)."""
        rows = self._conn.execute(
            "SELECT listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=? AND virtual_node=?",
            (mesh, virtual_node),
        )
        return tuple(sorted({endpoint_of(*row) for row in rows}))

    def registrations(self) -> dict[tuple[str, str, str], tuple[Endpoint, ...]]:
        """Every registration: (mesh, virtual node, source) → its endpoints, sorted."""
        found: dict[tuple[str, str, str], set[Endpoint]] = {}
        rows = self._conn.execute(
            "SELECT mesh, virtual_node, source, listener_port, address, port, attributes "
            "FROM endpoints"
        )
        for mesh, node, source, *columns in rows:
            found.setdefault((mesh, node, source), set()).add(endpoint_of(*columns))
        return {key: tuple(sorted(eps)) for key, eps in sorted(found.items())}

    # -- feed --------------------------------------------------------------------------------

    def _change(self, key: ResourceKey, op: str) -> None:
        at = self._clock()
        cur = self._conn.execute(
            "INSERT INTO changes (kind, mesh, parent, name, op, at) VALUES (?,?,?,?,?,?)",
            (*_key_params(key), op, at),
        )
        self.changes.append(Change(int(cur.lastrowid or 0), key, op, at))

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        return _revision(self._conn)

    # -- manifest objects ------------------------------------------------------------------

    def manifest_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One stored manifest object's document, or ``None``."""
        return objects.get(self._conn, kind, namespace, name)

    def manifest_objects(self) -> list[dict[str, Any]]:
        """Every stored manifest object, ordered by kind, namespace and name."""
        return objects.all_documents(self._conn)

    def manifest_events(self, kind: str, namespace: str, name: str) -> list[Event]:
        """A manifest object's events, oldest first."""
        return objects.events(self._conn, kind, namespace, name)

    def put_manifest_object(
        self, kind: str, namespace: str, name: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace one manifest object."""
        objects.put(self._conn, kind, namespace, name, document)

    def remove_manifest_object(self, kind: str, namespace: str, name: str) -> None:
        """Forget a manifest object and its events."""
        objects.remove(self._conn, kind, namespace, name)

    def record_manifest_event(
        self,
        identity: tuple[str, str, str, str],
        event_type: str,
        reason: str,
        message: str,
        at: float,
    ) -> None:
        """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
        objects.record_event(self._conn, identity, event_type, reason, message, at)


def _private(path: Path) -> None:
    """Make the store readable by its owner only (0600): it holds every mesh's config.

    SQLite gives new ``-wal`` and ``-shm`` files the main file's mode; existing ones
    (from an older meshplane) are set too.
    """
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


def _revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(revision), 0) FROM changes").fetchone()
    return int(row[0])


def _floor(conn: sqlite3.Connection) -> int:
    """The newest revision whose change row was compacted away (0: none was)."""
    row = conn.execute("SELECT min(revision) FROM changes").fetchone()
    return 0 if row[0] is None else int(row[0]) - 1


def _tags_json(tags: Sequence[Tag]) -> str:
    return json.dumps([{"key": t.key, "value": t.value} for t in tags])


@dataclasses.dataclass(frozen=True)
class Upkeep:
    """What one maintenance pass removed, and the feed's floor after it."""

    changes: int
    tokens: int
    floor: int


class SqliteFeed:
    """The change feed of a :class:`SqliteStore`: the ``changes`` table, woken in process.

    Implements :class:`~meshplane.store.protocols.Feed`. The store notifies the waker
    after each commit that changed something; one process owns a SQLite file, so an
    in-process notification reaches every consumer.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, waker: Waker) -> None:
        """Read through the store's connection under its lock."""
        self._conn = conn
        self._lock = lock
        self._waker = waker

    def changes_since(self, revision: int, limit: int = 1000) -> list[Change]:
        """The change feed after ``revision``, oldest first (FeedCompacted below the floor)."""
        with self._lock:
            floor = _floor(self._conn)
            if revision < floor:
                raise FeedCompacted(revision, floor)
            rows = self._conn.execute(
                "SELECT revision, kind, mesh, parent, name, op, at FROM changes "
                "WHERE revision>? ORDER BY revision LIMIT ?",
                (revision, limit),
            ).fetchall()
        return [Change(r[0], ResourceKey(r[1], r[2], r[3], r[4]), r[5], r[6]) for r in rows]

    def revision(self) -> int:
        """The newest committed revision."""
        with self._lock:
            return _revision(self._conn)

    def floor(self) -> int:
        """The newest revision compacted away: changes since an older one are gone."""
        with self._lock:
            return _floor(self._conn)

    async def wait(self, after_revision: int) -> int:
        """The newest revision once a commit has moved it past ``after_revision``."""
        return await self._waker.wait(after_revision)


class SqliteStore:
    """The embedded store: one SQLite file in the data dir (a :class:`~.protocols.Store`)."""

    def __init__(
        self,
        data_dir: Path,
        clock: Clock,
        waker: Waker | None = None,
        *,
        max_pages: int | None = None,
    ) -> None:
        """Open (creating and migrating as needed) ``<data_dir>/meshplane.db``.

        ``waker`` is told each committed revision (a fresh one by default; tests pass
        one that records the calls). ``max_pages`` caps the file's size in pages
        (SQLite's ``max_page_count``): past it a write fails as on a full disk.
        """
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self._clock = clock
        # An existing file must be a sound store; only a missing one is created (integrity).
        integrity.check_file(self.path)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise refusals.StoreUnwritable(storage.describe(error, self.path)) from error
        try:
            _private(self.path)
            integrity.quick_check(self._conn, self.path)
            if self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                # Only a new file can take it without a VACUUM: set before anything is written.
                self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write survives
            # kill -9 and power loss, not only a crash of this process.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Bounded files: checkpoint the WAL every 1000 pages and truncate it back to
            # 4 MiB after. A store created by this release or later frees pages incrementally
            # (maintain()); an older one keeps its free pages for reuse.
            self._conn.execute("PRAGMA wal_autocheckpoint=1000")
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            self.schema_version = schema.migrate(self._conn)
            if max_pages is not None:
                self._conn.execute(f"PRAGMA max_page_count = {int(max_pages)}")
        except sqlite3.DatabaseError as error:
            self._conn.close()
            if storage.is_disk_fault(error):  # read-only, full, unopenable: not damage
                raise refusals.StoreUnwritable(storage.describe(error, self.path)) from error
            raise integrity.damaged(self.path, error) from error
        except BaseException:
            self._conn.close()
            raise
        self._lock = threading.RLock()
        self._waker = waker or Waker()
        if revision := _revision(self._conn):
            self._waker.notify(revision)
        self._feed = SqliteFeed(self._conn, self._lock, self._waker)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """One atomic unit: committed when the block ends, rolled back if it raises.

        A full disk, a read-only or unwritable file become
        :class:`~meshplane.model.errors.ServiceUnavailableException` naming the cause:
        the transaction is rolled back (nothing of it was written, every earlier
        commit stands) and the server keeps serving reads.
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                tx = Transaction(self._conn, self._clock)
                try:
                    yield tx
                except BaseException:
                    self._rollback()
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback()
                unavailable = storage.unavailable(error, self.path)
                if unavailable is None:
                    raise
                raise unavailable from error
        if tx.changes:
            # After COMMIT, outside the lock: a woken consumer reads durable rows at once.
            self._waker.notify(tx.changes[-1].revision)

    def _rollback(self) -> None:
        """End a failed transaction (a failed COMMIT may leave it open)."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def maintain(self, keep_revisions: int, max_tokens: int, tokens_older_than: float) -> Upkeep:
        """Compact the feed, bound the clientToken records, give free pages back.

        Keeps the newest ``keep_revisions`` change rows (at least one: it carries the
        revision), so a reader that lags less than that follows on; one further behind
        gets :class:`FeedCompacted` and rereads whole. Forgets tokens made at or before
        ``tokens_older_than`` and all but the newest ``max_tokens``.
        """
        keep = max(1, keep_revisions)
        with self.transaction() as tx:
            newest = tx.revision()
            changes = self._conn.execute(
                "DELETE FROM changes WHERE revision <= ?", (newest - keep,)
            ).rowcount
            tokens = tx.forget_tokens(not_newer_than=tokens_older_than)
            tokens += self._conn.execute(
                "DELETE FROM client_tokens WHERE rowid IN (SELECT rowid FROM client_tokens "
                "ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (max(0, max_tokens),),
            ).rowcount
        with self._lock:
            try:
                # executescript steps the pragma to the end (execute frees one page only).
                self._conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
                # TRUNCATE: the WAL goes back to zero bytes unless a reader holds it (then
                # it says busy and the next pass tries again).
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as error:
                unavailable = storage.unavailable(error, self.path)
                if unavailable is None:
                    raise
                raise unavailable from error
        return Upkeep(changes, tokens, self._feed.floor())

    def size(self) -> int:
        """Bytes on disk: the database file and its WAL."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    def read(self) -> contextlib.AbstractContextManager[Transaction]:
        """A transaction used only for reading (a consistent view)."""
        return self.transaction(write=False)

    @property
    def location(self) -> str:
        """The database file's path."""
        return str(self.path)

    @property
    def feed(self) -> SqliteFeed:
        """The change feed (revision, changes since one, wait for the next)."""
        return self._feed

    def revision(self) -> int:
        """The newest committed revision."""
        return self._feed.revision()

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._conn.close()
