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
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from meshplane.kit.clock import Clock
from meshplane.model.kinds import ResourceKey
from meshplane.store import integrity, refusals, schema, storage
from meshplane.store.protocols import FeedCompacted
from meshplane.store.records import Change
from meshplane.store.sqlbase import MeshRows, Rows, SqlTransaction, key_params
from meshplane.store.waking import Waker

DB_FILE = "meshplane.db"
WAL_LIMIT_BYTES = 4 * 1024 * 1024
"""The WAL is truncated back to this size after a checkpoint."""
VACUUM_PAGES = 2000
"""Free pages returned to the file system per maintenance pass (8 MiB at 4 KiB pages)."""


class Transaction(SqlTransaction):
    """Reads and writes inside one SQLite transaction; obtained from the store only.

    Implements :class:`~meshplane.store.protocols.WriteTransaction` (and so the read one)
    with :class:`~meshplane.store.sqlbase.SqlTransaction`'s queries; revisions are the
    ``changes`` table's rowids.
    """

    _conn: sqlite3.Connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one statement (SQLite takes ``?`` placeholders as they are)."""
        return self._conn.execute(sql, params)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per row of parameters."""
        self._conn.executemany(sql, rows)

    def _inserted(self, cursor: Rows) -> int:
        assert isinstance(cursor, sqlite3.Cursor)
        return int(cursor.lastrowid or 0)

    def _change(self, key: ResourceKey, op: str) -> None:
        at = self._clock()
        cur = self._conn.execute(
            "INSERT INTO changes (kind, mesh, parent, name, op, at) VALUES (?,?,?,?,?,?)",
            (*key_params(key), op, at),
        )
        self.changes.append(Change(int(cur.lastrowid or 0), key, op, at))

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        return _revision(self._conn)


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
        self._objects = Waker()

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

    @property
    def objects(self) -> Waker:
        """Counts commits that wrote manifest objects (one process per data dir: all of them)."""
        return self._objects


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
        self._rows = MeshRows()
        """Each mesh's last whole read (whole reads fetch only the rows that changed)."""

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
                tx = Transaction(self._conn, self._clock, self._rows)
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
        if tx.objects_written:
            self._feed.objects.bump()

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
