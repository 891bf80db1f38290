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
- A commit that wrote manifest objects also sends ``NOTIFY`` on the objects channel with
  its transaction id; the listener hands it to :attr:`PgFeed.objects` (``get -w`` waits on
  it), so a position read from one replica means the same on another.

Only the composition root names this module; psycopg is an optional dependency
(``pip install 'meshplane[postgres]'``).
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg

from meshplane.kit.clock import Clock
from meshplane.model import errors
from meshplane.model.kinds import ResourceKey
from meshplane.store import pgschema, refusals
from meshplane.store.pglisten import APPLICATION_NAME, CHANNEL, OBJECTS_CHANNEL, Listener
from meshplane.store.protocols import FeedCompacted
from meshplane.store.records import Change
from meshplane.store.sqlbase import MeshRows, Rows, SqlTransaction, key_params
from meshplane.store.sqlite import Upkeep
from meshplane.store.waking import Waker

WRITE_LOCK = 0x6D657368_0002
"""Advisory lock key every write transaction holds until it commits."""

Conn = psycopg.Connection[tuple[Any, ...]]


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


class PgTransaction(SqlTransaction):
    """Reads and writes inside one PostgreSQL transaction; obtained from the store only.

    Implements :class:`~meshplane.store.protocols.WriteTransaction` with
    :class:`~meshplane.store.sqlbase.SqlTransaction`'s queries; revisions come from the
    one-row counter, bumped under the write lock.
    """

    UNLIMITED = None
    INSERT_SUFFIX = " RETURNING seq"
    BYTE_ORDER = ' COLLATE "C"'
    _conn: Conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        """Execute one statement, its ``?`` placeholders as psycopg's ``%s``."""
        return self._conn.execute(sql.replace("?", "%s").encode(), params)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per row of parameters."""
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s").encode(), rows)

    def _inserted(self, cursor: Rows) -> int:
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _change(self, key: ResourceKey, op: str) -> None:
        at = self._clock()
        # Under the write lock: the next number, in commit order, undone by a rollback.
        row = self.run("UPDATE feed_revision SET value=value+1 RETURNING value").fetchone()
        revision = int(row[0]) if row else 0
        self.run(
            "INSERT INTO changes (revision, kind, mesh, parent, name, op, at) "
            "VALUES (?,?,?,?,?,?,?)",
            (revision, *key_params(key), op, at),
        )
        self.changes.append(Change(revision, key, op, at))

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        return _revision(self._conn)


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
        self._objects = Waker()

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

    @property
    def objects(self) -> Waker:
        """The transaction id of the newest manifest-object commit heard of (any replica)."""
        return self._objects


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
        self._rows = MeshRows()
        """Each mesh's last whole read (whole reads fetch only the rows that changed)."""
        self._feed = PgFeed(self, self._waker)
        self._listener = Listener(url, self._waker, self.revision, self._feed.objects)
        if revision := self.revision():
            self._waker.notify(revision)
        self._listener.start()

    def _connect(self) -> Conn:
        try:
            return psycopg.connect(self.url, autocommit=True, application_name=APPLICATION_NAME)
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
        objects_at = 0
        with session.lock:
            try:
                conn = session.begin(write)
                tx = PgTransaction(conn, self._clock, self._rows)
                try:
                    yield tx
                except BaseException:
                    session.rollback()
                    raise
                if tx.changes:
                    conn.execute(
                        "SELECT pg_notify(%s, %s)", (CHANNEL, str(tx.changes[-1].revision))
                    )
                if tx.objects_written:
                    # Delivered at commit to every replica's listener: this transaction's id,
                    # which grows in commit order (writers hold the write lock), so every
                    # replica numbers manifest-object commits alike.
                    row = conn.execute(
                        "SELECT txid_current(), pg_notify(%s, txid_current()::text)",
                        (OBJECTS_CHANNEL,),
                    ).fetchone()
                    objects_at = int(row[0]) if row else 0
                conn.execute("COMMIT")
            except (psycopg.OperationalError, refusals.StoreUnwritable) as error:
                session.rollback()
                raise errors.ServiceUnavailableException(
                    f"the PostgreSQL store {self.location} is unreachable ({error}); "
                    "nothing of this request was written"
                ) from error
        if tx.changes:
            self._waker.notify(tx.changes[-1].revision)
        if objects_at:
            self._feed.objects.notify(objects_at)  # here at once; the listener's is a repeat

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
                "DELETE FROM client_tokens WHERE (principal, operation, token) IN (SELECT "
                "principal, operation, token FROM client_tokens ORDER BY at DESC OFFSET %s)",
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
