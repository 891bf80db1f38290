"""snapshots.updated: moving a mesh snapshot forward by re-reading only the changed keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import kinds
from meshplane.model import specs_generated as g
from meshplane.model.snapshot import Endpoint, MeshSnapshot
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import snapshots
from meshplane.store.protocols import Store
from meshplane.store.records import Change
from meshplane.store.sqlite import SqliteStore

ROUTE = {"tcpRoute": {"action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]}}}


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL (the protocol, not a backend)."""
    return any_store


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> MeshService:
    return MeshService(store, Account("us-west-2", "123456789012"), Quotas(), clock, counting_ids())


def _plain(snapshot: MeshSnapshot | None) -> dict[str, Any]:
    """The snapshot as plain nested dicts (order kept), for exact comparison."""
    assert snapshot is not None

    def flat(found: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return list(found.items())

    return {
        "revision": snapshot.revision,
        "mesh": snapshot.mesh,
        "virtual_nodes": flat(snapshot.virtual_nodes),
        "virtual_services": flat(snapshot.virtual_services),
        "virtual_routers": flat(snapshot.virtual_routers),
        "routes": [(p, flat(r)) for p, r in snapshot.routes.items()],
        "virtual_gateways": flat(snapshot.virtual_gateways),
        "gateway_routes": [(p, flat(r)) for p, r in snapshot.gateway_routes.items()],
        "endpoints": flat(snapshot.endpoints),
    }


def test_updated_snapshot_equals_a_full_read(store: SqliteStore, service: MeshService) -> None:
    """Creates, updates, deletes and endpoint changes applied one by one give a full read's view."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "b", {})
    service.create(kinds.VIRTUAL_ROUTER, "m", "vr", {})
    loaded = snapshots.mesh_snapshot(store, "m")
    start = store.revision()
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    service.create(kinds.ROUTE, "m", "r2", ROUTE, parent="vr")
    service.create(kinds.ROUTE, "m", "r1", ROUTE, parent="vr")
    service.update(kinds.VIRTUAL_NODE, "m", "b", {"backends": []})
    with store.transaction() as tx:
        tx.set_endpoints("m", "a", "replica-1", [Endpoint(80, "127.0.0.1", 9001)])
        tx.set_endpoints("m", "b", "replica-1", [Endpoint(80, "127.0.0.1", 9002)])
    service.delete(kinds.ROUTE, "m", "r2", parent="vr")
    service.delete(kinds.VIRTUAL_NODE, "m", "b")
    feed = store.feed.changes_since(start)
    assert len(feed) == 8
    step_by_step = loaded
    for change in feed:
        step_by_step = snapshots.updated(store, step_by_step, "m", [change])
    in_one_batch = snapshots.updated(store, loaded, "m", feed)
    full = _plain(snapshots.mesh_snapshot(store, "m"))
    assert _plain(step_by_step) == full
    assert _plain(in_one_batch) == full
    assert [name for name, _ in full["virtual_nodes"]] == ["a"]
    assert full["routes"][0][0] == "vr"
    assert [name for name, _ in full["routes"][0][1]] == ["r1"]
    assert full["endpoints"] == [("a", (Endpoint(80, "127.0.0.1", 9001),))]


def test_previous_snapshot_is_left_as_it_was(store: SqliteStore, service: MeshService) -> None:
    """updated returns a new snapshot; the one it started from keeps its old contents."""
    service.create(kinds.MESH, "m", "m", {})
    before = snapshots.mesh_snapshot(store, "m")
    start = store.revision()
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    changes = store.feed.changes_since(start)
    after = snapshots.updated(store, before, "m", changes)
    assert before is not None
    assert after is not None
    assert list(before.virtual_nodes) == []
    assert list(after.virtual_nodes) == ["a"]
    assert after.revision == changes[-1].revision


def test_a_mesh_change_or_no_previous_reads_the_whole_mesh(
    store: SqliteStore, service: MeshService
) -> None:
    """Without a previous snapshot, or when the mesh itself changed, the result is a full read."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    changes: Sequence[Change] = store.feed.changes_since(0)
    full = _plain(snapshots.mesh_snapshot(store, "m"))
    assert _plain(snapshots.updated(store, None, "m", changes)) == full
    empty = snapshots.mesh_snapshot(store, "m")
    service.update(kinds.MESH, "m", "m", {"egressFilter": {"type": "ALLOW_ALL"}})
    mesh_change = store.feed.changes_since(store.revision() - 1)
    refreshed = snapshots.updated(store, empty, "m", mesh_change)
    assert refreshed is not None
    assert refreshed.mesh.resource.spec["egressFilter"] == {"type": "ALLOW_ALL"}
    assert refreshed.mesh.spec == g.MeshSpec(egress_filter=g.EgressFilter(type="ALLOW_ALL"))


def test_a_route_change_shares_every_untouched_mapping_and_keeps_name_order(
    store: SqliteStore, service: MeshService
) -> None:
    """Other routers' children and kinds are shared; order is a full read's; before is kept."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "a", {})
    for router in ("vr-a", "vr-c"):
        service.create(kinds.VIRTUAL_ROUTER, "m", router, {})
        service.create(kinds.ROUTE, "m", "r1", ROUTE, parent=router)
    before = snapshots.mesh_snapshot(store, "m")
    assert before is not None
    start = store.revision()
    service.update(kinds.ROUTE, "m", "r1", {"priority": 1, **ROUTE}, parent="vr-a")
    after = snapshots.updated(store, before, "m", store.feed.changes_since(start))
    assert after is not None
    assert after.routes["vr-c"] is before.routes["vr-c"]
    assert after.virtual_routers is before.virtual_routers
    assert after.virtual_nodes is before.virtual_nodes
    assert (
        before.routes["vr-a"]["r1"].spec.priority,
        after.routes["vr-a"]["r1"].spec.priority,
    ) == (
        None,
        1,
    )
    start = store.revision()
    service.create(kinds.VIRTUAL_ROUTER, "m", "vr-b", {})
    service.create(kinds.ROUTE, "m", "r0", ROUTE, parent="vr-b")
    service.create(kinds.ROUTE, "m", "r2", ROUTE, parent="vr-c")
    service.create(kinds.ROUTE, "m", "r0", ROUTE, parent="vr-c")
    moved = snapshots.updated(store, after, "m", store.feed.changes_since(start))
    assert _plain(moved) == _plain(snapshots.mesh_snapshot(store, "m"))
    assert list(moved.routes) == ["vr-a", "vr-b", "vr-c"]
    assert list(moved.routes["vr-c"]) == ["r0", "r1", "r2"]
    assert list(after.routes) == ["vr-a", "vr-c"]
