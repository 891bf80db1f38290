"""When the disk under the store fails a write: App Mesh errors that name the cause.

SQLite reports a full disk, a read-only file or an I/O failure as result codes.
Those are the operator's problem, not a bug: the API answers
``ServiceUnavailableException`` (retry later) with a message that says what is
wrong and where, instead of an ``InternalServerErrorException`` pointing at the
server log. Nothing of the failed transaction is written; every acknowledged
write before it stands.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meshplane.model import errors

# SQLite's primary result codes (the low byte of an extended code).
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26

_CAUSES = {
    _FULL: "the store's disk is full",
    _READONLY: "the store is read-only",
    _IOERR: "the store's disk failed a read or write",
    _CANTOPEN: "the store's file cannot be opened",
    _CORRUPT: "the store is damaged",
    _NOTADB: "the store is damaged",
}
_REMEDIES = {
    _FULL: "free space on it; reads still work and nothing of this request was written",
    _READONLY: "make it writable; reads still work and nothing of this request was written",
}
_DEFAULT_REMEDY = "reads may still work; nothing of this request was written"


_DISK_FAULTS = frozenset({_READONLY, _IOERR, _FULL, _CANTOPEN})


def _primary(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_disk_fault(error: sqlite3.Error) -> bool:
    """Whether ``error`` is the file system's doing (full, read-only, I/O), not damage."""
    return _primary(error) in _DISK_FAULTS


def describe(error: sqlite3.Error, path: Path) -> str:
    """One line for an operator: the cause, the file, SQLite's words."""
    primary = _primary(error)
    cause = _CAUSES.get(primary, "the store failed") if primary is not None else "the store failed"
    return f"{cause}: {path} ({error})"


def unavailable(error: sqlite3.Error, path: Path) -> errors.ServiceUnavailableException | None:
    """The App Mesh error for a storage failure, or ``None`` for any other SQLite error."""
    primary = _primary(error)
    if primary is None or primary not in _CAUSES:
        return None
    remedy = _REMEDIES.get(primary, _DEFAULT_REMEDY)
    return errors.ServiceUnavailableException(f"{describe(error, path)}; {remedy}")
