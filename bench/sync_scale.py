"""The sync stage at ten times App Mesh's quotas: rebuild only affected proxies vs all of them.

An in-process control plane (quotas raised with ``MESHPLANE_QUOTA_*``) holds a
mesh of 2,000 virtual nodes, 2,000 virtual services (500 provided by routers),
500 virtual routers with 10 routes each: 9,500 resources. 50 fake proxies are
announced on the xDS status board (as ADS streams announce real Envoys); each
is a node with 20 router-provided backends. Then, alternating the two modes
round by round, the same writes are made and timed:

* ``incremental`` — the new sync stage: the mesh snapshot stays in memory and
  moves forward by re-reading the changed keys; only proxies whose last
  translation read a changed key are rebuilt;
* ``full`` — ``sync.incremental = False``: per change the whole mesh is read
  from SQLite and every proxy of it is translated again (the old behaviour).

Per write: the sync stage's own time (``publish_pending``), the time from the
write's return to every proxy being published at its revision, and how many
proxies were translated or had their snapshot patched (an endpoints change is
spliced into its callers' snapshots, :mod:`meshplane.translate.patching`). Writes:
a route's weights (5 proxies use it), a route of a router no proxy calls,
endpoints of a node that routes target. Last, after one more incremental
endpoints write, every proxy's snapshot is checked against a from-scratch
translation without shared pieces.

Run: ``python -m bench.sync_scale``.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2

from meshplane import app, settings
from meshplane.model import kinds
from meshplane.store import snapshots
from meshplane.translate import building
from meshplane.translate.identity import NodeIdentity
from meshplane.xds.snapshot import ResourceEncoder, Snapshot

MESH = "scale"
NODES = 2000
SERVICES = 2000
ROUTERS = 500
ROUTES_PER_ROUTER = 10
PROXIES = 50
BACKENDS = 20
ROUNDS = 9
QUOTAS = {
    "MESHPLANE_QUOTA_VIRTUAL_NODES": "2000",
    "MESHPLANE_QUOTA_VIRTUAL_SERVICES": "2000",
    "MESHPLANE_QUOTA_VIRTUAL_ROUTERS": "2000",
    "MESHPLANE_QUOTA_ROUTES": "500",
    "MESHPLANE_QUOTA_BACKENDS": "500",
}
LISTENERS = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}


def _node(index: int) -> dict[str, Any]:
    """Proxies (the first 50) call 20 router-provided services; the rest call two."""
    spread = [(index + 10 * k) % SERVICES for k in range(BACKENDS)] if index < PROXIES else []
    backends = spread or [(index + k) % SERVICES for k in (1, 2)]
    return {
        **LISTENERS,
        "serviceDiscovery": {"dns": {"hostname": f"vn-{index:04d}.{MESH}.local"}},
        "backends": [{"virtualService": {"virtualServiceName": f"vs-{b:04d}"}} for b in backends],
    }


def _route(router: int, index: int, heavy: int = 90) -> dict[str, Any]:
    a, b = (router * ROUTES_PER_ROUTER + index) % NODES, (router + index + 1) % NODES
    targets = [
        {"virtualNode": f"vn-{a:04d}", "weight": heavy},
        {"virtualNode": f"vn-{b:04d}", "weight": 100 - heavy},
    ]
    return {
        "priority": index,
        "httpRoute": {"match": {"prefix": f"/p{index}"}, "action": {"weightedTargets": targets}},
    }


def _build_mesh(plane: app.ControlPlane) -> float:
    """Create the 9,500 resources through the service layer; seconds taken."""
    began = time.perf_counter()
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    for index in range(NODES):
        svc.create(kinds.VIRTUAL_NODE, MESH, f"vn-{index:04d}", _node(index))
    for router in range(ROUTERS):
        svc.create(kinds.VIRTUAL_ROUTER, MESH, f"vr-{router:04d}", LISTENERS)
        for index in range(ROUTES_PER_ROUTER):
            svc.create(
                kinds.ROUTE,
                MESH,
                f"rt-{index:02d}",
                _route(router, index),
                parent=f"vr-{router:04d}",
            )
    for index in range(SERVICES):
        if index < ROUTERS:
            provider = {"virtualRouter": {"virtualRouterName": f"vr-{index:04d}"}}
        else:
            provider = {"virtualNode": {"virtualNodeName": f"vn-{index % NODES:04d}"}}
        svc.create(kinds.VIRTUAL_SERVICE, MESH, f"vs-{index:04d}", {"provider": provider})
    return time.perf_counter() - began


def _key(index: int) -> str:
    return f"mesh/{MESH}/virtualNode/vn-{index:04d}"


class Probe:
    """Times the sync stage's ``publish_pending`` calls and waits for publishes."""

    def __init__(self, plane: app.ControlPlane) -> None:
        self.plane = plane
        self.spent = 0.0
        self.cpu = 0.0
        inner = plane.sync.publish_pending

        def timed() -> None:
            start, cpu = time.perf_counter(), time.process_time()
            inner()
            self.spent += time.perf_counter() - start
            self.cpu += time.process_time() - cpu

        plane.sync.publish_pending = timed  # type: ignore[method-assign]

    async def published(self, revision: int, deadline: float = 120) -> None:
        """Poll until every proxy is published at ``revision`` or later."""
        published = self.plane.sync.published
        async with asyncio.timeout(deadline):
            while not all(
                (p := published.get(_key(i))) is not None and p.revision >= revision
                for i in range(PROXIES)
            ):
                await asyncio.sleep(0.0005)

    async def write(self, change: Callable[[], object]) -> tuple[float, float, int, float, int]:
        """Make one write; (sync seconds, write-to-published seconds, proxies translated,
        sync CPU seconds, proxies patched)."""
        sync = self.plane.sync
        builds, patches = collections.Counter(sync.builds), collections.Counter(sync.patches)
        self.spent = self.cpu = 0.0
        change()
        written = time.perf_counter()
        await self.published(self.plane.store.revision())
        latency = time.perf_counter() - written
        rebuilt = sum(1 for k, n in sync.builds.items() if n != builds[k])
        patched = sum(1 for k, n in sync.patches.items() if n != patches[k])
        return self.spent, latency, rebuilt, self.cpu, patched


def _writes(plane: app.ControlPlane, round_: int) -> dict[str, Callable[[], object]]:
    svc = plane.services.resources
    endpoint = [{"listenerPort": 8080, "address": "127.0.0.1", "port": 40000 + round_}]
    return {
        "route weights (vr-0100/rt-00)": lambda: svc.update(
            kinds.ROUTE, MESH, "rt-00", _route(100, 0, heavy=round_ % 100), parent="vr-0100"
        ),
        "route nobody calls (vr-0400/rt-00)": lambda: svc.update(
            kinds.ROUTE, MESH, "rt-00", _route(400, 0, heavy=round_ % 100), parent="vr-0400"
        ),
        "endpoints of a target (vn-0005)": lambda: plane.services.discovery.register(
            MESH, "vn-0005", "bench-0", endpoint
        ),
    }


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:8.1f}"


async def _run(data_dir: Path) -> None:
    config = settings.load(environ=QUOTAS, data_dir=data_dir, api_port=0, xds_port=0)
    async with app.running(app.build(config)) as plane:
        seconds = _build_mesh(plane)
        print(f"mesh: 9,501 resources created in-process in {seconds:.1f} s")
        probe = Probe(plane)
        began = time.perf_counter()
        for index in range(PROXIES):
            plane.ads.status.record_connected(_key(index), base_pb2.Node(id=_key(index)))
        await probe.published(plane.store.revision())
        took = time.perf_counter() - began
        print(f"{PROXIES} proxies connected and first published in {took:.1f} s")
        results: dict[tuple[str, str], list[tuple[float, float, int, float, int]]] = (
            collections.defaultdict(list)
        )
        for round_ in range(ROUNDS):
            for label, change in _writes(plane, round_).items():
                # Side by side: each write is made once per mode in the same round.
                for mode in ("incremental", "full"):
                    plane.sync.incremental = mode == "incremental"
                    results[(label, mode)].append(await probe.write(change))
        plane.sync.incremental = True
        print()
        print(
            f"{'write':34} {'mode':12} {'rebuilt':>8} {'patched':>8} {'sync p50':>9} "
            f"{'sync p99':>9} {'publish p50':>12} {'publish p99':>12} {'sync CPU p50':>13} "
            f"{'goal':>6}   (ms; {ROUNDS} rounds)"
        )
        for (label, mode), rows in results.items():
            sync = [r[0] for r in rows]
            latency = [r[1] for r in rows]
            rebuilt = statistics.median(r[2] for r in rows)
            patched = statistics.median(r[4] for r in rows)
            cpu = [r[3] for r in rows]
            # k: the proxies the change affects, translated again or patched.
            k = statistics.median(r[2] + r[4] for r in rows)
            goal = 1 + 0.2 * k if mode == "incremental" else 100.0
            print(
                f"{label:34} {mode:12} {rebuilt:>8.0f} {patched:>8.0f} {_ms(sync, 0.5):>9} "
                f"{_ms(sync, 0.99):>9} {_ms(latency, 0.5):>12} {_ms(latency, 0.99):>12} "
                f"{_ms(cpu, 0.5):>13} {goal:6.1f}"
            )
        print()
        for label in _writes(plane, 0):
            fast = statistics.median(r[1] for r in results[(label, "incremental")])
            slow = statistics.median(r[1] for r in results[(label, "full")])
            print(f"{label:34} full / incremental publish time: {slow / fast:6.1f}x")
        print()
        print(
            f"goal: a change affecting k proxies <= 1 ms + 0.2 ms x k; "
            f"full rebuild of {PROXIES} <= 100 ms"
        )
        # The rounds end in full mode: patch once more incrementally, then compare.
        await probe.write(_writes(plane, ROUNDS)["endpoints of a target (vn-0005)"])
        print(_verify(plane))
        await _startup(plane, probe)


def _verify(plane: app.ControlPlane) -> str:
    """Whether every proxy's snapshot is what a from-scratch translation (no reuse) gives."""
    mesh = snapshots.mesh_snapshot(plane.store, MESH)
    assert mesh is not None
    encoder = ResourceEncoder()
    differ = []
    for index in range(PROXIES):
        identity = NodeIdentity(mesh=MESH, kind=kinds.VIRTUAL_NODE.key, name=f"vn-{index:04d}")
        built = building.build(mesh, identity)
        resources = (
            *built.listeners,
            *built.route_configurations,
            *built.clusters,
            *built.cluster_load_assignments,
        )
        cached = plane.ads.cache.snapshot(_key(index))
        if cached is None or cached.version != Snapshot.of(resources, encoder).version:
            differ.append(index)
    if differ:
        return f"check: {len(differ)} of {PROXIES} snapshots differ from a full translation"
    return f"check: all {PROXIES} snapshots equal a from-scratch translation (version by version)"


async def _startup(plane: app.ControlPlane, probe: Probe) -> None:
    """Every other node connects at once: time until all 2,000 snapshots are published."""
    probe.spent = probe.cpu = 0.0
    began = time.perf_counter()
    for index in range(PROXIES, NODES):
        plane.ads.status.record_connected(_key(index), base_pb2.Node(id=_key(index)))
    revision = plane.store.revision()
    published = plane.sync.published
    async with asyncio.timeout(600):
        while not all(
            (p := published.get(_key(i))) is not None and p.revision >= revision
            for i in range(NODES)
        ):
            await asyncio.sleep(0.005)
    took = time.perf_counter() - began
    print(
        f"start-up: {NODES - PROXIES} more proxies connect at once -> all {NODES} published in "
        f"{took * 1000:.0f} ms (sync CPU {probe.cpu * 1000:.0f} ms; goal 2000 ms for 2,000)"
    )


def main() -> None:
    """Build the mesh in a temporary data dir and print the side-by-side table."""
    with tempfile.TemporaryDirectory(prefix="meshplane-sync-scale-") as tmp:
        asyncio.run(_run(Path(tmp) / "data"))


if __name__ == "__main__":
    main()
