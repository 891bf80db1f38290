"""The PostgreSQL store: several control-plane replicas on one database (high availability).

Implements :mod:`meshplane.store.protocols` as :mod:`meshplane.store.sqlite` does,
with one difference that matters: writers in *other processes* share the data.

- Every write transaction first takes one transaction-level advisory lock, so
  writers across replicas run one at a time, as SQLite's single writer does: the
  reads and checks of a request and its writes cannot interleave with another's,
  optimistic versions and clientToken idempotency keep their meaning.
- Under that lock the transaction bumps the one-row ``feed_revision`` counter for
  each change it records, so revisions are gap-free and in commit order (a rolled
  back transaction rolls its numbers back too).
- The change feed is the durable ``changes`` table; each commit also sends
  ``NOTIFY`` with its newest revision. A listener thread (its own connection,
  :class:`~meshplane.store.pglisten.Listener`) hands every notification to the
  :class:`~meshplane.store.waking.Waker`, so a write through replica A wakes the
  sync stage of replica B, which reads the table. A lost notification costs
  nothing but latency: after a reconnect the listener notifies the current revision.

Only the composition root names this module; psycopg is an optional dependency
(``pip install 'meshplane[postgres]'``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg

from meshplane.kit.clock import Clock
from meshplane.model import errors, extensions
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource
from meshplane.store import pgobjects, pgschema, refusals
from meshplane.store.pglisten import CHANNEL, Listener
from meshplane.store.protocols import FeedCompacted
from meshplane.store.records import Change, Event, Record, Tag, endpoint_of, endpoint_row
from meshplane.store.sqlite import Upkeep
from meshplane.store.waking import Waker

WRITE_LOCK = 0x6D657368_0002
"""Advisory lock key every write transaction holds until it commits."""

Conn = psycopg.Connection[tuple[Any, ...]]

_RESOURCE_COLUMNS = (
    "seq, kind, mesh, parent, name, uid, arn, owner, version, created_at, updated_at, spec, tags"
)


def is_url(value: str) -> bool:
    """Whether a ``--store`` value names a PostgreSQL database."""
    return value.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs and ``serve``'s banner."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _record(row: tuple[Any, ...]) -> Record:
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


def _key(key: ResourceKey) -> tuple[str, str, str, str]:
    return (key.kind, key.mesh, key.parent, key.name)


def _tags_json(tags: Sequence[Tag]) -> str:
    return json.dumps([{"key": t.key, "value": t.value} for t in tags])


class PgTransaction:
    """Reads and writes inside one PostgreSQL transaction; obtained from the store only.

    Implements :class:`~meshplane.store.protocols.WriteTransaction`.
    """

    def __init__(self, conn: Conn, clock: Clock) -> None:
        """Bind to an open transaction."""
        self._conn = conn
        self._clock = clock
        self.changes: list[Change] = []

    def _one(self, sql: Any, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self._conn.execute(sql, params).fetchone()

    def _all(self, sql: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    # -- resources ---------------------------------------------------------------------------

    def get(self, key: ResourceKey) -> Record | None:
        """The stored resource at ``key``, or ``None``."""
        row = self._one(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources "
            "WHERE kind=%s AND mesh=%s AND parent=%s AND name=%s".encode(),
            _key(key),
        )
        return _record(row) if row else None

    def get_by_arn(self, arn: str) -> Record | None:
        """The stored resource with this ARN, or ``None``."""
        row = self._one(f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE arn=%s".encode(), (arn,))
        return _record(row) if row else None

    def list_records(
        self, kind: str, mesh: str | None, parent: str = "", after: int = 0, limit: int = -1
    ) -> list[Record]:
        """Resources of one kind in one scope (``mesh=None`` for meshes), by creation order."""
        bound = None if limit < 0 else limit
        if mesh is None:
            rows = self._all(
                f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE kind=%s AND seq>%s "
                "ORDER BY seq LIMIT %s".encode(),
                (kind, after, bound),
            )
        else:
            rows = self._all(
                f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE mesh=%s AND kind=%s "
                "AND parent=%s AND seq>%s ORDER BY seq LIMIT %s".encode(),
                (mesh, kind, parent, after, bound),
            )
        return [_record(row) for row in rows]

    def list_mesh(self, mesh: str) -> list[Record]:
        """Every resource of one mesh (the mesh itself included), by creation order."""
        rows = self._all(
            f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE mesh=%s ORDER BY seq".encode(),
            (mesh,),
        )
        return [_record(row) for row in rows]

    def count(self, kind: str, mesh: str | None, parent: str = "") -> int:
        """How many resources of one kind live in one scope."""
        if mesh is None:
            row = self._one("SELECT count(*) FROM resources WHERE kind=%s", (kind,))
        else:
            row = self._one(
                "SELECT count(*) FROM resources WHERE mesh=%s AND kind=%s AND parent=%s",
                (mesh, kind, parent),
            )
        return int(row[0]) if row else 0

    def count_in_mesh(self, mesh: str, exclude_kind: str) -> int:
        """How many resources other than ``exclude_kind`` a mesh holds."""
        row = self._one(
            "SELECT count(*) FROM resources WHERE mesh=%s AND kind<>%s", (mesh, exclude_kind)
        )
        return int(row[0]) if row else 0

    def insert(self, resource: Resource, tags: Sequence[Tag]) -> Record:
        """Store a new resource and record the change."""
        row = self._one(
            "INSERT INTO resources (kind, mesh, parent, name, uid, arn, owner, version, "
            "created_at, updated_at, spec, tags) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING seq",
            (
                *_key(resource.key),
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
        return Record(resource, tuple(tags), int(row[0]) if row else 0)

    def replace(self, resource: Resource) -> None:
        """Overwrite a resource's spec and metadata (its tags and order are kept)."""
        self._conn.execute(
            "UPDATE resources SET version=%s, updated_at=%s, spec=%s "
            "WHERE kind=%s AND mesh=%s AND parent=%s AND name=%s",
            (
                resource.version,
                resource.updated_at,
                json.dumps(resource.spec, sort_keys=True),
                *_key(resource.key),
            ),
        )
        self._change(resource.key, "update")

    def set_tags(self, key: ResourceKey, tags: Sequence[Tag]) -> None:
        """Replace a resource's tags (a change only when its extension tags move)."""
        before = self.get(key)
        self._conn.execute(
            "UPDATE resources SET tags=%s WHERE kind=%s AND mesh=%s AND parent=%s AND name=%s",
            (_tags_json(tags), *_key(key)),
        )
        after = extensions.of((t.key, t.value) for t in tags)
        if before is not None and dict(before.resource.extensions) != after:
            self._change(key, "update")

    def delete(self, key: ResourceKey) -> None:
        """Remove a resource, its outgoing references and (for nodes) its endpoints."""
        self._conn.execute(
            "DELETE FROM resources WHERE kind=%s AND mesh=%s AND parent=%s AND name=%s",
            _key(key),
        )
        self.set_refs(key, [])
        if key.kind == "virtualNode":
            self._conn.execute(
                "DELETE FROM endpoints WHERE mesh=%s AND virtual_node=%s", (key.mesh, key.name)
            )
        self._change(key, "delete")

    # -- references --------------------------------------------------------------------------

    def set_refs(self, src: ResourceKey, targets: Sequence[ResourceKey]) -> None:
        """Replace the references ``src`` holds (the edges that keep targets alive)."""
        self._conn.execute(
            "DELETE FROM refs WHERE src_kind=%s AND src_mesh=%s AND src_parent=%s AND src_name=%s",
            _key(src),
        )
        rows = [(*_key(src), *_key(dst)) for dst in sorted(set(targets))]
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany("INSERT INTO refs VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)

    def referrers(self, dst: ResourceKey) -> list[ResourceKey]:
        """Every resource that references ``dst``, sorted."""
        rows = self._all(
            "SELECT src_kind, src_mesh, src_parent, src_name FROM refs "
            "WHERE dst_kind=%s AND dst_mesh=%s AND dst_parent=%s AND dst_name=%s "
            "ORDER BY src_kind, src_parent, src_name",
            _key(dst),
        )
        return [ResourceKey(*row) for row in rows]

    # -- idempotency -------------------------------------------------------------------------

    def token(self, operation: str, token: str, newer_than: float) -> tuple[str, Any] | None:
        """The (request digest, response) recorded for a clientToken after ``newer_than``."""
        row = self._one(
            "SELECT digest, response FROM client_tokens WHERE operation=%s AND token=%s AND at>%s",
            (operation, token, newer_than),
        )
        return (str(row[0]), json.loads(row[1])) if row else None

    def remember_token(
        self, operation: str, token: str, digest: str, response: Any, at: float
    ) -> None:
        """Record the outcome of a request carrying a clientToken (replacing an expired one)."""
        self._conn.execute(
            "INSERT INTO client_tokens VALUES (%s,%s,%s,%s,%s) ON CONFLICT (operation, token) "
            "DO UPDATE SET digest=excluded.digest, response=excluded.response, at=excluded.at",
            (operation, token, digest, json.dumps(response, sort_keys=True), at),
        )

    def forget_tokens(self, not_newer_than: float) -> int:
        """Delete the clientToken records made at or before a time; returns how many."""
        cur = self._conn.execute("DELETE FROM client_tokens WHERE at<=%s", (not_newer_than,))
        return cur.rowcount

    # -- endpoints ---------------------------------------------------------------------------

    def set_endpoints(
        self, mesh: str, virtual_node: str, source: str, endpoints: Sequence[Endpoint]
    ) -> None:
        """Replace the endpoints one source registered for a virtual node."""
        self._conn.execute(
            "DELETE FROM endpoints WHERE mesh=%s AND virtual_node=%s AND source=%s",
            (mesh, virtual_node, source),
        )
        rows = [(mesh, virtual_node, source, *endpoint_row(e)) for e in endpoints]
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany("INSERT INTO endpoints VALUES (%s,%s,%s,%s,%s,%s,%s)", rows)
        self._change(ResourceKey("virtualNode", mesh, "", virtual_node), "endpoints")

    def endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every registered endpoint of a mesh, by virtual node, sorted."""
        found: dict[str, list[Endpoint]] = {}
        rows = self._all(
            "SELECT virtual_node, listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=%s",
            (mesh,),
        )
        for node, *columns in rows:
            found.setdefault(node, []).append(endpoint_of(*columns))
        return {node: tuple(sorted(set(eps))) for node, eps in sorted(found.items())}

    def node_endpoints(self, mesh: str, virtual_node: str) -> tuple[Endpoint, ...]:
        """The registered endpoints of one virtual node, sorted."""
        rows = self._all(
            "SELECT listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=%s AND virtual_node=%s",
            (mesh, virtual_node),
        )
        return tuple(sorted({endpoint_of(*row) for row in rows}))

    def registrations(self) -> dict[tuple[str, str, str], tuple[Endpoint, ...]]:
        """Every registration: (mesh, virtual node, source) → its endpoints, sorted."""
        found: dict[tuple[str, str, str], set[Endpoint]] = {}
        rows = self._all(
            "SELECT mesh, virtual_node, source, listener_port, address, port, attributes "
            "FROM endpoints"
        )
        for mesh, node, source, *columns in rows:
            found.setdefault((mesh, node, source), set()).add(endpoint_of(*columns))
        return {key: tuple(sorted(eps)) for key, eps in sorted(found.items())}

    # -- feed --------------------------------------------------------------------------------

    def _change(self, key: ResourceKey, op: str) -> None:
        at = self._clock()
        # Under the write lock: the next number, in commit order, undone by a rollback.
        row = self._one("UPDATE feed_revision SET value=value+1 RETURNING value")
        revision = int(row[0]) if row else 0
        self._conn.execute(
            "INSERT INTO changes (revision, kind, mesh, parent, name, op, at) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (revision, *_key(key), op, at),
        )
        self.changes.append(Change(revision, key, op, at))

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        return _revision(self._conn)

    # -- manifest objects ------------------------------------------------------------------

    def manifest_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One stored manifest object's document, or ``None``."""
        return pgobjects.get(self._conn, kind, namespace, name)

    def manifest_objects(self) -> list[dict[str, Any]]:
        """Every stored manifest object, ordered by kind, namespace and name."""
        return pgobjects.all_documents(self._conn)

    def manifest_events(self, kind: str, namespace: str, name: str) -> list[Event]:
        """A manifest object's events, oldest first."""
        return pgobjects.events(self._conn, kind, namespace, name)

    def put_manifest_object(
        self, kind: str, namespace: str, name: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace one manifest object."""
        pgobjects.put(self._conn, kind, namespace, name, document)

    def remove_manifest_object(self, kind: str, namespace: str, name: str) -> None:
        """Forget a manifest object and its events."""
        pgobjects.remove(self._conn, kind, namespace, name)

    def record_manifest_event(
        self,
        identity: tuple[str, str, str, str],
        event_type: str,
        reason: str,
        message: str,
        at: float,
    ) -> None:
        """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
        pgobjects.record_event(self._conn, identity, event_type, reason, message, at)


def _revision(conn: Conn) -> int:
    row = conn.execute("SELECT value FROM feed_revision").fetchone()
    return int(row[0]) if row else 0


def _floor(conn: Conn) -> int:
    """The newest revision whose change row was compacted away (0: none was)."""
    row = conn.execute("SELECT min(revision) FROM changes").fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) - 1


class PgFeed:
    """The change feed of a :class:`PostgresStore`: the ``changes`` table, woken by NOTIFY.

    Implements :class:`~meshplane.store.protocols.Feed`.
    """

    def __init__(self, store: PostgresStore, waker: Waker) -> None:
        """Read through the store's connection."""
        self._store = store
        self._waker = waker

    def changes_since(self, revision: int, limit: int = 1000) -> list[Change]:
        """The change feed after ``revision``, oldest first (FeedCompacted below the floor)."""
        with self._store.read() as tx:
            conn = tx._conn
            floor = _floor(conn)
            if revision < floor:
                raise FeedCompacted(revision, floor)
            rows = conn.execute(
                "SELECT revision, kind, mesh, parent, name, op, at FROM changes "
                "WHERE revision>%s ORDER BY revision LIMIT %s",
                (revision, limit),
            ).fetchall()
        return [Change(r[0], ResourceKey(r[1], r[2], r[3], r[4]), r[5], r[6]) for r in rows]

    def revision(self) -> int:
        """The newest committed revision."""
        with self._store.read() as tx:
            return tx.revision()

    def floor(self) -> int:
        """The newest revision compacted away: changes since an older one are gone."""
        with self._store.read() as tx:
            return _floor(tx._conn)

    async def wait(self, after_revision: int) -> int:
        """The newest revision once a commit on any replica moved it past ``after_revision``."""
        return await self._waker.wait(after_revision)


class _Session:
    """One connection and the lock that lends it to one transaction at a time.

    A lost connection is replaced at the next transaction.
    """

    def __init__(self, connect: Callable[[], Conn]) -> None:
        self._connect = connect
        self.lock = threading.RLock()
        self.conn = connect()

    def begin(self, write: bool) -> Conn:
        """Open a transaction; a connection found dead at BEGIN is replaced once.

        Nothing of the transaction has run yet, so retrying on a new connection is
        safe: a server restart or a dropped connection costs no request.
        """
        for attempt in (1, 2):
            if self.conn.closed or self.conn.broken:
                self.conn = self._connect()
            try:
                if write:
                    self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                    # Statements after the lock see every commit made before it was granted.
                    self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                else:
                    self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.OperationalError:
                if attempt == 2 or not self.conn.broken:
                    raise
                continue
            return self.conn
        raise AssertionError("unreachable")

    def rollback(self) -> None:
        """End a failed transaction (a failed COMMIT may leave it open)."""
        if not self.conn.closed and not self.conn.broken:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class PostgresStore:
    """A store in one PostgreSQL database that replicas share (a :class:`~.protocols.Store`).

    Two connections: writes on one, reads (the API's, the sync stage's feed) on the
    other, so a read never waits behind a write that waits for another replica's lock.
    """

    def __init__(self, url: str, clock: Clock, waker: Waker | None = None) -> None:
        """Connect, create or migrate the schema, start listening for other replicas' commits."""
        self.url = url
        self._clock = clock
        self._writer = _Session(self._connect)
        try:
            self.schema_version = pgschema.migrate(self._writer.conn, self.location)
            self._reader = _Session(self._connect)
        except BaseException:
            self._writer.close()
            raise
        self._waker = waker or Waker()
        self._feed = PgFeed(self, self._waker)
        self._listener = Listener(url, self._waker, self.revision)
        if revision := self.revision():
            self._waker.notify(revision)
        self._listener.start()

    def _connect(self) -> Conn:
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as error:
            raise refusals.StoreUnwritable(
                f"cannot connect to the PostgreSQL store {self.location}: {error}"
            ) from error

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[PgTransaction]:
        """One atomic unit: committed when the block ends, rolled back if it raises.

        A write transaction holds the database-wide write lock from its first
        statement to its commit. A connection found dead at BEGIN is replaced; one
        lost midway (or a database that cannot be reached) becomes
        :class:`~meshplane.model.errors.ServiceUnavailableException`, nothing written.
        """
        session = self._writer if write else self._reader
        with session.lock:
            try:
                conn = session.begin(write)
                tx = PgTransaction(conn, self._clock)
                try:
                    yield tx
                except BaseException:
                    session.rollback()
                    raise
                if tx.changes:
                    conn.execute(
                        "SELECT pg_notify(%s, %s)", (CHANNEL, str(tx.changes[-1].revision))
                    )
                conn.execute("COMMIT")
            except (psycopg.OperationalError, refusals.StoreUnwritable) as error:
                session.rollback()
                raise errors.ServiceUnavailableException(
                    f"the PostgreSQL store {self.location} is unreachable ({error}); "
                    "nothing of this request was written"
                ) from error
        if tx.changes:
            self._waker.notify(tx.changes[-1].revision)

    def read(self) -> contextlib.AbstractContextManager[PgTransaction]:
        """A transaction used only for reading (one consistent snapshot)."""
        return self.transaction(write=False)

    def maintain(self, keep_revisions: int, max_tokens: int, tokens_older_than: float) -> Upkeep:
        """Compact the feed and bound the clientToken records (PostgreSQL vacuums by itself)."""
        keep = max(1, keep_revisions)
        with self.transaction() as tx:
            newest = tx.revision()
            changes = tx._conn.execute(
                "DELETE FROM changes WHERE revision <= %s", (newest - keep,)
            ).rowcount
            tokens = tx.forget_tokens(not_newer_than=tokens_older_than)
            tokens += tx._conn.execute(
                "DELETE FROM client_tokens WHERE (operation, token) IN (SELECT operation, token "
                "FROM client_tokens ORDER BY at DESC OFFSET %s)",
                (max(0, max_tokens),),
            ).rowcount
        return Upkeep(changes, tokens, self._feed.floor())

    @property
    def location(self) -> str:
        """The database URL without its password."""
        return redacted(self.url)

    @property
    def feed(self) -> PgFeed:
        """The change feed (revision, changes since one, wait for the next)."""
        return self._feed

    def revision(self) -> int:
        """The newest committed revision (of every replica)."""
        return self._feed.revision()

    def close(self) -> None:
        """Stop listening and close the connections."""
        self._listener.stop()
        self._reader.close()
        self._writer.close()
