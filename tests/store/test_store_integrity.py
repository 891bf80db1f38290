"""A store is checked before it is served: damaged ones refused in one line, missing ones made."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Resource
from meshplane.store import integrity, refusals, schema
from meshplane.store.sqlite import DB_FILE, SqliteStore

WAY_OUT = "restore a backup (meshplane store restore FILE) or move it away to start empty"
PAGE = 4096


def _filled(data_dir: Path, clock: FakeClock, count: int = 400) -> Path:
    """A closed store of ``count`` meshes with bulky specs, all in the main file (no WAL)."""
    store = SqliteStore(data_dir, clock)
    with store.transaction() as tx:
        for index in range(count):
            key = ResourceKey("mesh", f"m{index:04}", "", f"m{index:04}")
            arn = kinds.arn("us-west-2", "123456789012", key)
            spec = {"padding": "x" * 200}
            tx.insert(Resource(key, arn, f"u{index}", 1, 1.0, 1.0, spec, "123456789012"), [])
    store.close()
    path = data_dir / DB_FILE
    assert not path.with_name(DB_FILE + "-wal").exists()
    return path


def test_a_missing_store_is_created_private(tmp_path: Path, clock: FakeClock) -> None:
    """No store yet: one is created, the file 0600 and the data dir 0700."""
    store = SqliteStore(tmp_path / "new", clock)
    try:
        assert store.revision() == 0
        assert (tmp_path / "new" / DB_FILE).stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    finally:
        store.close()


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path, clock: FakeClock) -> None:
    """A store an older meshplane left 0644 is 0600 once opened, its data intact."""
    path = _filled(tmp_path / "d", clock, count=3)
    path.chmod(0o644)
    store = SqliteStore(tmp_path / "d", clock)
    try:
        assert store.revision() == 3
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        store.close()


def test_a_zero_byte_store_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """An empty file is not an empty store: it is refused, naming the file and the way out."""
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / DB_FILE
    path.write_bytes(b"")
    with pytest.raises(refusals.StoreDamaged) as refused:
        SqliteStore(tmp_path / "d", clock)
    assert str(refused.value) == f"{path} is empty (0 bytes), not a meshplane store; {WAY_OUT}"
    assert path.stat().st_size == 0


def test_a_truncated_store_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """Half a store fails the quick check and is refused; the file is left as it was."""
    path = _filled(tmp_path / "d", clock)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(refusals.StoreDamaged) as refused:
        SqliteStore(tmp_path / "d", clock)
    assert str(refused.value) == f"{path} is damaged (database disk image is malformed); {WAY_OUT}"
    assert path.stat().st_size == len(data) // 2


def test_a_store_with_a_corrupted_page_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A page overwritten with garbage fails the quick check instead of being served."""
    path = _filled(tmp_path / "d", clock)
    data = bytearray(path.read_bytes())
    data[5 * PAGE : 6 * PAGE] = bytes((i * 7 + 3) % 251 for i in range(PAGE))
    path.write_bytes(bytes(data))
    with pytest.raises(refusals.StoreDamaged) as refused:
        SqliteStore(tmp_path / "d", clock)
    assert str(refused.value) == (
        f"{path} fails SQLite's quick check (Page 6: btreeInitPage() returns error code 11); "
        f"{WAY_OUT}"
    )


def test_a_store_with_a_damaged_header_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A header overwritten past its magic string is one line, not a traceback."""
    path = _filled(tmp_path / "d", clock)
    data = bytearray(path.read_bytes())
    data[16:100] = b"\xff" * 84
    path.write_bytes(bytes(data))
    with pytest.raises(refusals.StoreDamaged) as refused:
        SqliteStore(tmp_path / "d", clock)
    assert str(refused.value) == f"{path} is damaged (file is not a database); {WAY_OUT}"


def test_a_foreign_file_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A file that is not SQLite at all (someone's notes) is refused and kept."""
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / DB_FILE
    path.write_text("not a database\n")
    with pytest.raises(refusals.StoreDamaged) as refused:
        SqliteStore(tmp_path / "d", clock)
    assert str(refused.value) == (
        f"{path} is not a SQLite database (truncated or foreign); {WAY_OUT}"
    )
    assert path.read_text() == "not a database\n"


def test_quick_check_problems_are_named(tmp_path: Path) -> None:
    """A database whose quick check reports a problem is refused with SQLite's first line."""
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT NOT NULL)")
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("INSERT INTO t VALUES ('a')")
    conn.execute("UPDATE sqlite_master SET sql='CREATE TABLE t (x TEXT CHECK (x != ''a''))'")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(refusals.StoreDamaged) as refused:
            integrity.quick_check(conn, path)
    finally:
        conn.close()
    assert str(refused.value) == (
        f"{path} fails SQLite's quick check (CHECK constraint failed in t); {WAY_OUT}"
    )


def _serve_once(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "meshplane.cli.main",
            "serve",
            "--data-dir",
            str(data_dir),
            "--api-port",
            "0",
            "--xds-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},
        check=False,
    )


@pytest.mark.integration
def test_serve_refuses_a_zero_byte_store_in_one_line(tmp_path: Path) -> None:
    """`meshplane serve` on a zero-byte store exits 1 printing one line, no traceback."""
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / DB_FILE
    path.write_bytes(b"")
    done = _serve_once(tmp_path / "d")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {path} is empty (0 bytes), not a meshplane store; {WAY_OUT}"
    ]


@pytest.mark.integration
def test_serve_refuses_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    """A store from a newer meshplane: one line naming both versions, exit 1."""
    (tmp_path / "d").mkdir()
    conn = sqlite3.connect(tmp_path / "d" / DB_FILE)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    done = _serve_once(tmp_path / "d")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: data dir has schema version 99, newer than this meshplane "
        f"({len(schema.MIGRATIONS)}); upgrade meshplane or use another --data-dir"
    ]
