"""Is this SQLite file a sound meshplane store? Checked before anything is served from it.

A store that opens "fine" but is wrong is worse than one that does not open: a
zero-byte file reads as an empty store, and an empty store pushes empty config
to every Envoy that reconnects. So an *existing* file must be a SQLite database
that passes ``PRAGMA quick_check`` (page structure, truncation, a damaged
header); only a *missing* file is created. Anything else is refused with one
line naming the file and the way out: restore a backup, or move the file away
to start empty on purpose.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meshplane.store.refusals import StoreDamaged

SQLITE_MAGIC = b"SQLite format 3\x00"
WAY_OUT = "restore a backup (meshplane store restore FILE) or move it away to start empty"


def check_file(path: Path) -> None:
    """Refuse an existing ``path`` that cannot be a SQLite database (empty, no header)."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return  # a missing store is created
    except IsADirectoryError:
        raise StoreDamaged(f"{path} is a directory, not a meshplane store; move it away") from None
    if not header:
        raise StoreDamaged(f"{path} is empty (0 bytes), not a meshplane store; {WAY_OUT}")
    if header != SQLITE_MAGIC:
        raise StoreDamaged(f"{path} is not a SQLite database (truncated or foreign); {WAY_OUT}")


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that fails SQLite's quick check (damaged pages, truncation)."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as error:
        raise damaged(path, error) from error
    if problems != ["ok"]:
        # SQLite prefixes the first problem with "*** in database main ***" on its own line.
        lines = [line for p in problems for line in p.splitlines() if not line.startswith("***")]
        first = lines[0] if lines else "no details"
        raise StoreDamaged(f"{path} fails SQLite's quick check ({first}); {WAY_OUT}")


def damaged(path: Path, error: sqlite3.DatabaseError) -> StoreDamaged:
    """The refusal for a SQLite error met while opening ``path``."""
    return StoreDamaged(f"{path} is damaged ({error}); {WAY_OUT}")
