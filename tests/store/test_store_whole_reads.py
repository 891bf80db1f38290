"""Whole-mesh reads: unchanged rows come back as the same records, changed ones fetched anew.

``list_mesh`` keeps each mesh's last whole read (``sqlbase.MeshRows``) and fetches
whole only the rows whose identity columns moved; ``snapshots.mesh_snapshot`` with
the previous snapshot keeps the parsed form of every record it gets back unchanged.
Either way the result must equal what a read without them gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import snapshots
from meshplane.store.protocols import Store
from meshplane.store.records import Record, Tag

LISTENERS = {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}
NODE = {**LISTENERS, "serviceDiscovery": {"dns": {"hostname": "n.local"}}}
BACKENDS = {**NODE, "backends": [{"virtualService": {"virtualServiceName": "vs"}}]}


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


@pytest.fixture
def service(store: Store, clock: FakeClock) -> MeshService:
    return MeshService(store, Account("us-west-2", "123456789012"), Quotas(), clock, counting_ids())


def _mesh(service: MeshService) -> None:
    service.create(kinds.MESH, "m", "m", {})
    for name in ("a", "b", "c"):
        service.create(kinds.VIRTUAL_NODE, "m", name, NODE)
    service.create(kinds.VIRTUAL_ROUTER, "m", "vr", LISTENERS)
    route = {"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": []}}}
    route["httpRoute"]["action"]["weightedTargets"] = [{"virtualNode": "a", "weight": 1}]
    service.create(kinds.ROUTE, "m", "r", route, parent="vr")


def _records(store: Store) -> dict[ResourceKey, Record]:
    with store.read() as tx:
        return {r.key: r for r in tx.list_mesh("m")}


def _fresh(store: Store) -> list[Record]:
    """Each resource of the mesh read on its own (no whole-read memo involved)."""
    with store.read() as tx:
        keys = [r.key for r in tx.list_mesh("m")]
        found = [tx.get(key) for key in keys]
    return [r for r in found if r is not None]


def _key(kind: kinds.Kind, name: str, parent: str = "") -> ResourceKey:
    return ResourceKey(kind.key, "m", parent, name)


def test_unchanged_rows_are_the_same_records_and_changed_rows_new_ones(
    store: Store, service: MeshService
) -> None:
    """A spec update, a tag change and a delete + re-create give new records; the rest are kept."""
    _mesh(service)
    first = _records(store)
    service.update(kinds.VIRTUAL_NODE, "m", "a", BACKENDS)
    with store.transaction() as tx:
        tx.set_tags(_key(kinds.VIRTUAL_NODE, "b"), [Tag("team", "blue")])
    service.delete(kinds.VIRTUAL_NODE, "m", "c")
    service.create(kinds.VIRTUAL_NODE, "m", "c", NODE)
    second = _records(store)
    renewed = {key.name for key in second if second[key] is not first.get(key)}
    assert renewed == {"a", "b", "c"}
    assert list(second.values()) == _fresh(store)
    assert second[_key(kinds.VIRTUAL_NODE, "b")].tags == (Tag("team", "blue"),)
    assert _records(store) == second
    assert all(r is second[k] for k, r in _records(store).items())


def _plain(snapshot: MeshSnapshot | None) -> dict[str, Any]:
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


def test_a_reread_with_the_previous_snapshot_keeps_what_did_not_change(
    store: Store, service: MeshService
) -> None:
    """Unchanged resources and kinds stay the same objects; the view is a fresh read's."""
    _mesh(service)
    before = snapshots.mesh_snapshot(store, "m")
    assert before is not None
    service.update(kinds.VIRTUAL_NODE, "m", "a", BACKENDS)
    after = snapshots.mesh_snapshot(store, "m", before)
    assert after is not None
    assert _plain(after) == _plain(snapshots.mesh_snapshot(store, "m"))
    assert after.mesh is before.mesh
    assert after.virtual_routers is before.virtual_routers
    assert after.routes is before.routes
    assert after.virtual_nodes["b"] is before.virtual_nodes["b"]
    assert after.virtual_nodes["a"] is not before.virtual_nodes["a"]
    assert before.virtual_nodes["a"].spec.backends is None
    assert after.virtual_nodes["a"].spec.backends is not None


def test_rows_changed_in_place_are_refetched_and_the_rest_kept_in_order(
    store: Store, service: MeshService
) -> None:
    """Updates only (the rows line up with the last read): just the changed rows are new records."""
    _mesh(service)
    first = _records(store)
    service.update(kinds.VIRTUAL_NODE, "m", "a", BACKENDS)
    with store.transaction() as tx:
        tx.set_tags(_key(kinds.VIRTUAL_NODE, "c"), [Tag("team", "blue")])
    second = _records(store)
    assert [k.name for k in second] == ["m", "a", "b", "c", "vr", "r"]
    assert {k.name for k in second if second[k] is not first[k]} == {"a", "c"}
    assert list(second.values()) == _fresh(store)
    assert second[_key(kinds.VIRTUAL_NODE, "c")].tags == (Tag("team", "blue"),)


def test_a_reread_after_an_incremental_one_reads_a_tag_put_back_as_it_is_now(
    store: Store, service: MeshService
) -> None:
    """A row changed and changed back after the last whole read is not taken from the previous."""
    _mesh(service)
    whole = snapshots.mesh_snapshot(store, "m")
    assert whole is not None
    start = store.revision()
    b = _key(kinds.VIRTUAL_NODE, "b")
    mirror = Tag("meshplane.dev/mirror", "a=10")  # an extension tag: it is a change
    with store.transaction() as tx:
        tx.set_tags(b, [mirror])
    tagged = snapshots.updated(store, whole, "m", store.feed.changes_since(start))
    assert tagged is not None
    assert tagged.virtual_nodes["b"].resource.extensions == {mirror.key: mirror.value}
    with store.transaction() as tx:
        tx.set_tags(b, [])
    # The row's identity is back to what the whole read saw; the previous snapshot's is not.
    reread = snapshots.mesh_snapshot(store, "m", tagged)
    assert _plain(reread) == _plain(snapshots.mesh_snapshot(store, "m"))
    assert reread is not None
    assert _records(store)[b].tags == ()
    assert reread.virtual_nodes["b"].resource is whole.virtual_nodes["b"].resource
    assert reread.virtual_nodes["a"] is tagged.virtual_nodes["a"]


def test_a_reread_where_resources_came_and_went_equals_a_fresh_read(
    store: Store, service: MeshService
) -> None:
    """A delete and a create between whole reads: the snapshot is built whole, as a fresh read."""
    _mesh(service)
    before = snapshots.mesh_snapshot(store, "m")
    assert before is not None
    service.delete(kinds.VIRTUAL_NODE, "m", "b")
    service.create(kinds.VIRTUAL_NODE, "m", "d", NODE)
    service.update(kinds.VIRTUAL_NODE, "m", "a", BACKENDS)
    after = snapshots.mesh_snapshot(store, "m", before)
    assert after is not None
    assert list(after.virtual_nodes) == ["a", "c", "d"]
    assert _plain(after) == _plain(snapshots.mesh_snapshot(store, "m"))
    assert after.virtual_nodes["c"] is before.virtual_nodes["c"]
    assert after.virtual_nodes["a"].spec.backends is not None
