"""What the SQLite and PostgreSQL transactions share: every query, written once.

Both stores keep the same logical tables, so a transaction's reads and writes are
the same SQL but for a small dialect, which a subclass of :class:`SqlTransaction`
supplies:

- :meth:`~SqlTransaction.run` / :meth:`~SqlTransaction.run_many` execute a statement
  written with ``?`` placeholders on the transaction's connection (PostgreSQL's
  turns them into ``%s``);
- :attr:`~SqlTransaction.UNLIMITED` is the ``LIMIT`` parameter meaning "no limit"
  (``-1`` for SQLite, ``NULL`` for PostgreSQL);
- :meth:`~SqlTransaction._inserted` says which ``seq`` an insert got, and
  :meth:`~SqlTransaction._change` / :meth:`~SqlTransaction.revision` number the
  change feed — where the two stores really differ (SQLite's rowid against a
  counter bumped under PostgreSQL's write lock).

:mod:`meshplane.store.objects` (manifest objects and events) runs through the same
:class:`Runner`, so manifest rows commit with the rest of their transaction.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol

from meshplane.kit.clock import Clock
from meshplane.model import extensions
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource
from meshplane.store import objects
from meshplane.store.records import Change, Event, Record, Tag, endpoint_of, endpoint_row

RESOURCE_COLUMNS = (
    "seq, kind, mesh, parent, name, uid, arn, owner, version, created_at, updated_at, spec, tags"
)
IDENTITY_COLUMNS = "seq, uid, version, updated_at, tags"
"""What tells a row's content apart: a spec write moves ``version`` and ``updated_at``,
a tag write changes ``tags``, a delete and re-create gets a new ``seq`` and ``uid``."""
FETCH_CHUNK = 500
"""Rows fetched by ``seq`` per query (well under either driver's parameter limit)."""


class Rows(Protocol):
    """What executing a statement gives back, on either driver."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, or ``None``."""
        ...

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """The remaining rows, one by one."""
        ...


def record(row: Sequence[Any]) -> Record:
    """A stored resource from a row of :data:`RESOURCE_COLUMNS`."""
    seq, kind, mesh, parent, name, uid, arn, owner, version, created, updated, spec, tags = row
    tag_list = json.loads(tags)
    resource = Resource(
        key=ResourceKey(kind, mesh, parent, name),
        arn=arn,
        uid=uid,
        version=version,
        created_at=created,
        updated_at=updated,
        spec=json.loads(spec),
        owner=owner,
        extensions=extensions.of((t["key"], t["value"]) for t in tag_list),
    )
    return Record(resource, tuple(Tag(t["key"], t["value"]) for t in tag_list), seq)


class MeshRows:
    """The records of each mesh's last whole read, kept by a store across transactions.

    A whole-mesh read (the sync stage's full rebuild, every proxy's first snapshot)
    at ten times App Mesh's quotas spent most of its time decoding 9,500 rows' JSON
    into records that had not changed since the previous read. With this memo the
    read asks for each row's identity columns (:data:`IDENTITY_COLUMNS`), keeps the
    record of every row whose identity is unchanged — the same object, so the
    snapshot built from it can keep its parsed spec too — and fetches only the
    others whole. Bounded: each mesh holds only its latest read's rows. Records
    are immutable, and readers never modify a record's spec.

    The rows are kept in read order (by ``seq``): when a read lines up with the last
    one (the same number of rows and the changed ones at their old places, as after
    updates), the rows are compared position by position in C and the record list is
    the previous one with the changed places replaced.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._meshes: dict[str, tuple[list[Any], list[Record]]] = {}

    def last(self, mesh: str) -> tuple[list[Any], list[Record]]:
        """``mesh``'s last whole read: its identity rows and their records, in read order."""
        return self._meshes.get(mesh, ([], []))

    def remember(self, mesh: str, identities: list[Any], records: list[Record]) -> None:
        """Keep one whole read of ``mesh`` (the previous one is dropped)."""
        if records:
            self._meshes[mesh] = (identities, records)
        else:
            self._meshes.pop(mesh, None)


def key_params(key: ResourceKey) -> tuple[str, str, str, str]:
    """A resource key as the four column values that identify it."""
    return (key.kind, key.mesh, key.parent, key.name)


def tags_json(tags: Sequence[Tag]) -> str:
    """Tags as the JSON text stored in ``resources.tags``."""
    return json.dumps([{"key": t.key, "value": t.value} for t in tags])


def _like_escaped(text: str) -> str:
    """``text`` as a literal inside a ``LIKE … ESCAPE '!'`` pattern."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


class SqlTransaction:
    """Reads and writes inside one transaction of either store (the shared part).

    Implements :class:`~meshplane.store.protocols.WriteTransaction` together with a
    subclass's dialect; obtained from a store only.
    """

    UNLIMITED: ClassVar[int | None] = -1
    """The ``LIMIT`` parameter that means "no limit"."""
    INSERT_SUFFIX: ClassVar[str] = ""
    """Appended to the resource ``INSERT`` (PostgreSQL: ``RETURNING seq``)."""
    BYTE_ORDER: ClassVar[str] = ""
    """The collation that orders text as Python does (SQLite's default already does)."""

    def __init__(self, conn: Any, clock: Clock, rows: MeshRows | None = None) -> None:
        """Bind to an open transaction on ``conn``; ``rows``: the store's whole-read memo."""
        self._conn = conn
        self._clock = clock
        self._rows = rows
        self.changes: list[Change] = []
        self.objects_written = False
        """Whether a manifest object was stored or removed (the store counts such commits)."""

    # -- the dialect ---------------------------------------------------------------------

    def run(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Execute one statement written with ``?`` placeholders."""
        raise NotImplementedError

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per row of parameters."""
        raise NotImplementedError

    def _inserted(self, cursor: Rows) -> int:
        """The ``seq`` the resource ``INSERT`` that gave ``cursor`` assigned."""
        raise NotImplementedError

    def _change(self, key: ResourceKey, op: str) -> None:
        """Record a change row with the next revision (and append it to :attr:`changes`)."""
        raise NotImplementedError

    def revision(self) -> int:
        """The newest revision visible to this transaction."""
        raise NotImplementedError

    # -- resources -----------------------------------------------------------------------

    def get(self, key: ResourceKey) -> Record | None:
        """The stored resource at ``key``, or ``None``."""
        row = self.run(
            f"SELECT {RESOURCE_COLUMNS} FROM resources "
            "WHERE kind=? AND mesh=? AND parent=? AND name=?",
            key_params(key),
        ).fetchone()
        return record(row) if row else None

    def get_by_arn(self, arn: str) -> Record | None:
        """The stored resource with this ARN, or ``None``."""
        row = self.run(f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE arn=?", (arn,)).fetchone()
        return record(row) if row else None

    def list_records(
        self, kind: str, mesh: str | None, parent: str = "", after: int = 0, limit: int = -1
    ) -> list[Record]:
        """Resources of one kind in one scope (``mesh=None`` for meshes), by creation order."""
        bound = self.UNLIMITED if limit < 0 else limit
        if mesh is None:
            rows = self.run(
                f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE kind=? AND seq>? "
                "ORDER BY seq LIMIT ?",
                (kind, after, bound),
            )
        else:
            rows = self.run(
                f"SELECT {RESOURCE_COLUMNS} FROM resources "
                "WHERE mesh=? AND kind=? AND parent=? AND seq>? ORDER BY seq LIMIT ?",
                (mesh, kind, parent, after, bound),
            )
        return [record(row) for row in rows]

    def list_mesh(self, mesh: str) -> list[Record]:
        """Every resource of one mesh (the mesh itself included), by creation order.

        With the store's :class:`MeshRows`, an unchanged row gives the very record the
        previous whole read of the mesh gave, and only changed rows are fetched whole.
        """
        memo = self._rows
        if memo is None:
            rows = self.run(
                f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE mesh=? ORDER BY seq", (mesh,)
            )
            return [record(row) for row in rows]
        old_identities, old_records = memo.last(mesh)
        identities = self.run(
            f"SELECT {IDENTITY_COLUMNS} FROM resources WHERE mesh=? ORDER BY seq", (mesh,)
        ).fetchall()
        records = self._lined_up(identities, old_identities, old_records)
        if records is None:
            # Rows came or went: match them by ``seq``.
            known = {
                row[0]: (row, found) for row, found in zip(old_identities, old_records, strict=True)
            }
            kept: dict[int, Record] = {}
            missing: list[int] = []
            for row in identities:
                before = known.get(row[0])
                if before is not None and before[0] == row:
                    kept[row[0]] = before[1]
                else:
                    missing.append(row[0])
            kept.update(self._records_by_seq(missing))
            identities = [row for row in identities if row[0] in kept]
            records = [kept[row[0]] for row in identities]
        memo.remember(mesh, identities, records)
        return records.copy()  # the memo's own list stays as it was read

    def _lined_up(
        self, identities: list[Any], old_identities: list[Any], old_records: list[Record]
    ) -> list[Record] | None:
        """The records of ``identities`` when they line up with the last read's, else ``None``.

        Lined up: as many rows, and every row that differs from the one at its place
        has that row's ``seq`` (an update, not an insertion or a removal). Compared in
        C; only the differing rows are fetched.
        """
        if len(identities) != len(old_identities) or not old_records:
            return None
        changed = list(
            itertools.compress(range(len(identities)), map(operator.ne, identities, old_identities))
        )
        if any(identities[at][0] != old_identities[at][0] for at in changed):
            return None
        fetched = self._records_by_seq([identities[at][0] for at in changed])
        if len(fetched) != len(changed):
            return None
        records = old_records.copy()
        for at in changed:
            records[at] = fetched[identities[at][0]]
        return records

    def _records_by_seq(self, seqs: list[int]) -> dict[int, Record]:
        """The records of the rows ``seqs`` name (fetched whole, a chunk per query)."""
        fetched: dict[int, Record] = {}
        for start in range(0, len(seqs), FETCH_CHUNK):
            chunk = seqs[start : start + FETCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.run(
                f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE seq IN ({marks})", chunk
            ):
                found = record(row)
                fetched[found.seq] = found
        return fetched

    def count(self, kind: str, mesh: str | None, parent: str = "") -> int:
        """How many resources of one kind live in one scope."""
        if mesh is None:
            rows = self.run("SELECT count(*) FROM resources WHERE kind=?", (kind,))
        else:
            rows = self.run(
                "SELECT count(*) FROM resources WHERE mesh=? AND kind=? AND parent=?",
                (mesh, kind, parent),
            )
        return int(rows.fetchone()[0])

    def count_in_mesh(self, mesh: str, exclude_kind: str) -> int:
        """How many resources other than ``exclude_kind`` a mesh holds."""
        rows = self.run(
            "SELECT count(*) FROM resources WHERE mesh=? AND kind<>?", (mesh, exclude_kind)
        )
        return int(rows.fetchone()[0])

    def name_page(
        self, kind: str, mesh: str, contains: str = "", offset: int = 0, limit: int = -1
    ) -> tuple[int, int, list[tuple[str, str]]]:
        """How many of a kind a mesh holds, how many match ``contains``, and one page of them."""
        scope, params = "mesh=? AND kind=?", [mesh, kind]
        total = int(self.run(f"SELECT count(*) FROM resources WHERE {scope}", params).fetchone()[0])
        if contains:
            pattern = f"%{_like_escaped(contains.lower())}%"
            scope += " AND (lower(name) LIKE ? ESCAPE '!' OR lower(parent) LIKE ? ESCAPE '!')"
            params += [pattern, pattern]
            rows = self.run(f"SELECT count(*) FROM resources WHERE {scope}", params)
            matching = int(rows.fetchone()[0])
        else:
            matching = total
        order = f"parent{self.BYTE_ORDER}, name{self.BYTE_ORDER}"
        rows = self.run(
            f"SELECT parent, name FROM resources WHERE {scope} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, self.UNLIMITED if limit < 0 else limit, offset],
        )
        return total, matching, [(parent, name) for parent, name in rows]

    def mentioning(self, kind: str, mesh: str, value: str) -> list[Record]:
        """Resources of one kind in a mesh whose spec may hold the string ``value``."""
        # Specs are stored as json.dumps text, so a spec holding the string holds its JSON.
        pattern = f"%{_like_escaped(json.dumps(value))}%"
        rows = self.run(
            f"SELECT {RESOURCE_COLUMNS} FROM resources "
            "WHERE mesh=? AND kind=? AND spec LIKE ? ESCAPE '!' ORDER BY seq",
            (mesh, kind, pattern),
        )
        return [record(row) for row in rows]

    def insert(self, resource: Resource, tags: Sequence[Tag]) -> Record:
        """Store a new resource and record the change."""
        cursor = self.run(
            "INSERT INTO resources (kind, mesh, parent, name, uid, arn, owner, version, "
            "created_at, updated_at, spec, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            + self.INSERT_SUFFIX,
            (
                *key_params(resource.key),
                resource.uid,
                resource.arn,
                resource.owner,
                resource.version,
                resource.created_at,
                resource.updated_at,
                json.dumps(resource.spec, sort_keys=True),
                tags_json(tags),
            ),
        )
        seq = self._inserted(cursor)
        self._change(resource.key, "create")
        return Record(resource, tuple(tags), seq)

    def replace(self, resource: Resource) -> None:
        """Overwrite a resource's spec and metadata (its tags and order are kept)."""
        self.run(
            "UPDATE resources SET version=?, updated_at=?, spec=? "
            "WHERE kind=? AND mesh=? AND parent=? AND name=?",
            (
                resource.version,
                resource.updated_at,
                json.dumps(resource.spec, sort_keys=True),
                *key_params(resource.key),
            ),
        )
        self._change(resource.key, "update")

    def set_tags(self, key: ResourceKey, tags: Sequence[Tag]) -> None:
        """Replace a resource's tags.

        Ordinary tags do not change the data plane, so they add no change row; a change
        to its ``meshplane.dev/`` extension tags does, so the sync stage rebuilds.
        """
        before = self.get(key)
        self.run(
            "UPDATE resources SET tags=? WHERE kind=? AND mesh=? AND parent=? AND name=?",
            (tags_json(tags), *key_params(key)),
        )
        after = extensions.of((t.key, t.value) for t in tags)
        if before is not None and dict(before.resource.extensions) != after:
            self._change(key, "update")

    def delete(self, key: ResourceKey) -> None:
        """Remove a resource, its outgoing references and (for nodes) its endpoints."""
        self.run(
            "DELETE FROM resources WHERE kind=? AND mesh=? AND parent=? AND name=?",
            key_params(key),
        )
        self.set_refs(key, [])
        if key.kind == "virtualNode":
            self.run("DELETE FROM endpoints WHERE mesh=? AND virtual_node=?", (key.mesh, key.name))
        self._change(key, "delete")

    # -- references ----------------------------------------------------------------------

    def set_refs(self, src: ResourceKey, targets: Sequence[ResourceKey]) -> None:
        """Replace the references ``src`` holds (the edges that keep targets alive)."""
        self.run(
            "DELETE FROM refs WHERE src_kind=? AND src_mesh=? AND src_parent=? AND src_name=?",
            key_params(src),
        )
        rows = [(*key_params(src), *key_params(dst)) for dst in sorted(set(targets))]
        if rows:
            self.run_many("INSERT INTO refs VALUES (?,?,?,?,?,?,?,?)", rows)

    def referrers(self, dst: ResourceKey) -> list[ResourceKey]:
        """Every resource that references ``dst``, sorted."""
        rows = self.run(
            "SELECT src_kind, src_mesh, src_parent, src_name FROM refs "
            "WHERE dst_kind=? AND dst_mesh=? AND dst_parent=? AND dst_name=? "
            "ORDER BY src_kind, src_parent, src_name",
            key_params(dst),
        )
        return [ResourceKey(*row) for row in rows]

    # -- idempotency ---------------------------------------------------------------------

    def token(
        self, principal: str, operation: str, token: str, newer_than: float
    ) -> tuple[str, Any] | None:
        """The (request digest, response) ``principal`` recorded for a clientToken.

        Only a record made after ``newer_than`` counts: an older one has expired and reads
        as absent even before it is pruned.
        """
        row = self.run(
            "SELECT digest, response FROM client_tokens "
            "WHERE principal=? AND operation=? AND token=? AND at>?",
            (principal, operation, token, newer_than),
        ).fetchone()
        return (str(row[0]), json.loads(row[1])) if row else None

    def remember_token(
        self, principal: str, operation: str, token: str, digest: str, response: Any, at: float
    ) -> None:
        """Record the outcome of a request carrying a clientToken (replacing an expired one)."""
        self.run(
            "INSERT INTO client_tokens (principal, operation, token, digest, response, at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (principal, operation, token) "
            "DO UPDATE SET digest=excluded.digest, response=excluded.response, at=excluded.at",
            (principal, operation, token, digest, json.dumps(response, sort_keys=True), at),
        )

    def trim_tokens(self, principal: str, keep: int) -> int:
        """Forget all but ``principal``'s newest ``keep`` clientToken records; returns how many."""
        return self.run(
            "DELETE FROM client_tokens WHERE (principal, operation, token) IN (SELECT principal, "
            "operation, token FROM client_tokens WHERE principal=? "
            "ORDER BY at DESC, operation DESC, token DESC LIMIT ? OFFSET ?)",
            (principal, self.UNLIMITED, max(0, keep)),
        ).rowcount

    def forget_tokens(self, not_newer_than: float) -> int:
        """Delete the clientToken records made at or before a time; returns how many."""
        return self.run("DELETE FROM client_tokens WHERE at<=?", (not_newer_than,)).rowcount

    # -- endpoints -----------------------------------------------------------------------

    def set_endpoints(
        self, mesh: str, virtual_node: str, source: str, endpoints: Sequence[Endpoint]
    ) -> None:
        """Replace the endpoints one source registered for a virtual node."""
        self.run(
            "DELETE FROM endpoints WHERE mesh=? AND virtual_node=? AND source=?",
            (mesh, virtual_node, source),
        )
        rows = [(mesh, virtual_node, source, *endpoint_row(e)) for e in endpoints]
        if rows:
            self.run_many("INSERT INTO endpoints VALUES (?,?,?,?,?,?,?)", rows)
        self._change(ResourceKey("virtualNode", mesh, "", virtual_node), "endpoints")

    def endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every registered endpoint of a mesh, by virtual node, sorted."""
        found: dict[str, list[Endpoint]] = {}
        rows = self.run(
            "SELECT virtual_node, listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=?",
            (mesh,),
        )
        for node, *columns in rows:
            found.setdefault(node, []).append(endpoint_of(*columns))
        return {node: tuple(sorted(set(eps))) for node, eps in sorted(found.items())}

    def node_endpoints(self, mesh: str, virtual_node: str) -> tuple[Endpoint, ...]:
        """The registered endpoints of one virtual node, sorted (what :meth:`endpoints` holds)."""
        rows = self.run(
            "SELECT listener_port, address, port, attributes FROM endpoints "
            "WHERE mesh=? AND virtual_node=?",
            (mesh, virtual_node),
        )
        return tuple(sorted({endpoint_of(*row) for row in rows}))

    def registrations(self) -> dict[tuple[str, str, str], tuple[Endpoint, ...]]:
        """Every registration: (mesh, virtual node, source) → its endpoints, sorted."""
        found: dict[tuple[str, str, str], set[Endpoint]] = {}
        rows = self.run(
            "SELECT mesh, virtual_node, source, listener_port, address, port, attributes "
            "FROM endpoints"
        )
        for mesh, node, source, *columns in rows:
            found.setdefault((mesh, node, source), set()).add(endpoint_of(*columns))
        return {key: tuple(sorted(eps)) for key, eps in sorted(found.items())}

    # -- manifest objects ----------------------------------------------------------------

    def manifest_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One stored manifest object's document, or ``None``."""
        return objects.get(self, kind, namespace, name)

    def manifest_objects(self) -> list[dict[str, Any]]:
        """Every stored manifest object, ordered by kind, namespace and name."""
        return objects.all_documents(self)

    def manifest_events(self, kind: str, namespace: str, name: str) -> list[Event]:
        """A manifest object's events, oldest first."""
        return objects.events(self, kind, namespace, name)

    def put_manifest_object(
        self, kind: str, namespace: str, name: str, document: dict[str, Any]
    ) -> None:
        """Insert or replace one manifest object."""
        objects.put(self, kind, namespace, name, document)
        self.objects_written = True

    def remove_manifest_object(self, kind: str, namespace: str, name: str) -> None:
        """Forget a manifest object and its events."""
        objects.remove(self, kind, namespace, name)
        self.objects_written = True

    def record_manifest_event(
        self,
        identity: tuple[str, str, str, str],
        event_type: str,
        reason: str,
        message: str,
        at: float,
    ) -> None:
        """Add an event for ``identity`` = (kind, namespace, name, uid), folding repeats."""
        objects.record_event(self, identity, event_type, reason, message, at)
