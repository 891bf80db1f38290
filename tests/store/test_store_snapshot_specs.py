"""The snapshot builder parses each stored spec once, into its generated class."""

from __future__ import annotations

import dataclasses

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import kinds
from meshplane.model import specs_generated as g
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import Resource
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store import snapshots
from meshplane.store.sqlite import SqliteStore

ACCOUNT = Account("us-west-2", "123456789012")


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> MeshService:
    return MeshService(store, ACCOUNT, Quotas(), clock, counting_ids())


def test_snapshot_specs_are_typed(store: SqliteStore, service: MeshService) -> None:
    """A full read gives each resource's spec as its generated class, raw spec kept beside it."""
    service.create(kinds.MESH, "m", "m", {"egressFilter": {"type": "ALLOW_ALL"}})
    spec = {
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "a.m"}},
    }
    service.create(kinds.VIRTUAL_NODE, "m", "a", spec)
    snapshot = snapshots.mesh_snapshot(store, "m")
    assert snapshot is not None
    assert snapshot.mesh.spec == g.MeshSpec(egress_filter=g.EgressFilter(type="ALLOW_ALL"))
    node = snapshot.virtual_nodes["a"]
    assert node.spec == g.VirtualNodeSpec(
        listeners=(g.Listener(port_mapping=g.PortMapping(port=8080, protocol="http")),),
        service_discovery=g.ServiceDiscovery(dns=g.DnsServiceDiscovery(hostname="a.m")),
    )
    assert node.resource.spec == spec
    assert node.key == ResourceKey("virtualNode", "m", "", "a")


def test_a_spec_the_model_refuses_is_left_out_and_logged(
    store: SqliteStore, service: MeshService, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored spec the model refuses is left out of full and moved-forward snapshots, logged."""
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "good", {})
    service.create(kinds.VIRTUAL_NODE, "m", "odd", {})
    previous = snapshots.mesh_snapshot(store, "m")
    assert previous is not None
    assert list(previous.virtual_nodes) == ["good", "odd"]
    with store.transaction() as tx:
        record = tx.get(ResourceKey("virtualNode", "m", "", "odd"))
        assert record is not None
        odd: Resource = dataclasses.replace(record.resource, spec={"listenres": []}, version=2)
        tx.replace(odd)
    moved = snapshots.updated(store, previous, "m", store.feed.changes_since(store.revision() - 1))
    snapshot = snapshots.mesh_snapshot(store, "m")
    assert moved is not None
    assert snapshot is not None
    assert list(moved.virtual_nodes) == list(snapshot.virtual_nodes) == ["good"]
    message = (
        "snapshot: arn:aws:appmesh:us-west-2:123456789012:mesh/m/virtualNode/odd left out: "
        "spec: unknown member listenres"
    )
    assert [r.getMessage() for r in caplog.records] == [message, message]
