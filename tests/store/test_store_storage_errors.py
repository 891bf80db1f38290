"""A full disk or a read-only store is an App Mesh error naming the cause; nothing is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import errors, kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import storage
from meshplane.store.sqlite import DB_FILE, SqliteStore

ACCOUNT = Account("us-west-2", "123456789012")


def _create_until_refused(
    service: MeshService, acknowledged: list[str]
) -> errors.ServiceUnavailableException:
    """Create meshes until the store refuses one; note each acknowledged name."""
    for index in range(100_000):
        try:
            service.create(kinds.MESH, f"m{index:05}", f"m{index:05}", {})
        except errors.ServiceUnavailableException as refused:
            return refused
        acknowledged.append(f"m{index:05}")
    raise AssertionError("100,000 meshes fit under the page ceiling")


def test_a_full_store_refuses_writes_keeps_reads_and_every_acknowledged_write(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Past its size ceiling a write is ServiceUnavailable naming the disk; reads and data stay."""
    probe = SqliteStore(tmp_path / "d", clock)
    probe.close()
    pages = sqlite3.connect(tmp_path / "d" / DB_FILE).execute("PRAGMA page_count").fetchone()[0]
    store = SqliteStore(tmp_path / "d", clock, max_pages=pages + 6)
    service = MeshService(store, ACCOUNT, Quotas(meshes=100_000), clock, counting_ids())
    acknowledged: list[str] = []
    full = _create_until_refused(service, acknowledged)
    path = tmp_path / "d" / DB_FILE
    assert full.message == (
        f"the store's disk is full: {path} (database or disk is full); free space on it; "
        "reads still work and nothing of this request was written"
    )
    assert len(acknowledged) > 10
    with store.read() as tx:
        assert [r.key.name for r in tx.list_records("mesh", None)] == acknowledged
    assert store.revision() == len(acknowledged)
    store.close()
    reopened = SqliteStore(tmp_path / "d", clock)
    try:
        with reopened.read() as tx:
            assert [r.key.name for r in tx.list_records("mesh", None)] == acknowledged
        # With room again, writing goes on where it stopped.
        again = MeshService(reopened, ACCOUNT, Quotas(meshes=100_000), clock, counting_ids())
        again.create(kinds.MESH, "after", "after", {})
        assert reopened.revision() == len(acknowledged) + 1
    finally:
        reopened.close()


def test_a_read_only_database_error_names_the_cause(tmp_path: Path) -> None:
    """SQLite's READONLY result becomes ServiceUnavailable 'the store is read-only'."""
    path = tmp_path / "ro.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    error = storage.unavailable(raised.value, path)
    assert error is not None
    assert error.code == "ServiceUnavailableException"
    assert error.message == (
        f"the store is read-only: {path} (attempt to write a readonly database); make it "
        "writable; reads still work and nothing of this request was written"
    )


def test_other_sqlite_errors_are_not_disguised(tmp_path: Path) -> None:
    """A constraint violation is a bug, not the disk: it is not turned into an App Mesh error."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as raised:
        conn.execute("INSERT INTO t VALUES (1)")
    assert storage.unavailable(raised.value, tmp_path / "x.db") is None
