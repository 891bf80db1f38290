"""A full rebuild (the whole mesh reread) keeps the shared pieces nothing changed.

The reread keeps unchanged resources as the same objects, :mod:`meshplane.sync.meshdiff`
says what differs, and the shared table drops only the pieces that read it; the
encodings of the kept pieces are kept too (:mod:`meshplane.sync.encodings`). Every
proxy is still translated, and each snapshot must equal a from-scratch translation.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2

from meshplane import app, settings
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.store import snapshots
from meshplane.sync import encodings, meshdiff
from meshplane.translate import building
from meshplane.translate.identity import NodeIdentity
from meshplane.xds.snapshot import ResourceEncoder, Snapshot

MESH = "demos"
LISTENERS = {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}
PROXIES = ("vn-front", "vn-side")


def _node(backends: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {**LISTENERS, "serviceDiscovery": {"dns": {"hostname": "h.local"}}}
    if backends:
        spec["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return spec


def _route(blue: int) -> dict[str, Any]:
    targets = [
        {"virtualNode": "vn-blue", "weight": blue},
        {"virtualNode": "vn-green", "weight": 100 - blue},
    ]
    return {"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}}}


def _build_mesh(plane: app.ControlPlane) -> None:
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    for name in ("vn-blue", "vn-green", "vn-solo"):
        svc.create(kinds.VIRTUAL_NODE, MESH, name, _node())
    svc.create(kinds.VIRTUAL_ROUTER, MESH, "vr", LISTENERS)
    svc.create(kinds.ROUTE, MESH, "r", _route(100), parent="vr")
    router = {"provider": {"virtualRouter": {"virtualRouterName": "vr"}}}
    svc.create(kinds.VIRTUAL_SERVICE, MESH, "vs-routed", router)
    solo = {"provider": {"virtualNode": {"virtualNodeName": "vn-solo"}}}
    svc.create(kinds.VIRTUAL_SERVICE, MESH, "vs-solo", solo)
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-front", _node(("vs-routed", "vs-solo")))
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-side", _node(("vs-solo",)))


def _key(name: str) -> str:
    return f"mesh/{MESH}/virtualNode/{name}"


async def _settled(plane: app.ControlPlane) -> None:
    revision = plane.store.revision()
    async with asyncio.timeout(30):
        while not all(
            (p := plane.sync.published.get(_key(n))) is not None and p.revision >= revision
            for n in PROXIES
        ):
            await asyncio.sleep(0.01)


def _run(tmp_path: Path, body: Callable[[app.ControlPlane], Coroutine[Any, Any, None]]) -> None:
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            _build_mesh(plane)
            for name in PROXIES:
                plane.ads.status.record_connected(_key(name), base_pb2.Node(id=_key(name)))
            await _settled(plane)
            plane.sync.incremental = False
            await body(plane)

    asyncio.run(scenario())


def _equals_full_translation(plane: app.ControlPlane) -> None:
    mesh = snapshots.mesh_snapshot(plane.store, MESH)
    assert mesh is not None
    encoder = ResourceEncoder()
    for name in PROXIES:
        built = building.build(mesh, NodeIdentity(mesh=MESH, kind="virtualNode", name=name))
        resources = (
            *built.listeners,
            *built.route_configurations,
            *built.clusters,
            *built.cluster_load_assignments,
        )
        assert plane.sync.published[_key(name)].version == Snapshot.of(resources, encoder).version
        assert plane.sync.published[_key(name)].warnings == built.warnings


def test_a_full_rebuild_after_a_route_change_rebuilds_only_the_pieces_that_read_it(
    tmp_path: Path,
) -> None:
    """Both proxies are translated; the routed service's pieces are rebuilt, vs-solo's kept."""

    async def body(plane: app.ControlPlane) -> None:
        shared = plane.sync._shared[MESH]
        builds = dict(plane.sync.builds)
        misses = shared.misses
        plane.services.resources.update(kinds.ROUTE, MESH, "r", _route(30), parent="vr")
        await _settled(plane)
        assert all(plane.sync.builds[_key(n)] == builds[_key(n)] + 1 for n in PROXIES)
        # Rebuilt: the plan, routes, serialized routes and targets list of vs-routed.
        assert shared.misses - misses == 4
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_a_full_rebuild_after_a_mesh_change_rebuilds_every_piece(tmp_path: Path) -> None:
    """Every piece read the mesh: all are built again, and the result is still exact."""

    async def body(plane: app.ControlPlane) -> None:
        shared = plane.sync._shared[MESH]
        pieces, misses = len(shared), shared.misses
        allow = {"egressFilter": {"type": "ALLOW_ALL"}}
        plane.services.resources.update(kinds.MESH, MESH, MESH, allow)
        await _settled(plane)
        assert shared.misses - misses == pieces
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_the_difference_of_two_snapshots_names_each_changed_key(tmp_path: Path) -> None:
    """An update, a delete, a create and an endpoints registration, each said once."""

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        before = snapshots.mesh_snapshot(plane.store, MESH)
        assert before is not None
        assert meshdiff.changes(before, snapshots.mesh_snapshot(plane.store, MESH, before)) == []
        svc.update(kinds.ROUTE, MESH, "r", _route(30), parent="vr")
        svc.delete(kinds.VIRTUAL_NODE, MESH, "vn-side")
        svc.create(kinds.VIRTUAL_NODE, MESH, "vn-new", _node())
        endpoint = [{"listenerPort": 80, "address": "127.0.0.1", "port": 40001}]
        plane.services.discovery.register(MESH, "vn-blue", "i-1", endpoint)
        after = snapshots.mesh_snapshot(plane.store, MESH, before)
        assert after is not None
        node = kinds.VIRTUAL_NODE.key
        assert sorted(meshdiff.changes(before, after)) == [
            (ResourceKey("route", MESH, "vr", "r"), "update"),
            (ResourceKey(node, MESH, "", "vn-blue"), "endpoints"),
            (ResourceKey(node, MESH, "", "vn-new"), "update"),
            (ResourceKey(node, MESH, "", "vn-side"), "update"),
        ]
        changed_mesh = dataclasses.replace(after, mesh=dataclasses.replace(after.mesh))
        assert meshdiff.changes(after, changed_mesh) == [(after.mesh.key, "update")]

    _run(tmp_path, body)


def test_kept_encodings_go_with_their_pieces_and_with_a_prune() -> None:
    """forget drops what a dropped piece held; prune drops what was not used since the last."""
    kept = encodings.KeptEncodings()
    encoder = ResourceEncoder()
    used, dropped, idle = (cluster_pb2.Cluster(name=n) for n in ("used", "dropped", "idle"))
    for message in (used, dropped, idle):
        kept.keep(message, encoder.encode(message))
    kept.prune()
    assert len(kept) == 3
    assert kept.get(cluster_pb2.Cluster(name="used")) is None  # equal, not the same object
    assert kept.get(used) == encoder.encode(used)
    kept.forget([(dropped, None), {"x": [idle]}])
    assert (kept.get(dropped), kept.get(idle)) == (None, None)
    kept.keep(idle, encoder.encode(idle))
    kept.prune()
    kept.prune()
    assert len(kept) == 0


def test_kept_encodings_looked_up_at_once_mark_only_the_kept_ones_used() -> None:
    """lookup gives each kept object's encoding, None otherwise; a prune drops the unlooked."""
    kept = encodings.KeptEncodings()
    encoder = ResourceEncoder()
    looked, idle, other = (cluster_pb2.Cluster(name=n) for n in ("looked", "idle", "other"))
    for message in (looked, idle):
        kept.keep(message, encoder.encode(message))
    kept.prune()
    found = kept.lookup([other, looked, cluster_pb2.Cluster(name="idle")])
    assert found == [None, encoder.encode(looked), None]
    kept.prune()
    assert len(kept) == 1
    assert kept.get(looked) == encoder.encode(looked)
    assert kept.get(idle) is None


def test_a_full_rebuild_right_after_incremental_passes_equals_a_full_translation(
    tmp_path: Path,
) -> None:
    """Modes alternated (the reread lines up with a snapshot moved on incrementally): exact."""

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        for blue in (30, 60, 90):
            plane.sync.incremental = True
            svc.update(kinds.ROUTE, MESH, "r", _route(blue), parent="vr")
            await _settled(plane)
            plane.sync.incremental = False
            svc.update(kinds.ROUTE, MESH, "r", _route(blue + 5), parent="vr")
            await _settled(plane)
            _equals_full_translation(plane)
            mesh = plane.sync._meshes[MESH]
            assert mesh is not None
            weights = mesh.routes["vr"]["r"].spec.http_route
            assert weights is not None
            assert [t.weight for t in weights.action.weighted_targets] == [blue + 5, 95 - blue]

    _run(tmp_path, body)
