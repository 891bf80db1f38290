"""`meshplane store backup|restore --store postgresql://…` against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import pgbackups, refusals
from meshplane.store.postgres import PostgresStore, redacted
from meshplane.testing.postgres import TempPostgres

pytestmark = pytest.mark.integration

ACCOUNT = Account("us-west-2", "123456789012")


def _meshplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},
        check=False,
    )


def _service(store: PostgresStore, clock: FakeClock) -> MeshService:
    return MeshService(store, ACCOUNT, Quotas().scaled(20), clock, counting_ids())


def _meshes(store: PostgresStore) -> list[str]:
    with store.read() as tx:
        return sorted(r.key.name for r in tx.list_records("mesh", None))


def test_backup_while_served_then_restore_after_the_replicas_stop(
    tmp_path: Path, postgres_url: str, clock: FakeClock
) -> None:
    """Backup at revision 2 with a replica connected; restore refused until it closes (its writer,
    reader and listener connections are named); then the
    database holds revision 2 again and what it replaced is kept as FILE.replaced."""
    copy = tmp_path / "pg.backup"
    where = redacted(postgres_url)
    store = PostgresStore(postgres_url, clock)
    try:
        service = _service(store, clock)
        service.create(kinds.MESH, "one", "one", {})
        service.create(kinds.MESH, "two", "two", {})
        done = _meshplane("store", "backup", str(copy), "--store", postgres_url)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"backed up {where} at revision 2 to {copy} ({copy.stat().st_size} bytes)\n"
        )
        assert copy.stat().st_mode & 0o777 == 0o600
        service.create(kinds.MESH, "three", "three", {})
        refused = _meshplane("store", "restore", str(copy), "--store", postgres_url)
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            f"error: database {where} is in use by 3 connection(s) of meshplane serve "
            "(from 127.0.0.1); stop every replica before restoring"
        ]
    finally:
        store.close()
    done = _meshplane("store", "restore", str(copy), "--store", postgres_url)
    assert done.returncode == 0, done.stderr
    replaced = tmp_path / "pg.backup.replaced"
    assert done.stdout == (
        f"restored {copy} (revision 2) into {where}; the previous store is kept as {replaced}\n"
    )
    assert json.loads(replaced.read_text())["revision"] == 3
    store = PostgresStore(postgres_url, clock)
    try:
        assert _meshes(store) == ["one", "two"]
        assert store.revision() == 2
        _service(store, clock).create(kinds.MESH, "four", "four", {})
        assert [(c.revision, c.key.name) for c in store.feed.changes_since(0)] == [
            (1, "one"),
            (2, "two"),
            (3, "four"),
        ]
    finally:
        store.close()


def test_a_backup_taken_under_writes_is_one_revision(
    tmp_path: Path, postgres_url: str, clock: FakeClock
) -> None:
    """Backups taken while another replica creates meshes each hold exactly the meshes of the
    revision they name: one snapshot, not tables read at different moments."""
    writer = PostgresStore(postgres_url, clock)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        service = _service(writer, clock)
        while not stop.is_set():
            service.create(kinds.MESH, f"m{len(written)}", f"m{len(written)}", {})
            written.append(1)

    thread = threading.Thread(target=write)
    thread.start()
    seen = []
    try:
        for index in range(5):
            copied = pgbackups.backup(postgres_url, tmp_path / f"b{index}")
            tables = json.loads((tmp_path / f"b{index}").read_text())["tables"]
            revisions = [row[0] for row in tables["changes"]["rows"]]
            assert revisions == list(range(1, copied.revision + 1))
            assert len(tables["resources"]["rows"]) == copied.revision
            seen.append(copied.revision)
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert seen == sorted(seen)
    assert seen[-1] > 0


def test_restore_into_a_new_database_then_it_takes_writes(
    tmp_path: Path, postgres_url: str, postgres_server: TempPostgres, clock: FakeClock
) -> None:
    """A backup restored into an empty database: same revision, nothing replaced, and the next
    create gets the next revision and a new row."""
    store = PostgresStore(postgres_url, clock)
    try:
        service = _service(store, clock)
        for name in ("a", "b", "c"):
            service.create(kinds.MESH, name, name, {}, client_token=f"t-{name}")
    finally:
        store.close()
    pgbackups.backup(postgres_url, tmp_path / "copy")
    target = postgres_server.database()
    restored = pgbackups.restore(tmp_path / "copy", target)
    assert (restored.revision, restored.replaced) == (3, None)
    store = PostgresStore(target, clock)
    try:
        service = _service(store, clock)
        replay = service.create(kinds.MESH, "a", "a", {}, client_token="t-a")
        assert replay["meshName"] == "a"
        service.create(kinds.MESH, "d", "d", {})
        assert _meshes(store) == ["a", "b", "c", "d"]
        assert store.revision() == 4
    finally:
        store.close()


def test_a_file_that_is_not_a_postgresql_backup_is_refused_in_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    """Garbage, or a SQLite backup, is refused before the database is touched."""
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"SQLite format 3\x00" + bytes(100))
    done = _meshplane("store", "restore", str(garbage), "--store", postgres_url)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {garbage} is not a meshplane PostgreSQL backup (made by `meshplane store "
        "backup --store postgresql://...`); a SQLite backup restores into a data dir"
    ]
    with pytest.raises(refusals.StoreDamaged, match="does not exist: nothing to restore"):
        pgbackups.restore(tmp_path / "missing", postgres_url)
