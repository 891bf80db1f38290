"""The PostgreSQL store against a real server: shared by replicas, revisions in commit order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ServerFactory, make_client
from meshplane import app, settings
from meshplane.envoy import CLUSTER
from meshplane.kit.clock import FakeClock, counting_ids, system_clock
from meshplane.model import errors, kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import postgres
from meshplane.store.postgres import PostgresStore
from meshplane.store.protocols import FeedCompacted
from meshplane.store.refusals import StoreRefused, StoreTooNew
from meshplane.testing import FakeAdsClient, names_of

pytestmark = pytest.mark.integration

ACCOUNT = Account("us-west-2", "123456789012")
WAIT = 30.0
"""Safety bound on a wait that normally ends in milliseconds; never the thing tested."""


@pytest.fixture
def pair(postgres_url: str, clock: FakeClock) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two control-plane replicas hold them."""
    first = PostgresStore(postgres_url, clock)
    second = PostgresStore(postgres_url, clock)
    yield first, second
    first.close()
    second.close()


def _service(store: PostgresStore, clock: FakeClock) -> MeshService:
    # Quotas scaled up: the concurrency test creates 200 meshes.
    return MeshService(store, ACCOUNT, Quotas().scaled(20), clock, counting_ids())


def test_a_commit_on_one_replica_wakes_the_other_replicas_feed(
    pair: tuple[PostgresStore, PostgresStore], clock: FakeClock
) -> None:
    """B's feed wait returns when A commits (NOTIFY), and B reads A's change from the table."""
    a, b = pair

    async def scenario() -> int:
        waiting = asyncio.ensure_future(b.feed.wait(0))
        await asyncio.sleep(0)  # the waiter is registered before the write
        await asyncio.to_thread(_service(a, clock).create, kinds.MESH, "m", "m", {})
        return await asyncio.wait_for(waiting, WAIT)

    assert asyncio.run(scenario()) == 1
    assert [(c.revision, c.key.name, c.op) for c in b.feed.changes_since(0)] == [(1, "m", "create")]


def test_a_manifest_object_commit_on_one_replica_moves_both_replicas_objects_alike(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    """A manifest-object-only commit through A (no revision) wakes B's objects waiter; both
    then hold the same number (the commit's transaction id), above what either held before,
    and the store revision has not moved."""
    a, b = pair
    document = {"metadata": {"name": "demos", "labels": {"team": "blue"}}}

    async def scenario() -> tuple[int, int]:
        before = max(a.feed.objects.revision, b.feed.objects.revision)
        waiting = asyncio.ensure_future(b.feed.objects.wait(before))
        await asyncio.sleep(0)  # the waiter is registered before the write

        def write() -> None:
            with a.transaction() as tx:
                tx.put_manifest_object("Namespace", "", "demos", document)

        await asyncio.to_thread(write)
        heard = await asyncio.wait_for(waiting, WAIT)
        return before, heard

    before, heard = asyncio.run(scenario())
    assert heard > before
    assert a.feed.objects.revision == b.feed.objects.revision == heard
    assert (a.revision(), b.revision()) == (0, 0)


def test_optimistic_versions_and_client_tokens_hold_across_replicas(
    pair: tuple[PostgresStore, PostgresStore], clock: FakeClock
) -> None:
    """A duplicate create through B conflicts; a token replayed on B returns A's answer."""
    a, b = pair
    first = _service(a, clock).create(kinds.MESH, "m", "m", {}, client_token="t-1")
    with pytest.raises(errors.ConflictException):
        _service(b, clock).create(kinds.MESH, "m", "m", {})
    replay = _service(b, clock).create(kinds.MESH, "m", "m", {}, client_token="t-1")
    assert replay == first
    assert b.revision() == 1


def test_a_rolled_back_write_leaves_no_gap_in_revisions(
    pair: tuple[PostgresStore, PostgresStore], clock: FakeClock
) -> None:
    """A transaction that raises after recording a change gives its number back."""
    a, b = pair
    _service(a, clock).create(kinds.MESH, "m", "m", {})

    def abort_after_a_change() -> None:
        with a.transaction() as tx:
            tx.set_endpoints("m", "vn", "r-1", [])  # records revision 2 inside the transaction
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        abort_after_a_change()
    _service(b, clock).create(kinds.MESH, "n", "n", {})
    assert [(c.revision, c.key.name) for c in a.feed.changes_since(0)] == [(1, "m"), (2, "n")]
    assert a.revision() == 2


def test_eight_concurrent_replicas_lose_no_write_and_number_them_in_commit_order(
    postgres_url: str, clock: FakeClock
) -> None:
    """8 writers on 8 connections: every acknowledged write is stored, revisions 1..N, no gap,
    and each writer's own writes carry increasing revisions."""
    stores = [PostgresStore(postgres_url, clock) for _ in range(8)]
    acknowledged: list[list[str]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))

    def write(index: int) -> None:
        store = stores[index]
        start.wait()
        for n in range(25):
            name = f"w{index}-{n}"
            _service(store, clock).create(kinds.MESH, name, name, {})
            acknowledged[index].append(name)

    try:
        threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        changes = stores[0].feed.changes_since(0, limit=10_000)
        assert [c.revision for c in changes] == list(range(1, 201))
        by_name = {c.key.name: c.revision for c in changes}
        assert sorted(by_name) == sorted(name for own in acknowledged for name in own)
        for own in acknowledged:
            revisions = [by_name[name] for name in own]
            assert revisions == sorted(revisions)
        with stores[3].read() as tx:
            assert tx.count("mesh", None) == 200
    finally:
        for store in stores:
            store.close()


def test_compaction_and_token_pruning_work_as_on_sqlite(
    pair: tuple[PostgresStore, PostgresStore], clock: FakeClock
) -> None:
    """maintain() keeps the newest revisions (older asks raise FeedCompacted) and caps tokens."""
    a, b = pair
    service = _service(a, clock)
    for n in range(6):
        service.create(kinds.MESH, f"m{n}", f"m{n}", {}, client_token=f"t{n}")
        clock.advance(1)
    upkeep = a.maintain(keep_revisions=2, max_tokens=3, tokens_older_than=0.0)
    assert (upkeep.changes, upkeep.tokens, upkeep.floor) == (4, 3, 4)
    assert [c.revision for c in b.feed.changes_since(4)] == [5, 6]
    with pytest.raises(FeedCompacted):
        b.feed.changes_since(3)
    assert b.revision() == 6


def test_a_newer_schema_is_refused(postgres_url: str, clock: FakeClock) -> None:
    """A database migrated by a newer meshplane is refused with its version named."""
    PostgresStore(postgres_url, clock).close()
    import psycopg  # noqa: PLC0415

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE meshplane_schema SET version = 99")
    with pytest.raises(StoreTooNew, match="schema version 99, newer than this meshplane"):
        PostgresStore(postgres_url, clock)


def test_location_hides_the_password() -> None:
    """The banner and logs show the URL without its password."""
    assert postgres.redacted("postgresql://mp:s3cret@db.internal:5433/mesh") == (
        "postgresql://mp:***@db.internal:5433/mesh"
    )
    assert postgres.redacted("postgresql://mp@db/mesh") == "postgresql://mp@db/mesh"


def test_an_unreachable_database_is_refused_in_one_line(tmp_path: Path) -> None:
    """--store naming a database nobody listens on refuses to start, naming it."""
    config = settings.load(
        environ={}, data_dir=tmp_path / "d", store="postgresql://mp@127.0.0.1:1/none"
    )
    with pytest.raises(StoreRefused, match="cannot connect to the PostgreSQL store"):
        app.build(config)


def test_store_setting_comes_from_the_environment(tmp_path: Path) -> None:
    """MESHPLANE_STORE selects the store; other values than a postgresql URL are refused."""
    assert settings.load(environ={"MESHPLANE_STORE": "postgresql://x/y"}).store == (
        "postgresql://x/y"
    )
    config = settings.load(environ={}, data_dir=tmp_path / "d", store="mysql://x/y")
    with pytest.raises(StoreRefused, match="--store must be empty"):
        app.build(config)


def test_a_write_through_replica_a_reaches_a_proxy_on_replica_b(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two control planes on one database (own data dirs): a node created through A is
    served to a proxy connected to B's xDS server."""
    node_id = "mesh/m/virtualNode/vn"

    def config(name: str) -> settings.Settings:
        return settings.load(
            environ={}, data_dir=tmp_path / name, store=postgres_url, api_port=0, xds_port=0
        )

    async def scenario() -> tuple[list[str], list[str], int]:
        async with (
            app.running(app.build(config("a"), clock=system_clock)) as a,
            app.running(app.build(config("b"), clock=system_clock)) as b,
        ):
            token = b.services.credentials.issue(node_id, "").token
            async with FakeAdsClient(b.xds_port, node_id, credential=token) as proxy:
                await proxy.request(CLUSTER)
                before = await asyncio.wait_for(proxy.receive(), WAIT)
                await proxy.ack(before)
                resources = a.services.resources
                await asyncio.to_thread(resources.create, kinds.MESH, "m", "m", {})
                spec = {
                    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                    "serviceDiscovery": {"dns": {"hostname": "vn.local"}},
                }
                await asyncio.to_thread(resources.create, kinds.VIRTUAL_NODE, "m", "vn", spec)
                after = await asyncio.wait_for(proxy.receive(), WAIT)
                while not names_of(after):
                    await proxy.ack(after)
                    after = await asyncio.wait_for(proxy.receive(), WAIT)
            return sorted(names_of(before)), sorted(names_of(after)), b.store.revision()

    before, after, revision = asyncio.run(scenario())
    assert before == []
    assert after == ["cds_ingress_m_vn_http_80"]
    assert revision == 2


def test_two_serve_processes_share_one_database_and_survive_kill_of_one(
    start_server: ServerFactory, postgres_url: str
) -> None:
    """Two `meshplane serve` on MESHPLANE_STORE: a mesh created through A is listed by B; after
    kill -9 of A, B keeps answering and takes writes; every acknowledged write is there."""
    env = {"MESHPLANE_STORE": postgres_url}
    a, b = start_server(env), start_server(env)
    assert "postgresql://meshplane@127.0.0.1" in a.log_path.read_text()
    make_client(a.url).create_mesh(meshName="through-a")
    assert [m["meshName"] for m in make_client(b.url).list_meshes()["meshes"]] == ["through-a"]
    a.kill()
    make_client(b.url).create_mesh(meshName="through-b")
    names = sorted(m["meshName"] for m in make_client(b.url).list_meshes()["meshes"])
    assert names == ["through-a", "through-b"]
    assert b.revision() == 2


def _drop(url: str, pid: int | None = None) -> None:
    """End connections to ``url``'s database (one, or all but ours), waiting until they are gone."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as admin:
        if pid is not None:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        else:
            admin.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def test_connections_dropped_between_requests_cost_no_request(
    pair: tuple[PostgresStore, PostgresStore], postgres_url: str, clock: FakeClock
) -> None:
    """After the server drops every connection, the next write and read reconnect at BEGIN."""
    a, b = pair
    service = _service(a, clock)
    service.create(kinds.MESH, "m", "m", {})
    _drop(postgres_url)
    service.create(kinds.MESH, "n", "n", {})
    assert [(c.revision, c.key.name) for c in b.feed.changes_since(0)] == [(1, "m"), (2, "n")]


def test_a_connection_lost_inside_a_write_is_service_unavailable_and_writes_nothing(
    pair: tuple[PostgresStore, PostgresStore], postgres_url: str, clock: FakeClock
) -> None:
    """A write whose connection dies midway is ServiceUnavailableException naming the database;
    nothing of it is stored, and the next write commits as revision 2."""
    a, b = pair
    _service(a, clock).create(kinds.MESH, "m", "m", {})

    def write_while_the_connection_dies() -> None:
        with a.transaction() as tx:
            row = tx._conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            _drop(postgres_url, int(row[0]))
            tx.set_endpoints("m", "vn", "r-1", [])

    with pytest.raises(
        errors.ServiceUnavailableException, match=r"PostgreSQL store .* unreachable"
    ):
        write_while_the_connection_dies()
    _service(a, clock).create(kinds.MESH, "n", "n", {})
    assert [(c.revision, c.key.name) for c in b.feed.changes_since(0)] == [(1, "m"), (2, "n")]
