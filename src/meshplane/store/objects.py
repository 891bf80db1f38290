"""Rows of v1beta2 manifest objects and their events, next to the App Mesh resources.

The store keeps each object as one JSON document (metadata, spec, status) keyed
by (kind, namespace, name); it does not interpret it — the controller's rules
are :mod:`meshplane.manifests`'. A transaction of either store
(:class:`~meshplane.store.sqlbase.SqlTransaction`) runs these functions on its
own connection (:class:`Runner`), so manifest rows commit or roll back with the
App Mesh rows of the same transaction (an apply that fails leaves neither
behind), and they survive restarts like everything else.
Events follow Kubernetes: a repeat of the newest event of an object bumps its
count and time instead of adding a row, and only the newest ones are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from meshplane.store.records import Event

EVENTS_KEPT = 30
"""Events kept per object; older ones are dropped, as Kubernetes expires them."""


class Runner(Protocol):
    """Runs a statement written with ``?`` placeholders inside an open transaction."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute ``sql``; returns the driver's cursor (``fetchone``, iteration)."""
        ...


def put(conn: Runner, kind: str, namespace: str, name: str, document: dict[str, Any]) -> None:
    """Insert or replace one object."""
    conn.run(
        "INSERT INTO manifest_objects VALUES (?,?,?,?) "
        "ON CONFLICT (kind, namespace, name) DO UPDATE SET document=excluded.document",
        (kind, namespace, name, json.dumps(document, sort_keys=True)),
    )


def get(conn: Runner, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object's document, or ``None``."""
    row = conn.run(
        "SELECT document FROM manifest_objects WHERE kind=? AND namespace=? AND name=?",
        (kind, namespace, name),
    ).fetchone()
    return dict(json.loads(row[0])) if row else None


def all_documents(conn: Runner) -> list[dict[str, Any]]:
    """Every stored object, ordered by kind, namespace and name."""
    rows = conn.run("SELECT document FROM manifest_objects ORDER BY kind, namespace, name")
    return [dict(json.loads(row[0])) for row in rows]


def remove(conn: Runner, kind: str, namespace: str, name: str) -> None:
    """Forget an object and its events."""
    for table in ("manifest_objects", "manifest_events"):
        conn.run(
            f"DELETE FROM {table} WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace, name),
        )


def record_event(
    conn: Runner,
    identity: tuple[str, str, str, str],
    event_type: str,
    reason: str,
    message: str,
    at: float,
) -> None:
    """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
    kind, namespace, name, uid = identity
    newest = conn.run(
        "SELECT id, uid, type, reason, message FROM manifest_events "
        "WHERE kind=? AND namespace=? AND name=? ORDER BY id DESC LIMIT 1",
        (kind, namespace, name),
    ).fetchone()
    if newest is not None and tuple(newest[1:]) == (uid, event_type, reason, message):
        conn.run("UPDATE manifest_events SET count=count+1, last_at=? WHERE id=?", (at, newest[0]))
        return
    conn.run(
        "INSERT INTO manifest_events (kind, namespace, name, uid, type, reason, message, count, "
        "first_at, last_at) VALUES (?,?,?,?,?,?,?,1,?,?)",
        (kind, namespace, name, uid, event_type, reason, message, at, at),
    )
    conn.run(
        "DELETE FROM manifest_events WHERE kind=? AND namespace=? AND name=? AND id NOT IN "
        "(SELECT id FROM manifest_events WHERE kind=? AND namespace=? AND name=? "
        "ORDER BY id DESC LIMIT ?)",
        (kind, namespace, name, kind, namespace, name, EVENTS_KEPT),
    )


def events(conn: Runner, kind: str, namespace: str, name: str) -> list[Event]:
    """An object's events, oldest first."""
    rows = conn.run(
        "SELECT type, reason, message, count, first_at, last_at FROM manifest_events "
        "WHERE kind=? AND namespace=? AND name=? ORDER BY id",
        (kind, namespace, name),
    )
    return [Event(*row) for row in rows]
