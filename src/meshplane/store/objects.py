"""Stored v1beta2 manifest objects and their events, next to the App Mesh resources they twin.

The store keeps each object as one JSON document (metadata, spec, status) keyed
by (kind, namespace, name); it does not interpret it — the controller's rules
are :mod:`meshplane.manifests`'. Rows are written inside the same
:class:`~meshplane.store.sqlite.Transaction` as App Mesh resources, so an apply
that fails leaves neither behind, and they survive restarts like everything else.
Events follow Kubernetes: a repeat of the newest event of an object bumps its
count and time instead of adding a row, and only the newest ones are kept.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from meshplane.store.sqlite import Transaction

EVENTS_KEPT = 30
"""Events kept per object; older ones are dropped, as Kubernetes expires them."""


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened to an object, as ``describe`` lists it."""

    type: str
    """``Normal`` or ``Warning``."""
    reason: str
    message: str
    count: int
    first_at: float
    last_at: float


def _sql(tx: Transaction) -> sqlite3.Connection:
    # Manifest rows must commit or roll back with the App Mesh rows of the same
    # transaction, so they use its connection rather than one of their own.
    return tx.connection


def put(tx: Transaction, kind: str, namespace: str, name: str, document: dict[str, Any]) -> None:
    """Insert or replace one object."""
    _sql(tx).execute(
        "INSERT INTO manifest_objects VALUES (?,?,?,?) "
        "ON CONFLICT (kind, namespace, name) DO UPDATE SET document=excluded.document",
        (kind, namespace, name, json.dumps(document, sort_keys=True)),
    )


def get(tx: Transaction, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object's document, or ``None``."""
    row = (
        _sql(tx)
        .execute(
            "SELECT document FROM manifest_objects WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace, name),
        )
        .fetchone()
    )
    return dict(json.loads(row[0])) if row else None


def all_documents(tx: Transaction) -> list[dict[str, Any]]:
    """Every stored object, ordered by kind, namespace and name."""
    rows = _sql(tx).execute("SELECT document FROM manifest_objects ORDER BY kind, namespace, name")
    return [dict(json.loads(row[0])) for row in rows]


def remove(tx: Transaction, kind: str, namespace: str, name: str) -> None:
    """Forget an object and its events."""
    for table in ("manifest_objects", "manifest_events"):
        _sql(tx).execute(
            f"DELETE FROM {table} WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace, name),
        )


def record_event(
    tx: Transaction,
    identity: tuple[str, str, str, str],
    event_type: str,
    reason: str,
    message: str,
    at: float,
) -> None:
    """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
    conn = _sql(tx)
    kind, namespace, name, uid = identity
    newest = conn.execute(
        "SELECT id, uid, type, reason, message FROM manifest_events "
        "WHERE kind=? AND namespace=? AND name=? ORDER BY id DESC LIMIT 1",
        (kind, namespace, name),
    ).fetchone()
    if newest is not None and tuple(newest[1:]) == (uid, event_type, reason, message):
        conn.execute(
            "UPDATE manifest_events SET count=count+1, last_at=? WHERE id=?", (at, newest[0])
        )
        return
    conn.execute(
        "INSERT INTO manifest_events (kind, namespace, name, uid, type, reason, message, count, "
        "first_at, last_at) VALUES (?,?,?,?,?,?,?,1,?,?)",
        (kind, namespace, name, uid, event_type, reason, message, at, at),
    )
    conn.execute(
        "DELETE FROM manifest_events WHERE kind=? AND namespace=? AND name=? AND id NOT IN "
        "(SELECT id FROM manifest_events WHERE kind=? AND namespace=? AND name=? "
        "ORDER BY id DESC LIMIT ?)",
        (kind, namespace, name, kind, namespace, name, EVENTS_KEPT),
    )


def events(tx: Transaction, kind: str, namespace: str, name: str) -> list[Event]:
    """An object's events, oldest first."""
    rows = _sql(tx).execute(
        "SELECT type, reason, message, count, first_at, last_at FROM manifest_events "
        "WHERE kind=? AND namespace=? AND name=? ORDER BY id",
        (kind, namespace, name),
    )
    return [Event(*row) for row in rows]
