"""The store's schema as an ordered list of migrations.

A data dir records the number of migrations applied in SQLite's ``user_version``;
opening it with a newer meshplane applies the missing ones in one transaction, so a
later release can migrate an existing data dir. Append, never edit, a migration.
"""

from __future__ import annotations

import sqlite3

from meshplane.store.refusals import StoreTooNew

MIGRATIONS: list[str] = [
    # 1: App Mesh resources, their references, the change feed, idempotency tokens.
    """
    CREATE TABLE resources (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for listing
        kind        TEXT NOT NULL,
        mesh        TEXT NOT NULL,
        parent      TEXT NOT NULL,
        name        TEXT NOT NULL,
        uid         TEXT NOT NULL,
        arn         TEXT NOT NULL,
        owner       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        spec        TEXT NOT NULL,
        tags        TEXT NOT NULL,
        UNIQUE (kind, mesh, parent, name)
    );
    CREATE INDEX resources_by_scope ON resources (mesh, kind, parent, seq);
    CREATE INDEX resources_by_arn ON resources (arn);
    -- Edges that must keep their target alive (route -> node, service -> provider, ...).
    CREATE TABLE refs (
        src_kind TEXT NOT NULL, src_mesh TEXT NOT NULL, src_parent TEXT NOT NULL,
        src_name TEXT NOT NULL,
        dst_kind TEXT NOT NULL, dst_mesh TEXT NOT NULL, dst_parent TEXT NOT NULL,
        dst_name TEXT NOT NULL
    );
    CREATE INDEX refs_by_src ON refs (src_kind, src_mesh, src_parent, src_name);
    CREATE INDEX refs_by_dst ON refs (dst_kind, dst_mesh, dst_parent, dst_name);
    -- One row per committed write: the revision counter and the sync stage's feed.
    CREATE TABLE changes (
        revision INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL, mesh TEXT NOT NULL, parent TEXT NOT NULL, name TEXT NOT NULL,
        op TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE client_tokens (
        operation TEXT NOT NULL,
        token     TEXT NOT NULL,
        digest    TEXT NOT NULL,
        response  TEXT NOT NULL,
        at        REAL NOT NULL,
        PRIMARY KEY (operation, token)
    );
    """,
    # 2: endpoints that runtimes register for virtual nodes (service discovery).
    """
    CREATE TABLE endpoints (
        mesh          TEXT NOT NULL,
        virtual_node  TEXT NOT NULL,
        source        TEXT NOT NULL,  -- who registered it (a runtime replica), replaced as a set
        listener_port INTEGER NOT NULL,
        address       TEXT NOT NULL,
        port          INTEGER NOT NULL
    );
    CREATE INDEX endpoints_by_node ON endpoints (mesh, virtual_node);
    """,
    # 3: v1beta2 manifest objects (meshplane apply) and the events that explain their state.
    """
    CREATE TABLE manifest_objects (
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,  -- '' for cluster-scoped kinds
        name       TEXT NOT NULL,
        document   TEXT NOT NULL,  -- the object as JSON (metadata, spec, status)
        PRIMARY KEY (kind, namespace, name)
    );
    CREATE TABLE manifest_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        uid        TEXT NOT NULL,
        type       TEXT NOT NULL,  -- Normal | Warning
        reason     TEXT NOT NULL,
        message    TEXT NOT NULL,
        count      INTEGER NOT NULL,
        first_at   REAL NOT NULL,
        last_at    REAL NOT NULL
    );
    CREATE INDEX manifest_events_by_object ON manifest_events (kind, namespace, name, id);
    """,
    # 4: clientToken records expire; pruning them by age must not scan the table.
    """
    CREATE INDEX client_tokens_by_age ON client_tokens (at);
    """,
    # 5: clientTokens belong to the principal that sent them (as in App Mesh) and each
    # principal's are capped; records made before carry the empty principal.
    """
    CREATE TABLE client_tokens_v5 (
        principal TEXT NOT NULL,
        operation TEXT NOT NULL,
        token     TEXT NOT NULL,
        digest    TEXT NOT NULL,
        response  TEXT NOT NULL,
        at        REAL NOT NULL,
        PRIMARY KEY (principal, operation, token)
    );
    INSERT INTO client_tokens_v5 SELECT '', operation, token, digest, response, at
        FROM client_tokens;
    DROP TABLE client_tokens;
    ALTER TABLE client_tokens_v5 RENAME TO client_tokens;
    CREATE INDEX client_tokens_by_age ON client_tokens (at);
    CREATE INDEX client_tokens_by_principal ON client_tokens (principal, at);
    """,
    # 6: endpoints carry their instance attributes (Cloud Map's), a JSON object.
    """
    ALTER TABLE endpoints ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    """,
    # 7: a whole-mesh read's identity columns (sqlbase.IDENTITY_COLUMNS) in seq order,
    # read from the index alone: no lookup into the table per row, no sort.
    """
    CREATE INDEX resources_identity ON resources (mesh, seq, uid, version, updated_at, tags);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration this data dir has not seen; return the schema version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > len(MIGRATIONS):
        raise StoreTooNew(
            f"data dir has schema version {current}, newer than this meshplane "
            f"({len(MIGRATIONS)}); upgrade meshplane or use another --data-dir"
        )
    for number in range(current, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[number]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit implicitly)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
