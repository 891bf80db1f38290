"""``meshplane store backup`` / ``restore``: whole-store copies that are consistent and online.

A backup uses SQLite's online backup API over one read transaction, so it is a
consistent picture of one revision even while ``meshplane serve`` keeps writing;
the copy is written beside its destination and renamed into place only after it
passes the quick check, so a failed backup never leaves a half file under the
name an operator will later restore from. A backup is one self-contained file
(rollback journal, no ``-wal``), mode 0600.

A restore needs the data dir's lock (no server may run on it), checks the file
like a store at start (not empty, a SQLite database, passes the quick check, a
schema this meshplane knows) and keeps the store it replaces beside it as
``meshplane.db.replaced`` — with its ``-wal``, which belongs to it and would
corrupt the restored file if left in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from pathlib import Path

from meshplane.store import integrity, refusals, schema
from meshplane.store.sqlite import DB_FILE

REPLACED_SUFFIX = ".replaced"


@dataclasses.dataclass(frozen=True)
class Copied:
    """What a backup or restore copied: the files and the revision they hold."""

    source: Path | str
    destination: Path | str
    """A file, or a PostgreSQL store's location (its URL without the password)."""
    revision: int
    size: int
    replaced: Path | None = None
    """Where the store a restore replaced was kept (``None``: there was none)."""


def backup(data_dir: Path, destination: Path) -> Copied:
    """Copy the data dir's store to ``destination`` consistently, even while it is served."""
    source = data_dir / DB_FILE
    integrity.check_file(source)
    if not source.exists():
        raise refusals.StoreDamaged(f"{source} does not exist: there is no store to back up")
    partial = destination.with_name(destination.name + ".partial")
    _copy(source, partial)
    os.replace(partial, destination)
    return Copied(source, destination, _revision(destination), destination.stat().st_size)


def restore(source: Path, data_dir: Path) -> Copied:
    """Make ``source`` the data dir's store; the caller holds the data dir's lock."""
    integrity.check_file(source)
    if not source.exists():
        raise refusals.StoreDamaged(f"{source} does not exist: nothing to restore")
    _check(source)
    target = data_dir / DB_FILE
    replaced: Path | None = None
    if target.exists():
        replaced = target.with_name(DB_FILE + REPLACED_SUFFIX)
        os.replace(target, replaced)
    for suffix in ("-wal", "-shm"):
        stale = target.with_name(DB_FILE + suffix)
        if stale.exists():
            if replaced is not None and suffix == "-wal":
                os.replace(stale, replaced.with_name(replaced.name + suffix))
            else:
                stale.unlink()
    partial = target.with_name(DB_FILE + ".partial")
    _copy(source, partial)
    os.replace(partial, target)
    return Copied(source, target, _revision(target), target.stat().st_size, replaced)


def _check(path: Path) -> None:
    """Refuse a file that is not a store this meshplane can serve (as at start)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity.quick_check(conn, path)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as error:
        raise integrity.damaged(path, error) from error
    finally:
        conn.close()
    if version > len(schema.MIGRATIONS):
        raise refusals.StoreTooNew(
            f"{path} has schema version {version}, newer than this meshplane "
            f"({len(schema.MIGRATIONS)}); restore it with a newer meshplane"
        )
    if version == 0:
        raise refusals.StoreDamaged(f"{path} is a SQLite database but not a meshplane store")


def _copy(source: Path, destination: Path) -> None:
    """SQLite's online backup of ``source`` into a new private file, checked before use."""
    with contextlib.suppress(FileNotFoundError):
        destination.unlink()
    fd = os.open(destination, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.close(fd)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(destination, isolation_level=None)
    try:
        # One step (pages=-1): the whole copy is read in a single read transaction.
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        integrity.quick_check(dst, destination)
    except BaseException:
        dst.close()
        with contextlib.suppress(FileNotFoundError):
            destination.unlink()
        raise
    finally:
        src.close()
    dst.close()


def _revision(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT coalesce(max(revision), 0) FROM changes").fetchone()
        return int(row[0])
    finally:
        conn.close()
