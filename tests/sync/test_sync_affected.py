"""The sync stage rebuilds only the proxies a change affects, and keeps them correct.

An in-process control plane (store, services, sync, ADS server) with fake proxies:
each is announced on the xDS status board the way an ADS stream announces a real
Envoy. ``sync.builds`` counts translations per proxy; ``sync.published`` holds the
version each was given. After every change the test waits until every proxy is
current with the store's revision, then checks which ones were rebuilt, and
finally that each published snapshot equals a from-scratch translation.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2

from meshplane import app, settings
from meshplane.envoy import resources as envoy_resources
from meshplane.model import kinds
from meshplane.store import snapshots
from meshplane.translate import building, patching
from meshplane.translate.diagnostics import Warning
from meshplane.translate.identity import NodeIdentity
from meshplane.xds.snapshot import ResourceEncoder, Snapshot

MESH = "demos"
LISTENERS = {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}
PROXIES = ("vn-frontend", "vn-other", "vn-late", "vn-blue")


def _node(backends: tuple[str, ...] = (), host: str = "h.local") -> dict[str, Any]:
    spec: dict[str, Any] = {**LISTENERS, "serviceDiscovery": {"dns": {"hostname": host}}}
    if backends:
        spec["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return spec


def _route(blue: int, green: int, prefix: str = "/") -> dict[str, Any]:
    targets = [
        {"virtualNode": "vn-blue", "weight": blue},
        {"virtualNode": "vn-green", "weight": green},
    ]
    return {"httpRoute": {"match": {"prefix": prefix}, "action": {"weightedTargets": targets}}}


def _build_mesh(plane: app.ControlPlane) -> None:
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-blue", _node())
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-green", _node())
    svc.create(kinds.VIRTUAL_ROUTER, MESH, "vr-backend", LISTENERS)
    svc.create(kinds.ROUTE, MESH, "r-main", _route(100, 0), parent="vr-backend")
    provider = {"provider": {"virtualRouter": {"virtualRouterName": "vr-backend"}}}
    svc.create(kinds.VIRTUAL_SERVICE, MESH, "vs-backend", provider)
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-frontend", _node(("vs-backend",)))
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-other", _node())
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-late", _node(("vs-late",)))


def _key(name: str) -> str:
    return f"mesh/{MESH}/virtualNode/{name}"


async def _settled(plane: app.ControlPlane) -> None:
    """Wait until every fake proxy was given a snapshot current with the store's revision."""
    revision = plane.store.revision()
    async with asyncio.timeout(30):
        while True:
            published = [plane.sync.published.get(_key(name)) for name in PROXIES]
            if all(p is not None and p.revision >= revision for p in published):
                return
            await asyncio.sleep(0.01)


class Watch:
    """Counts translations and remembers versions, to tell which proxies a change rebuilt."""

    def __init__(self, plane: app.ControlPlane) -> None:
        self.plane = plane
        self.builds: collections.Counter[str] = collections.Counter()
        self.patches: collections.Counter[str] = collections.Counter()
        self.versions: dict[str, str] = {}
        self.mark()

    def mark(self) -> None:
        """Remember the current counts and versions."""
        self.builds = collections.Counter(self.plane.sync.builds)
        self.patches = collections.Counter(self.plane.sync.patches)
        self.versions = {n: self.plane.sync.published[_key(n)].version for n in PROXIES}

    async def rebuilt_by(self, change: Callable[[], object]) -> list[str]:
        """Apply ``change``, wait for the sync stage, return the proxies it rebuilt.

        Rebuilt: translated again, or given its previous snapshot patched with the
        changed pieces (which must equal a translation: see ``_equals_full_translation``).
        """
        self.mark()
        change()
        await _settled(self.plane)
        builds, patches = self.plane.sync.builds, self.plane.sync.patches
        return [
            n
            for n in PROXIES
            if builds[_key(n)] != self.builds[_key(n)] or patches[_key(n)] != self.patches[_key(n)]
        ]

    def translated(self) -> list[str]:
        """The proxies translated again (not patched) since the last mark."""
        builds = self.plane.sync.builds
        return [n for n in PROXIES if builds[_key(n)] != self.builds[_key(n)]]

    def changed(self) -> list[str]:
        """The proxies whose published version differs from the last mark."""
        return [
            n for n in PROXIES if self.plane.sync.published[_key(n)].version != self.versions[n]
        ]


def _run(tmp_path: Path, body: Callable[[app.ControlPlane], Coroutine[Any, Any, None]]) -> None:
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            _build_mesh(plane)
            for name in PROXIES:
                plane.ads.status.record_connected(_key(name), base_pb2.Node(id=_key(name)))
            await _settled(plane)
            await body(plane)

    asyncio.run(scenario())


def _equals_full_translation(plane: app.ControlPlane) -> None:
    """Every proxy's published snapshot is what a from-scratch translation of the store gives."""
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
        expected = Snapshot.of(resources, encoder)
        assert plane.sync.published[_key(name)].version == expected.version, name
        assert plane.sync.published[_key(name)].warnings == built.warnings, name


def test_unrelated_node_change_rebuilds_only_its_own_proxy(tmp_path: Path) -> None:
    """Updating vn-other rebuilds vn-other alone; the others stay put at the new revision."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        svc = plane.services.resources
        rebuilt = await watch.rebuilt_by(
            lambda: svc.update(kinds.VIRTUAL_NODE, MESH, "vn-other", _node(host="x.local"))
        )
        assert rebuilt == ["vn-other"]
        assert watch.changed() == []
        unrelated = await watch.rebuilt_by(
            lambda: svc.create(kinds.VIRTUAL_NODE, MESH, "vn-nobody", _node())
        )
        assert unrelated == []
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_route_change_rebuilds_the_frontend_that_uses_it(tmp_path: Path) -> None:
    """Updating or adding a route of the router behind vs-backend rebuilds vn-frontend only."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        svc = plane.services.resources
        rebuilt = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(0, 100), parent="vr-backend")
        )
        assert rebuilt == ["vn-frontend"]
        assert watch.changed() == ["vn-frontend"]
        added = await watch.rebuilt_by(
            lambda: svc.create(
                kinds.ROUTE, MESH, "r-canary", _route(50, 50, "/canary"), parent="vr-backend"
            )
        )
        assert added == ["vn-frontend"]
        assert watch.changed() == ["vn-frontend"]
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_creating_a_listed_backend_service_rebuilds_the_node_that_lists_it(tmp_path: Path) -> None:
    """vn-late lists vs-late before it exists; creating vs-late rebuilds vn-late and no other."""

    async def body(plane: app.ControlPlane) -> None:
        late = plane.sync.published[_key("vn-late")]
        assert late.warnings == (
            Warning(
                f"mesh/{MESH}/virtualService/vs-late",
                "service-not-found",
                "VirtualService vs-late: not found; backend skipped",
            ),
        )
        watch = Watch(plane)
        provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-green"}}}
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.resources.create(
                kinds.VIRTUAL_SERVICE, MESH, "vs-late", provider
            )
        )
        assert rebuilt == ["vn-late"]
        assert watch.changed() == ["vn-late"]
        assert plane.sync.published[_key("vn-late")].warnings == ()
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_endpoint_registration_rebuilds_the_callers_of_the_target(tmp_path: Path) -> None:
    """Endpoints of vn-green (a route target) rebuild vn-frontend, not vn-green's peers."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        endpoints = [{"listenerPort": 80, "address": "127.0.0.1", "port": 41000}]
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.discovery.register(MESH, "vn-green", "green-0", endpoints)
        )
        assert rebuilt == ["vn-frontend"]
        assert watch.changed() == ["vn-frontend"]
        own = await watch.rebuilt_by(
            lambda: plane.services.discovery.register(MESH, "vn-other", "other-0", endpoints)
        )
        assert own == []
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_mesh_change_rebuilds_every_proxy_of_the_mesh(tmp_path: Path) -> None:
    """An egress filter change is read by every translation: all four proxies are rebuilt."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        allow = {"egressFilter": {"type": "ALLOW_ALL"}}
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.resources.update(kinds.MESH, MESH, MESH, allow)
        )
        assert rebuilt == list(PROXIES)
        assert watch.changed() == list(PROXIES)
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_deleting_a_route_and_forcing_full_rebuilds_agree(tmp_path: Path) -> None:
    """After deletes, the in-memory snapshot still translates like a full read; the old mode
    (``incremental = False``) rebuilds every proxy and publishes the same versions."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        svc = plane.services.resources
        svc.create(kinds.ROUTE, MESH, "r-extra", _route(1, 1, "/x"), parent="vr-backend")
        await _settled(plane)
        rebuilt = await watch.rebuilt_by(
            lambda: svc.delete(kinds.ROUTE, MESH, "r-extra", parent="vr-backend")
        )
        assert rebuilt == ["vn-frontend"]
        _equals_full_translation(plane)
        watch.mark()
        plane.sync.incremental = False
        everything = await watch.rebuilt_by(
            lambda: svc.update(kinds.VIRTUAL_NODE, MESH, "vn-other", _node(host="y.local"))
        )
        assert everything == list(PROXIES)
        assert watch.changed() == []  # a node's own DNS name is not in its own config
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_a_proxy_stays_served_while_another_stream_of_its_node_is_open(tmp_path: Path) -> None:
    """Two Envoys share a node id; when one disconnects, changes still reach the other."""

    async def body(plane: app.ControlPlane) -> None:
        board = plane.ads.status
        board.record_connected(_key("vn-frontend"), base_pb2.Node(id=_key("vn-frontend")))
        board.record_disconnected(_key("vn-frontend"))
        watch = Watch(plane)
        spec = _route(50, 50)
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.resources.update(
                kinds.ROUTE, MESH, "r-main", spec, parent="vr-backend"
            )
        )
        assert rebuilt == ["vn-frontend"]
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_a_failed_publish_pass_is_survived_and_everything_rebuilt(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A translation that raises once does not stop later pushes: the next pass rebuilds all."""

    async def body(plane: app.ControlPlane) -> None:
        real = building.build
        failures = []

        def fail_once(*args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(args)
                raise RuntimeError("injected translation failure")
            return real(*args, **kwargs)

        monkeypatch.setattr(building, "build", fail_once)
        watch = Watch(plane)
        # A change to vn-frontend's own spec is translated (a route change would be patched).
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.resources.update(
                kinds.VIRTUAL_NODE, MESH, "vn-frontend", _node(("vs-backend",), host="f.local")
            )
        )
        assert len(failures) == 1
        assert rebuilt == list(PROXIES)
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_a_proxy_that_leaves_is_forgotten_and_rebuilt_when_it_returns(tmp_path: Path) -> None:
    """Disconnecting drops its published record and cached snapshot; reconnecting restores them."""

    async def body(plane: app.ControlPlane) -> None:
        key = _key("vn-other")
        version = plane.sync.published[key].version
        plane.ads.status.record_disconnected(key)
        assert key not in plane.sync.published
        assert plane.ads.cache.snapshot(key) is None
        plane.ads.status.record_connected(key, base_pb2.Node(id=key))
        await _settled(plane)
        assert plane.sync.published[key].version == version
        assert plane.ads.cache.snapshot(key) is not None

    _run(tmp_path, body)


def test_the_proxy_report_shows_warning_messages_and_their_codes(tmp_path: Path) -> None:
    """proxies() lists each warning's message as before, and beside it resource and code."""

    async def body(plane: app.ControlPlane) -> None:
        [late] = [p for p in plane.proxies() if p["key"] == _key("vn-late")]
        assert late["warnings"] == ["VirtualService vs-late: not found; backend skipped"]
        assert late["diagnostics"] == [
            {
                "resource": f"mesh/{MESH}/virtualService/vs-late",
                "code": "service-not-found",
                "message": "VirtualService vs-late: not found; backend skipped",
            }
        ]

    _run(tmp_path, body)


def test_a_write_to_another_mesh_leaves_this_mesh_current_at_the_new_revision(
    tmp_path: Path,
) -> None:
    """A create in another mesh rebuilds and pushes nothing here, yet every proxy of this mesh
    is published at the new revision (SYNCED, not STALE, while other meshes are written)."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        rebuilt = await watch.rebuilt_by(
            lambda: plane.services.resources.create(kinds.MESH, "elsewhere", "elsewhere", {})
        )
        assert rebuilt == []
        assert watch.changed() == []
        revision = plane.store.revision()
        assert [plane.sync.published[_key(n)].revision for n in PROXIES] == [revision] * 4

    _run(tmp_path, body)


def test_an_endpoints_change_is_spliced_into_its_callers_snapshots(tmp_path: Path) -> None:
    """A registered node's new endpoints patch vn-frontend's snapshot; it equals a translation."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        first = [{"listenerPort": 80, "address": "127.0.0.1", "port": 41000}]
        register = plane.services.discovery.register
        # The first registration turns vn-green's cluster from DNS to EDS: translated.
        assert await watch.rebuilt_by(lambda: register(MESH, "vn-green", "g-0", first)) == [
            "vn-frontend"
        ]
        assert watch.translated() == ["vn-frontend"]
        assert plane.sync.patches[_key("vn-frontend")] == 0
        second = [{"listenerPort": 80, "address": "127.0.0.2", "port": 41001}]
        assert await watch.rebuilt_by(lambda: register(MESH, "vn-green", "g-0", second)) == [
            "vn-frontend"
        ]
        assert watch.translated() == []
        assert plane.sync.patches[_key("vn-frontend")] == 1
        assert watch.changed() == ["vn-frontend"]
        _equals_full_translation(plane)
        cached = plane.ads.cache.snapshot(_key("vn-frontend"))
        assert cached is not None
        assert cached.version == plane.sync.published[_key("vn-frontend")].version
        [assignment] = [
            r.decode()
            for r in cached.resources(envoy_resources.ENDPOINT).values()
            if "vn-green" in r.name
        ]
        [locality] = assignment.endpoints  # type: ignore[attr-defined]
        [endpoint] = locality.lb_endpoints
        address = endpoint.endpoint.address.socket_address
        assert (address.address, address.port_value) == ("127.0.0.2", 41001)

    _run(tmp_path, body)


def test_a_caller_with_its_own_tls_to_the_target_is_translated_not_patched(
    tmp_path: Path,
) -> None:
    """vn-frontend's client policy TLS makes its vn-green cluster its own: a change rebuilds it."""

    async def body(plane: app.ControlPlane) -> None:
        policy = {"tls": {"validation": {"trust": {"file": {"certificateChain": "/ca.pem"}}}}}
        spec = _node(("vs-backend",))
        spec["backendDefaults"] = {"clientPolicy": policy}
        plane.services.resources.update(kinds.VIRTUAL_NODE, MESH, "vn-frontend", spec)
        await _settled(plane)
        watch = Watch(plane)
        register = plane.services.discovery.register
        first = [{"listenerPort": 80, "address": "127.0.0.1", "port": 41000}]
        await watch.rebuilt_by(lambda: register(MESH, "vn-green", "g-0", first))
        second = [{"listenerPort": 80, "address": "127.0.0.2", "port": 41001}]
        assert await watch.rebuilt_by(lambda: register(MESH, "vn-green", "g-0", second)) == [
            "vn-frontend"
        ]
        assert watch.translated() == ["vn-frontend"]
        assert plane.sync.patches[_key("vn-frontend")] == 0
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_a_weight_shift_is_spliced_into_the_callers_route_configuration(tmp_path: Path) -> None:
    """Weights moving between the same targets patch vn-frontend's routes; a new target does not."""

    async def body(plane: app.ControlPlane) -> None:
        watch = Watch(plane)
        svc = plane.services.resources
        shift = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(30, 70), parent="vr-backend")
        )
        assert shift == ["vn-frontend"]
        assert watch.translated() == []
        assert plane.sync.patches[_key("vn-frontend")] == 1
        _equals_full_translation(plane)
        cached = plane.ads.cache.snapshot(_key("vn-frontend"))
        assert cached is not None
        config = cached.resources(envoy_resources.ROUTE)["rds_egress_http_15001"].decode()
        [host] = [h for h in config.virtual_hosts if h.name == "vs-backend"]  # type: ignore[attr-defined]
        weights = [
            (c.name.split("_")[3], c.weight.value)
            for c in host.routes[0].route.weighted_clusters.clusters
        ]
        assert weights == [("vn-blue", 30), ("vn-green", 70)]
        assert host.routes[-1].name == "connect"
        # A route to a node no route reached before needs a cluster: translated.
        svc.create(kinds.VIRTUAL_NODE, MESH, "vn-red", _node())
        await _settled(plane)
        watch.mark()
        red = {"virtualNode": "vn-red", "weight": 1}
        spec = _route(30, 70)
        spec["httpRoute"]["action"]["weightedTargets"].append(red)
        moved = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", spec, parent="vr-backend")
        )
        assert moved == ["vn-frontend"]
        assert watch.translated() == ["vn-frontend"]
        _equals_full_translation(plane)

    _run(tmp_path, body)


def test_one_route_of_several_is_spliced_route_by_route_and_a_broken_splice_shows(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """r-main's weights change beside r-alt: only r-main's bytes are swapped; a bad swap fails."""
    spliced: list[bytes | None] = []
    splice = patching.splice_routes

    def recorded(host: bytes, edits: Any) -> bytes | None:
        found = splice(host, edits)
        spliced.append(found)
        return found

    monkeypatch.setattr(patching, "splice_routes", recorded)

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        svc.create(kinds.ROUTE, MESH, "r-alt", _route(100, 0, "/alt"), parent="vr-backend")
        await _settled(plane)
        watch = Watch(plane)
        shift = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(30, 70), parent="vr-backend")
        )
        assert (shift, watch.translated()) == (["vn-frontend"], [])
        assert len(spliced) == 1
        assert spliced[0] is not None
        _equals_full_translation(plane)
        # The same splice, leaving the host's bytes as they were: the check catches it.
        monkeypatch.setattr(patching, "splice_routes", lambda host, _edits: host)
        watch.mark()
        await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(60, 40), parent="vr-backend")
        )
        assert watch.translated() == []
        with pytest.raises(AssertionError, match="vn-frontend"):
            _equals_full_translation(plane)

    _run(tmp_path, body)


def test_two_callers_are_spliced_from_one_shared_start_each_keeping_its_own_tunnel(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """vn-frontend and vn-other hold vs-backend, each with its own CONNECT route: one walk."""
    walked: list[bytes] = []
    splice = patching.splice_routes

    def recorded(host: bytes, edits: Any) -> bytes | None:
        walked.append(host)
        return splice(host, edits)

    monkeypatch.setattr(patching, "splice_routes", recorded)

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        svc.update(kinds.VIRTUAL_NODE, MESH, "vn-other", _node(("vs-backend",)))
        # r-alt, planned before and not again, reaches a node r-main does not: the patch
        # must still read it (else the plan's reads differ and both callers are translated).
        alt = {"virtualNode": "vn-other", "weight": 1}
        spec = {"httpRoute": {"match": {"prefix": "/alt"}, "action": {"weightedTargets": [alt]}}}
        svc.create(kinds.ROUTE, MESH, "r-alt", spec, parent="vr-backend")
        await _settled(plane)
        watch = Watch(plane)
        walked.clear()
        shift = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(30, 70), parent="vr-backend")
        )
        assert (shift, watch.translated()) == (["vn-frontend", "vn-other"], [])
        assert len(walked) == 1  # the second caller's host was spliced from the shared start
        _equals_full_translation(plane)
        tunnels = []
        for name in ("vn-frontend", "vn-other"):
            cached = plane.ads.cache.snapshot(_key(name))
            assert cached is not None
            config = cached.resources(envoy_resources.ROUTE)["rds_egress_http_15001"].decode()
            [host] = [h for h in config.virtual_hosts if h.name == "vs-backend"]  # type: ignore[attr-defined]
            assert [r.name for r in host.routes] == ["r-alt", "r-main", "connect"]
            tunnels.append(host.routes[-1].route.cluster)
        assert tunnels == [
            "cds_egress_demos_vn-frontend_connect_15001",
            "cds_egress_demos_vn-other_connect_15001",
        ]

    _run(tmp_path, body)


def test_a_weight_shift_beside_a_route_that_warns_is_planned_whole_and_spliced(
    tmp_path: Path,
) -> None:
    """r-alt's weights are all 0 (a warning): r-main's shift re-plans both; the warning stays."""

    async def body(plane: app.ControlPlane) -> None:
        svc = plane.services.resources
        svc.create(kinds.ROUTE, MESH, "r-alt", _route(0, 0, "/alt"), parent="vr-backend")
        await _settled(plane)
        watch = Watch(plane)
        shift = await watch.rebuilt_by(
            lambda: svc.update(kinds.ROUTE, MESH, "r-main", _route(30, 70), parent="vr-backend")
        )
        assert (shift, watch.translated()) == (["vn-frontend"], [])
        codes = [w.code for w in plane.sync.published[_key("vn-frontend")].warnings]
        assert codes == ["route-zero-weights"]
        _equals_full_translation(plane)

    _run(tmp_path, body)
