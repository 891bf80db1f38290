"""The PostgreSQL store's schema: the SQLite store's logical tables, migrated at connect.

The same tables as :mod:`meshplane.store.schema` (resources, refs, changes,
client_tokens, endpoints, manifest objects and events) plus ``feed_revision``, a
one-row counter: each write transaction bumps it under the store's write lock,
so revisions are gap-free and in commit order across every replica. The number of
migrations applied lives in ``meshplane_schema``; replicas starting together
migrate one at a time under an advisory lock. Append, never edit, a migration.
"""

from __future__ import annotations

import psycopg

from meshplane.store.refusals import StoreTooNew

MIGRATE_LOCK = 0x6D657368_0001
"""Advisory lock key held while one replica migrates the schema."""

MIGRATIONS: list[str] = [
    # 1: everything the SQLite store has after its migration 4, in one step.
    """
    CREATE TABLE resources (
        seq         BIGSERIAL PRIMARY KEY,  -- creation order, for listing
        kind        TEXT NOT NULL,
        mesh        TEXT NOT NULL,
        parent      TEXT NOT NULL,
        name        TEXT NOT NULL,
        uid         TEXT NOT NULL,
        arn         TEXT NOT NULL,
        owner       TEXT NOT NULL,
        version     BIGINT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL,
        updated_at  DOUBLE PRECISION NOT NULL,
        spec        TEXT NOT NULL,
        tags        TEXT NOT NULL,
        UNIQUE (kind, mesh, parent, name)
    );
    CREATE INDEX resources_by_scope ON resources (mesh, kind, parent, seq);
    CREATE INDEX resources_by_arn ON resources (arn);
    CREATE TABLE refs (
        src_kind TEXT NOT NULL, src_mesh TEXT NOT NULL, src_parent TEXT NOT NULL,
        src_name TEXT NOT NULL,
        dst_kind TEXT NOT NULL, dst_mesh TEXT NOT NULL, dst_parent TEXT NOT NULL,
        dst_name TEXT NOT NULL
    );
    CREATE INDEX refs_by_src ON refs (src_kind, src_mesh, src_parent, src_name);
    CREATE INDEX refs_by_dst ON refs (dst_kind, dst_mesh, dst_parent, dst_name);
    CREATE TABLE feed_revision (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        value    BIGINT NOT NULL
    );
    INSERT INTO feed_revision VALUES (TRUE, 0);
    CREATE TABLE changes (
        revision BIGINT PRIMARY KEY,
        kind TEXT NOT NULL, mesh TEXT NOT NULL, parent TEXT NOT NULL, name TEXT NOT NULL,
        op TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE client_tokens (
        operation TEXT NOT NULL,
        token     TEXT NOT NULL,
        digest    TEXT NOT NULL,
        response  TEXT NOT NULL,
        at        DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (operation, token)
    );
    CREATE INDEX client_tokens_by_age ON client_tokens (at);
    CREATE TABLE endpoints (
        mesh          TEXT NOT NULL,
        virtual_node  TEXT NOT NULL,
        source        TEXT NOT NULL,
        listener_port INTEGER NOT NULL,
        address       TEXT NOT NULL,
        port          INTEGER NOT NULL
    );
    CREATE INDEX endpoints_by_node ON endpoints (mesh, virtual_node);
    CREATE TABLE manifest_objects (
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        document   TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name)
    );
    CREATE TABLE manifest_events (
        id         BIGSERIAL PRIMARY KEY,
        kind       TEXT NOT NULL,
        namespace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        uid        TEXT NOT NULL,
        type       TEXT NOT NULL,
        reason     TEXT NOT NULL,
        message    TEXT NOT NULL,
        count      INTEGER NOT NULL,
        first_at   DOUBLE PRECISION NOT NULL,
        last_at    DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX manifest_events_by_object ON manifest_events (kind, namespace, name, id)
    """,
    # 2: clientTokens belong to the principal that sent them (SQLite's migration 5).
    """
    ALTER TABLE client_tokens ADD COLUMN principal TEXT NOT NULL DEFAULT '';
    ALTER TABLE client_tokens DROP CONSTRAINT client_tokens_pkey;
    ALTER TABLE client_tokens ADD PRIMARY KEY (principal, operation, token);
    CREATE INDEX client_tokens_by_principal ON client_tokens (principal, at)
    """,
    # 3: endpoints carry their instance attributes (Cloud Map's), a JSON object.
    """
    ALTER TABLE endpoints ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}'
    """,
]


def migrate(conn: psycopg.Connection[tuple[object, ...]], where: str) -> int:
    """Apply every migration the database has not seen; return the schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS meshplane_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM meshplane_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO meshplane_schema VALUES (0)")
            current = 0
        else:
            current = int(str(row[0]))
        if current > len(MIGRATIONS):
            raise StoreTooNew(
                f"database {where} has schema version {current}, newer than this meshplane "
                f"({len(MIGRATIONS)}); upgrade meshplane or use another --store"
            )
        for number in range(current, len(MIGRATIONS)):
            for statement in MIGRATIONS[number].split(";"):
                lines = [line.split("--", 1)[0] for line in statement.splitlines()]
                if sql := "\n".join(lines).strip():
                    conn.execute(sql.encode())
            conn.execute("UPDATE meshplane_schema SET version=%s", (number + 1,))
    return len(MIGRATIONS)
