"""PostgreSQL rows of v1beta2 manifest objects and their events (as :mod:`.objects` for SQLite).

Same rules: one JSON document per (kind, namespace, name); a repeat of an
object's newest event bumps its count; only the newest :data:`EVENTS_KEPT` stay.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from meshplane.store.objects import EVENTS_KEPT
from meshplane.store.records import Event

Conn = psycopg.Connection[tuple[Any, ...]]


def put(conn: Conn, kind: str, namespace: str, name: str, document: dict[str, Any]) -> None:
    """Insert or replace one object."""
    conn.execute(
        "INSERT INTO manifest_objects VALUES (%s,%s,%s,%s) "
        "ON CONFLICT (kind, namespace, name) DO UPDATE SET document=excluded.document",
        (kind, namespace, name, json.dumps(document, sort_keys=True)),
    )


def get(conn: Conn, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object's document, or ``None``."""
    row = conn.execute(
        "SELECT document FROM manifest_objects WHERE kind=%s AND namespace=%s AND name=%s",
        (kind, namespace, name),
    ).fetchone()
    return dict(json.loads(row[0])) if row else None


def all_documents(conn: Conn) -> list[dict[str, Any]]:
    """Every stored object, ordered by kind, namespace and name."""
    rows = conn.execute(
        "SELECT document FROM manifest_objects ORDER BY kind, namespace, name"
    ).fetchall()
    return [dict(json.loads(row[0])) for row in rows]


def remove(conn: Conn, kind: str, namespace: str, name: str) -> None:
    """Forget an object and its events."""
    params = (kind, namespace, name)
    conn.execute("DELETE FROM manifest_objects WHERE kind=%s AND namespace=%s AND name=%s", params)
    conn.execute("DELETE FROM manifest_events WHERE kind=%s AND namespace=%s AND name=%s", params)


def record_event(
    conn: Conn,
    identity: tuple[str, str, str, str],
    event_type: str,
    reason: str,
    message: str,
    at: float,
) -> None:
    """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
    kind, namespace, name, uid = identity
    newest = conn.execute(
        "SELECT id, uid, type, reason, message FROM manifest_events "
        "WHERE kind=%s AND namespace=%s AND name=%s ORDER BY id DESC LIMIT 1",
        (kind, namespace, name),
    ).fetchone()
    if newest is not None and tuple(newest[1:]) == (uid, event_type, reason, message):
        conn.execute(
            "UPDATE manifest_events SET count=count+1, last_at=%s WHERE id=%s", (at, newest[0])
        )
        return
    conn.execute(
        "INSERT INTO manifest_events (kind, namespace, name, uid, type, reason, message, count, "
        "first_at, last_at) VALUES (%s,%s,%s,%s,%s,%s,%s,1,%s,%s)",
        (kind, namespace, name, uid, event_type, reason, message, at, at),
    )
    conn.execute(
        "DELETE FROM manifest_events WHERE kind=%s AND namespace=%s AND name=%s AND id NOT IN "
        "(SELECT id FROM manifest_events WHERE kind=%s AND namespace=%s AND name=%s "
        "ORDER BY id DESC LIMIT %s)",
        (kind, namespace, name, kind, namespace, name, EVENTS_KEPT),
    )


def events(conn: Conn, kind: str, namespace: str, name: str) -> list[Event]:
    """An object's events, oldest first."""
    rows = conn.execute(
        "SELECT type, reason, message, count, first_at, last_at FROM manifest_events "
        "WHERE kind=%s AND namespace=%s AND name=%s ORDER BY id",
        (kind, namespace, name),
    ).fetchall()
    return [Event(*row) for row in rows]
