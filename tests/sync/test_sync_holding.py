"""Static stability: a proxy whose mesh the store lost keeps its config, held, until it is back.

An in-process control plane with fake proxies announced on the status board, as an
ADS stream announces a real Envoy; ``resumed`` is the version a reconnecting Envoy
says it runs. Real Envoy over a restarted, emptied store is in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshplane import app, settings
from meshplane.envoy import ENDPOINT
from meshplane.model import kinds
from meshplane.model.snapshot import Endpoint

MESH = "demos"
KEY = "mesh/demos/virtualNode/vn-a"
NODE = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "a.local"}},
}
KEEPS = (
    "the proxy keeps the config it runs until the store has it again (re-apply) or it is "
    "deleted explicitly"
)


async def _until(plane: app.ControlPlane, condition: Callable[[], bool]) -> None:
    """Wait, woken by the sync stage's publish passes, until ``condition`` holds."""
    woken = asyncio.Event()
    unsubscribe = plane.sync.subscribe(woken.set)
    try:
        async with asyncio.timeout(30):
            while not condition():
                await woken.wait()
                woken.clear()
    finally:
        unsubscribe()


def _run(
    tmp_path: Path,
    body: Callable[[app.ControlPlane], Coroutine[Any, Any, None]],
    environ: dict[str, str] | None = None,
) -> None:
    config = settings.load(
        environ=environ or {}, data_dir=tmp_path / "data", api_port=0, xds_port=0
    )

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            await body(plane)

    asyncio.run(scenario())


def _state(plane: app.ControlPlane) -> tuple[str, Any]:
    (view,) = plane.views.proxies()
    return view["state"], view["held"]


def test_a_resumed_proxy_of_an_unknown_mesh_is_held_until_the_store_has_its_node(
    tmp_path: Path,
) -> None:
    """Reconnecting with config for a mesh the store lacks: HELD, nothing set; re-apply frees it."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY), resumed="v-old")
        await _until(plane, lambda: KEY in plane.sync.held)
        assert _state(plane) == (
            "HELD",
            f"mesh {MESH} is not in the store, which did not delete it; {KEEPS}",
        )
        assert plane.cache.snapshot(KEY) is None
        svc = plane.services.resources
        svc.create(kinds.MESH, MESH, MESH, {})
        await _until(plane, lambda: "virtualNode" in (plane.sync.held.get(KEY) or ""))
        assert _state(plane) == (
            "HELD",
            f"virtualNode vn-a of mesh {MESH} is not in the store, which did not delete it; "
            f"{KEEPS}",
        )
        assert plane.cache.snapshot(KEY) is None
        svc.create(kinds.VIRTUAL_NODE, MESH, "vn-a", NODE)
        await _until(plane, lambda: KEY not in plane.sync.held)
        snapshot = plane.cache.snapshot(KEY)
        assert snapshot is not None
        assert plane.sync.published[KEY].version == snapshot.version
        assert plane.sync.published[KEY].revision == plane.store.revision() == 2
        assert _state(plane) == ("STALE", None)  # built; the fake proxy never ACKs

    _run(tmp_path, body)


def test_a_new_proxy_of_an_unknown_mesh_gets_the_empty_config_as_before(tmp_path: Path) -> None:
    """A proxy that runs nothing yet has nothing to keep: it is given an empty snapshot."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY))
        await _until(plane, lambda: KEY in plane.sync.published)
        snapshot = plane.cache.snapshot(KEY)
        assert snapshot is not None
        assert snapshot.version == plane.sync.published[KEY].version
        assert [w.code for w in plane.sync.published[KEY].warnings] == ["mesh-not-found"]
        assert plane.sync.held == {}

    _run(tmp_path, body)


def test_a_delete_through_the_store_empties_a_proxy_it_configured(tmp_path: Path) -> None:
    """Deleting a proxy's node through the store is asked for: the proxy gets nothing, not held."""

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        svc.create(kinds.MESH, MESH, MESH, {})
        svc.create(kinds.VIRTUAL_NODE, MESH, "vn-a", NODE)
        plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY))
        await _until(plane, lambda: KEY in plane.sync.published)
        given = plane.cache.snapshot(KEY)
        assert given is not None
        svc.delete(kinds.VIRTUAL_NODE, MESH, "vn-a")
        await _until(plane, lambda: plane.sync.published[KEY].revision == 3)
        emptied = plane.cache.snapshot(KEY)
        assert emptied is not None
        assert emptied.version != given.version
        assert [w.code for w in plane.sync.published[KEY].warnings] == ["node-not-found"]
        assert plane.sync.held == {}

    _run(tmp_path, body)


def test_creating_and_deleting_the_mesh_releases_a_held_proxy(tmp_path: Path) -> None:
    """The operator's explicit delete of a lost mesh releases its held proxies to nothing."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY), resumed="v-old")
        await _until(plane, lambda: KEY in plane.sync.held)
        svc = plane.services.resources
        svc.create(kinds.MESH, MESH, MESH, {})
        svc.delete(kinds.MESH, MESH, MESH)
        await _until(plane, lambda: KEY not in plane.sync.held)
        assert plane.cache.snapshot(KEY) is not None
        assert [w.code for w in plane.sync.published[KEY].warnings] == ["mesh-not-found"]
        assert _state(plane) == ("SYNCED", None)  # nothing to ACK in an empty snapshot

    _run(tmp_path, body)


def test_a_held_proxy_that_leaves_is_forgotten(tmp_path: Path) -> None:
    """Disconnecting clears the hold: the view says DISCONNECTED and nothing is kept for it."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY), resumed="v-old")
        await _until(plane, lambda: KEY in plane.sync.held)
        plane.ads.status.record_disconnected(KEY)
        assert plane.sync.held == {}
        assert _state(plane) == ("DISCONNECTED", None)

    _run(tmp_path, body)


FRONT = "mesh/demos/virtualNode/vn-front"
BACK = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "back.local"}},
}
WAITS = (
    "the endpoints of virtualNode vn-back are not registered with this store yet, which did "
    "not withdraw them; the proxy keeps the config it runs until they are, or for at most "
)


def _reapply(plane: app.ControlPlane) -> None:
    """The mesh of a caller (vn-front) and its backend (vn-back behind vs-back), re-applied."""
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-back", BACK)
    provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-back"}}}
    svc.create(kinds.VIRTUAL_SERVICE, MESH, "vs-back", provider)
    front = {**NODE, "backends": [{"virtualService": {"virtualServiceName": "vs-back"}}]}
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-front", front)


def _assignments(plane: app.ControlPlane) -> dict[str, list[str]]:
    """The caller's published ClusterLoadAssignments: cluster → ``address:port`` endpoints."""
    snapshot = plane.cache.snapshot(FRONT)
    assert snapshot is not None
    found = {}
    for name, resource in snapshot.resources(ENDPOINT).items():
        assignment = resource.decode()
        assert isinstance(assignment, endpoint_pb2.ClusterLoadAssignment)
        found[name] = [
            f"{e.endpoint.address.socket_address.address}:"
            f"{e.endpoint.address.socket_address.port_value}"
            for locality in assignment.endpoints
            for e in locality.lb_endpoints
        ]
    return found


def test_after_store_loss_a_caller_waits_for_its_backends_endpoints_before_it_is_rebuilt(
    tmp_path: Path,
) -> None:
    """Re-applied but not yet registered: the caller stays HELD, naming the node; the runtime's
    registration releases it with the endpoints (never an empty or DNS cluster between)."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(FRONT, base_pb2.Node(id=FRONT), resumed="v-old")
        await _until(plane, lambda: FRONT in plane.sync.held)
        _reapply(plane)
        await _until(plane, lambda: (plane.sync.held.get(FRONT) or "").startswith(WAITS))
        assert plane.sync.held[FRONT] == WAITS + "15s"
        assert plane.cache.snapshot(FRONT) is None
        with plane.store.transaction() as tx:
            tx.set_endpoints(MESH, "vn-back", "r-0", [Endpoint(80, "127.0.0.1", 9001)])
        await _until(plane, lambda: FRONT not in plane.sync.held)
        assert _assignments(plane) == {"cds_egress_demos_vn-back_http_80": ["127.0.0.1:9001"]}

    _run(tmp_path, body)


def test_after_store_loss_a_withdrawn_registration_is_known_empty(tmp_path: Path) -> None:
    """A registration change to nothing (a runtime withdrew) is known: the caller is rebuilt."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(FRONT, base_pb2.Node(id=FRONT), resumed="v-old")
        await _until(plane, lambda: FRONT in plane.sync.held)
        _reapply(plane)
        await _until(plane, lambda: (plane.sync.held.get(FRONT) or "").startswith(WAITS))
        with plane.store.transaction() as tx:
            tx.set_endpoints(MESH, "vn-back", "r-0", [])
        await _until(plane, lambda: FRONT not in plane.sync.held)
        assert plane.cache.snapshot(FRONT) is not None
        assert _state(plane) == ("STALE", None)  # built; the fake proxy never ACKs

    _run(tmp_path, body)


def test_after_store_loss_the_endpoint_wait_ends_after_the_lease_ttl(tmp_path: Path) -> None:
    """No runtime registers within MESHPLANE_ENDPOINT_LEASE_TTL: the caller gets what the store
    holds (the backend's DNS name) once the grace has passed, woken by the stage's own timer."""

    async def body(plane: app.ControlPlane) -> None:
        plane.ads.status.record_connected(FRONT, base_pb2.Node(id=FRONT), resumed="v-old")
        await _until(plane, lambda: FRONT in plane.sync.held)
        _reapply(plane)
        await _until(plane, lambda: (plane.sync.held.get(FRONT) or "").startswith(WAITS))
        assert plane.sync.held[FRONT] == WAITS + "1s"
        await _until(plane, lambda: FRONT not in plane.sync.held)
        assert _assignments(plane) == {}  # a DNS cluster: no assignment of its own

    _run(tmp_path, body, {"MESHPLANE_ENDPOINT_LEASE_TTL": "1"})


def test_a_caller_never_held_for_a_lost_store_gets_empty_endpoints_at_once(
    tmp_path: Path,
) -> None:
    """A new caller of a node nobody registered is built at once (no wait without store loss)."""

    async def body(plane: app.ControlPlane) -> None:
        _reapply(plane)
        plane.ads.status.record_connected(FRONT, base_pb2.Node(id=FRONT), resumed="v-old")
        await _until(plane, lambda: FRONT in plane.sync.published)
        assert plane.sync.held == {}

    _run(tmp_path, body)
