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

from meshplane import app, settings
from meshplane.model import kinds

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


def _run(tmp_path: Path, body: Callable[[app.ControlPlane], Coroutine[Any, Any, None]]) -> None:
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)

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
