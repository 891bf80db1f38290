"""``meshplane store backup`` / ``restore`` for a PostgreSQL store: an SQL-level export.

Why not ``pg_dump``: it refuses a server newer than itself, so the host running
meshplane would need client binaries matching whatever PostgreSQL operators run,
and its output cannot be checked before a restore has started replacing tables.
The export instead reads every meshplane table in *one* ``REPEATABLE READ READ ONLY``
transaction — one snapshot, so the copy is one revision even while replicas keep
writing — through the driver meshplane already uses, and writes one JSON document
(the schema version, the revision, each table's columns and rows) beside its
destination, renamed into place when complete, mode 0600.

A restore reads and checks the whole file first (a meshplane backup, the schema
this meshplane runs), refuses while any replica is connected to the database
(their connections are named ``meshplane serve``), keeps what it replaces as a
backup beside the file (``FILE.replaced``) and then replaces every table in one
transaction under the replicas' write and migration locks: it is all or nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import psycopg

from meshplane.store import pgschema, refusals
from meshplane.store.backups import REPLACED_SUFFIX, Copied
from meshplane.store.pglisten import APPLICATION_NAME
from meshplane.store.postgres import WRITE_LOCK, redacted

FORMAT = "meshplane-postgresql-backup"
TABLES: dict[str, str] = {
    "resources": "seq",
    "refs": "src_kind, src_mesh, src_parent, src_name, dst_kind, dst_mesh, dst_parent, dst_name",
    "feed_revision": "only_row",
    "changes": "revision",
    "client_tokens": "at, principal, operation, token",
    "endpoints": "mesh, virtual_node, source, listener_port, address, port",
    "manifest_objects": "kind, namespace, name",
    "manifest_events": "id",
}
"""Every meshplane table and the order its rows are written in (the export is stable)."""
SEQUENCES = {"resources": "seq", "manifest_events": "id"}
"""Serial columns whose sequence a restore moves past the restored rows."""

Conn = psycopg.Connection[tuple[Any, ...]]


def backup(url: str, destination: Path) -> Copied:
    """Export the database at ``url`` to ``destination``, consistently, while it is served."""
    where = redacted(url)
    with _connect(url, where) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        version = _schema_version(conn, where)
        tables: dict[str, dict[str, list[Any]]] = {}
        for table, order in TABLES.items():
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY {order}".encode())
            columns = [column.name for column in cursor.description or ()]
            tables[table] = {"columns": columns, "rows": [list(row) for row in cursor]}
        revision = _revision(conn)
        conn.execute("COMMIT")
    document = {"format": FORMAT, "schema": version, "revision": revision, "tables": tables}
    size = _write(destination, json.dumps(document, separators=(",", ":")).encode())
    return Copied(where, destination, revision, size)


def restore(source: Path, url: str) -> Copied:
    """Replace the database at ``url`` with the backup ``source`` (no replica may run)."""
    where = redacted(url)
    document = _read(source)
    with _connect(url, where) as conn:
        current = pgschema.migrate(conn, where)
        if document["schema"] != current:
            raise refusals.StoreTooNew(
                f"{source} has schema version {document['schema']}, this meshplane "
                f"{current}: restore it with the meshplane that made it, then upgrade"
            )
        _refuse_replicas(conn, where)
        replaced = None
        if _revision(conn) > 0:
            replaced = source.with_name(source.name + REPLACED_SUFFIX)
            backup(url, replaced)
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.MIGRATE_LOCK,))
            _refuse_replicas(conn, where)  # one that connected since the first look
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY".encode())
            for table, content in document["tables"].items():
                columns = ", ".join(content["columns"])
                with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN".encode()) as copy:
                    for row in content["rows"]:
                        copy.write_row(row)
            for table, column in SEQUENCES.items():
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"coalesce(max({column}), 0) + 1, false) FROM {table}".encode()
                )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            raise
    return Copied(source, where, int(document["revision"]), source.stat().st_size, replaced)


def _connect(url: str, where: str) -> Conn:
    try:
        return psycopg.connect(url, autocommit=True, application_name="meshplane store")
    except psycopg.Error as error:
        raise refusals.StoreUnwritable(
            f"cannot connect to the PostgreSQL store {where}: {error}"
        ) from error


def _schema_version(conn: Conn, where: str) -> int:
    try:
        row = conn.execute("SELECT version FROM meshplane_schema").fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    if row is None:
        raise refusals.StoreDamaged(
            f"database {where} is not a meshplane store: nothing to back up"
        )
    version = int(row[0])
    if version > len(pgschema.MIGRATIONS):
        raise refusals.StoreTooNew(
            f"database {where} has schema version {version}, newer than this meshplane "
            f"({len(pgschema.MIGRATIONS)}); back it up with a newer meshplane"
        )
    return version


def _revision(conn: Conn) -> int:
    row = conn.execute("SELECT value FROM feed_revision").fetchone()
    return int(row[0]) if row else 0


def _refuse_replicas(conn: Conn, where: str) -> None:
    """Refuse while a replica is connected: it would serve a store changing under it."""
    row = conn.execute(
        "SELECT count(*), string_agg(DISTINCT coalesce(host(client_addr), 'local'), ', ') "
        "FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
        "AND pid <> pg_backend_pid()",
        (APPLICATION_NAME,),
    ).fetchone()
    if row is not None and int(row[0]) > 0:
        raise refusals.StoreInUse(
            f"database {where} is in use by {row[0]} connection(s) of {APPLICATION_NAME} "
            f"(from {row[1]}); stop every replica before restoring"
        )


def _read(source: Path) -> dict[str, Any]:
    """The backup in ``source``, checked whole before anything is replaced."""
    try:
        document = json.loads(source.read_bytes())
    except FileNotFoundError:
        raise refusals.StoreDamaged(f"{source} does not exist: nothing to restore") from None
    except (ValueError, UnicodeDecodeError):
        document = None
    shaped = (
        isinstance(document, dict)
        and document.get("format") == FORMAT
        and isinstance(document.get("schema"), int)
        and isinstance(document.get("revision"), int)
        and isinstance(document.get("tables"), dict)
        and set(document["tables"]) == set(TABLES)
        and all(
            isinstance(table, dict)
            and isinstance(table.get("columns"), list)
            and isinstance(table.get("rows"), list)
            for table in document["tables"].values()
        )
    )
    if not shaped:
        raise refusals.StoreDamaged(
            f"{source} is not a meshplane PostgreSQL backup (made by `meshplane store backup "
            "--store postgresql://...`); a SQLite backup restores into a data dir"
        )
    result: dict[str, Any] = document
    return result


def _write(destination: Path, data: bytes) -> int:
    """Write ``data`` beside ``destination`` (0600), sync it, and rename it into place."""
    partial = destination.with_name(destination.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    os.replace(partial, destination)
    return len(data)
