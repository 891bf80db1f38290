"""The store's revision counter, change feed and schema migrations, without a server."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import errors, kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Endpoint, Resource
from meshplane.service.resources import Account, MeshService
from meshplane.service.tagging import Tagging
from meshplane.settings import Quotas
from meshplane.store import schema
from meshplane.store.protocols import Store
from meshplane.store.records import Change
from meshplane.store.snapshots import mesh_snapshot
from meshplane.store.sqlite import DB_FILE, SqliteStore
from meshplane.store.waking import Waker

ACCOUNT = Account("us-west-2", "123456789012")


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL (the protocol, not a backend)."""
    return any_store


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> MeshService:
    return MeshService(store, ACCOUNT, Quotas(), clock, counting_ids())


def _resource(name: str, at: float = 1.0) -> Resource:
    key = ResourceKey("mesh", name, "", name)
    return Resource(
        key,
        kinds.arn("us-west-2", "123456789012", key),
        f"uid-{name}",
        1,
        at,
        at,
        {},
        "123456789012",
    )


def test_revision_starts_at_zero_and_counts_committed_writes(store: SqliteStore) -> None:
    """A fresh store is at revision 0; each committed write adds exactly one."""
    assert store.revision() == 0
    for number, name in enumerate(("a", "b", "c"), start=1):
        with store.transaction() as tx:
            tx.insert(_resource(name), [])
        assert store.revision() == number
    assert [c.key.name for c in store.feed.changes_since(0)] == ["a", "b", "c"]
    assert [c.revision for c in store.feed.changes_since(1)] == [2, 3]
    assert [c.op for c in store.feed.changes_since(0)] == ["create", "create", "create"]


class RecordingWaker(Waker):
    """A waker that notes, at each notification, the revision and the rows on disk."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.seen: list[tuple[int, int]] = []

    def notify(self, revision: int) -> None:
        # A second connection sees only committed data: the write must already be there.
        other = sqlite3.connect(self.path)
        try:
            count = other.execute("SELECT count(*) FROM resources").fetchone()[0]
        finally:
            other.close()
        self.seen.append((revision, count))
        super().notify(revision)


@pytest.fixture
def recorded(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[SqliteStore, RecordingWaker]]:
    """A store whose feed notifications are recorded."""
    waker = RecordingWaker(tmp_path / "rec" / DB_FILE)
    opened = SqliteStore(tmp_path / "rec", clock, waker)
    yield opened, waker
    opened.close()


def test_feed_is_notified_after_commit_and_wakes_its_waiter(
    recorded: tuple[SqliteStore, RecordingWaker],
) -> None:
    """The feed is woken after commit with the new revision; a waiter then reads the change."""
    store, waker = recorded

    async def scenario() -> tuple[int, list[Change]]:
        waiting = asyncio.create_task(store.feed.wait(0))
        with store.transaction() as tx:
            tx.insert(_resource("a", 5.0), [])
            assert waker.seen == []
        woken = await waiting
        return woken, store.feed.changes_since(0)

    woken, changes = asyncio.run(scenario())
    assert waker.seen == [(1, 1)]
    assert woken == 1
    assert changes == [Change(1, ResourceKey("mesh", "a", "", "a"), "create", 1_700_000_000.0)]


def test_rollback_notifies_nobody_and_keeps_revision(
    recorded: tuple[SqliteStore, RecordingWaker],
) -> None:
    """A transaction that raises writes nothing, notifies nobody and keeps the revision."""
    store, waker = recorded

    def abort_after_insert() -> None:
        with store.transaction() as tx:
            tx.insert(_resource("a"), [])
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        abort_after_insert()
    assert waker.seen == []
    assert store.revision() == 0
    with store.read() as tx:
        assert tx.get(ResourceKey("mesh", "a", "", "a")) is None
    with store.transaction() as tx:
        tx.insert(_resource("b"), [])
    assert store.revision() == 1
    assert waker.seen == [(1, 1)]


def test_read_only_transactions_notify_nobody(
    recorded: tuple[SqliteStore, RecordingWaker],
) -> None:
    """Reading changes nothing and wakes no feed consumer."""
    store, waker = recorded
    with store.read() as tx:
        assert tx.list_records("mesh", None) == []
    assert waker.seen == []


def test_reopening_notifies_the_stored_revision(tmp_path: Path, clock: FakeClock) -> None:
    """A reopened store's feed starts at the stored revision: waiting for an older one returns."""
    first = SqliteStore(tmp_path / "d", clock)
    with first.transaction() as tx:
        tx.insert(_resource("a"), [])
        tx.insert(_resource("b"), [])
    first.close()
    waker = RecordingWaker(tmp_path / "d" / DB_FILE)
    second = SqliteStore(tmp_path / "d", clock, waker)
    try:
        assert waker.seen == [(2, 2)]
        assert asyncio.run(second.feed.wait(1)) == 2
    finally:
        second.close()


def test_service_writes_one_revision_each_and_rejections_none(
    store: SqliteStore, service: MeshService
) -> None:
    """Create, update and delete each add one revision; rejections and tags add none."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    service.update(kinds.VIRTUAL_NODE, "m", "a", {"backends": []})
    assert store.revision() == 3
    with pytest.raises(errors.ConflictException):
        service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    with pytest.raises(errors.ResourceInUseException):
        service.delete(kinds.MESH, "m", "m")
    with pytest.raises(errors.BadRequestException):
        service.create(kinds.ROUTE, "m", "r", {}, parent="vr")
    tagging = Tagging(store, ACCOUNT)
    tagging.tag("arn:aws:appmesh:us-west-2:123456789012:mesh/m", [{"key": "k", "value": "v"}])
    assert store.revision() == 3
    service.delete(kinds.VIRTUAL_NODE, "m", "a")
    assert [(c.revision, c.key.kind, c.op) for c in store.feed.changes_since(0)] == [
        (1, "mesh", "create"),
        (2, "virtualNode", "create"),
        (3, "virtualNode", "update"),
        (4, "virtualNode", "delete"),
    ]


def test_service_uses_injected_clock_and_ids(service: MeshService, clock: FakeClock) -> None:
    """createdAt, lastUpdatedAt and uid come from the injected clock and id factory."""
    made = service.create(kinds.MESH, "m", "m", None)
    assert made["metadata"]["createdAt"] == 1_700_000_000.0
    assert made["metadata"]["uid"] == "00000000-0000-4000-8000-000000000001"
    clock.advance(2.5)
    updated = service.update(kinds.MESH, "m", "m", {})
    assert updated["metadata"]["createdAt"] == 1_700_000_000.0
    assert updated["metadata"]["lastUpdatedAt"] == 1_700_000_002.5
    assert updated["metadata"]["version"] == 2


def test_snapshot_holds_one_mesh_at_one_revision(store: SqliteStore, service: MeshService) -> None:
    """mesh_snapshot groups a mesh's resources and endpoints at the current revision."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.MESH, "other", "other", {})
    service.create(kinds.VIRTUAL_NODE, "m", "b", {})
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    service.create(kinds.VIRTUAL_ROUTER, "m", "vr", {})
    service.create(
        kinds.ROUTE,
        "m",
        "r",
        {"tcpRoute": {"action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]}}},
        parent="vr",
    )
    with store.transaction() as tx:
        tx.set_endpoints("m", "a", "replica-1", [Endpoint(80, "127.0.0.1", 9001)])
    snap = mesh_snapshot(store, "m")
    assert snap is not None
    assert snap.revision == store.revision() == 7
    assert list(snap.virtual_nodes) == ["a", "b"]
    assert list(snap.routes["vr"]) == ["r"]
    assert snap.endpoints == {"a": (Endpoint(80, "127.0.0.1", 9001),)}
    assert mesh_snapshot(store, "absent") is None


def test_old_data_dir_is_migrated(tmp_path: Path, clock: FakeClock) -> None:
    """A data dir at schema v1 gets the newer migrations and keeps its data."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
    for statement in schema._statements(schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO resources (kind, mesh, parent, name, uid, arn, owner, version, created_at, "
        "updated_at, spec, tags) VALUES ('mesh','old','','old','u','arn:x','123456789012',3,1,2,"
        "'{}','[]')"
    )
    conn.close()

    store = SqliteStore(data_dir, clock)
    try:
        assert store.schema_version == len(schema.MIGRATIONS) >= 2
        with store.read() as tx:
            record = tx.get(ResourceKey("mesh", "old", "", "old"))
            assert record is not None
            assert record.resource.version == 3
        with store.transaction() as tx:
            tx.set_endpoints("old", "vn", "src", [Endpoint(80, "10.0.0.1", 80)])
    finally:
        store.close()
    check = sqlite3.connect(data_dir / DB_FILE)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
        tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "endpoints" in tables
        assert check.execute("SELECT count(*) FROM endpoints").fetchone()[0] == 1
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        check.close()


def test_newer_data_dir_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A data dir from a newer meshplane is refused with a message naming both versions."""
    data_dir = tmp_path / "new"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / DB_FILE)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="schema version 99, newer than this meshplane"):
        SqliteStore(data_dir, clock)


def test_reopening_keeps_revision(tmp_path: Path, clock: FakeClock) -> None:
    """Closing and reopening a data dir keeps resources and the revision."""
    first = SqliteStore(tmp_path / "d", clock)
    with first.transaction() as tx:
        tx.insert(_resource("a"), [])
    first.close()
    second = SqliteStore(tmp_path / "d", clock)
    try:
        assert second.revision() == 1
        assert second.schema_version == len(schema.MIGRATIONS)
    finally:
        second.close()


def test_client_tokens_of_schema_4_are_kept_under_the_empty_principal(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Migration 5 (tokens per principal) keeps the records it finds, as nobody's own."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
    for migration in schema.MIGRATIONS[:4]:
        for statement in schema._statements(migration):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO client_tokens VALUES ('CreateMesh', 't', 'd', '{\"n\": 1}', 5.0)")
    conn.close()

    store = SqliteStore(data_dir, clock)
    try:
        assert store.schema_version == len(schema.MIGRATIONS) == 7
        with store.read() as tx:
            assert tx.token("", "CreateMesh", "t", 0.0) == ("d", {"n": 1})
            assert tx.token("alice", "CreateMesh", "t", 0.0) is None
    finally:
        store.close()


def test_a_commit_that_writes_manifest_objects_moves_the_objects_count_not_the_revision(
    store: Store, service: MeshService
) -> None:
    """Each commit that stores or removes manifest objects moves feed.objects past where it
    was (get -w wakes on it) and leaves the revision; a commit of App Mesh rows only, and a
    rolled-back object write, leave feed.objects where it is."""
    objects = store.feed.objects
    start = objects.revision
    with store.transaction() as tx:
        tx.put_manifest_object("Namespace", "", "a", {"metadata": {"name": "a"}})
        tx.put_manifest_object("Namespace", "", "b", {"metadata": {"name": "b"}})
    stored = objects.revision
    assert (stored > start, store.revision()) == (True, 0)
    with store.transaction() as tx:
        tx.remove_manifest_object("Namespace", "", "a")
    removed = objects.revision
    assert removed > stored

    def rolled_back() -> None:
        with store.transaction() as tx:
            tx.put_manifest_object("Namespace", "", "c", {"metadata": {"name": "c"}})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    service.create(kinds.MESH, "m", "m", {})
    assert (objects.revision, store.revision()) == (removed, 1)


def test_a_schema_6_store_gets_the_index_whole_mesh_reads_are_served_from(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Migration 7: the identity columns of a whole-mesh read come from one covering index."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
    for migration in schema.MIGRATIONS[:6]:
        for statement in schema._statements(migration):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    SqliteStore(data_dir, clock).close()
    conn = sqlite3.connect(data_dir / DB_FILE)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq, uid, version, updated_at, tags FROM resources "
            "WHERE mesh=? ORDER BY seq",
            ("m",),
        ).fetchall()
        assert conn.execute("PRAGMA user_version").fetchone() == (7,)
    finally:
        conn.close()
    assert [row[-1] for row in plan] == [
        "SEARCH resources USING COVERING INDEX resources_identity (mesh=?)"
    ]
