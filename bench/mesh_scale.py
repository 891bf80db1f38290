"""A mesh at ten times App Mesh's quotas: time to create it, time to list it all, server RSS.

2,000 virtual nodes, 2,000 virtual services (500 provided by routers, 1,500 by
nodes), 500 virtual routers with 10 routes each (every route weights two nodes):
9,500 creates through boto3 against a live ``meshplane serve`` whose quotas are
raised with ``MESHPLANE_QUOTA_*``. Then every list is walked page by page. Side by
side: create and describe latency in an empty mesh versus the full one, RSS before
versus after, and the in-process snapshot build the sync stage will do per change.

Run: ``python -m bench.mesh_scale``.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

from bench import serving
from meshplane.kit.clock import system_clock
from meshplane.store.snapshots import mesh_snapshot
from meshplane.store.sqlite import SqliteStore

NODES = 2000
SERVICES = 2000
ROUTERS = 500
ROUTES_PER_ROUTER = 10
WRITERS = 8
SAMPLE = 200
MESH = "scale"
QUOTAS = {
    "MESHPLANE_QUOTA_VIRTUAL_NODES": "2000",
    "MESHPLANE_QUOTA_VIRTUAL_SERVICES": "2000",
    "MESHPLANE_QUOTA_VIRTUAL_ROUTERS": "2000",
    "MESHPLANE_QUOTA_ROUTES": "500",
}


def _node(index: int) -> tuple[str, dict[str, Any]]:
    name = f"vn-{index:04d}"
    return name, {
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": f"{name}.{MESH}.svc.cluster.local"}},
        "backends": [
            {"virtualService": {"virtualServiceName": f"vs-{(index + k) % SERVICES:04d}.local"}}
            for k in (1, 2)
        ],
    }


def _route(router: int, index: int) -> dict[str, Any]:
    a, b = (router * ROUTES_PER_ROUTER + index) % NODES, (router + index + 1) % NODES
    return {
        "priority": index,
        "httpRoute": {
            "match": {"prefix": f"/p{index}"},
            "action": {
                "weightedTargets": [
                    {"virtualNode": f"vn-{a:04d}", "weight": 90},
                    {"virtualNode": f"vn-{b:04d}", "weight": 10},
                ]
            },
        },
    }


def _parallel(server: serving.Server, jobs: list[Callable[[Any], None]]) -> list[float]:
    """Run ``jobs`` on ``WRITERS`` threads, each with its own client; per-job seconds."""
    clients = [server.client() for _ in range(WRITERS)]
    latencies = [0.0] * len(jobs)

    def run(slot: int) -> None:
        client = clients[slot]
        for index in range(slot, len(jobs), WRITERS):
            start = time.perf_counter()
            jobs[index](client)
            latencies[index] = time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(run, slot) for slot in range(WRITERS)]:
            future.result()
    return latencies


def _probe(client: Any, mesh: str, node: str) -> tuple[float, float]:
    """Sequential describe and create medians (ms) in ``mesh``: one client, 100 each."""
    describes, creates = [], []
    for index in range(100):
        start = time.perf_counter()
        client.describe_virtual_node(meshName=mesh, virtualNodeName=node)
        describes.append(time.perf_counter() - start)
        name = f"probe-{index:03d}"
        start = time.perf_counter()
        client.create_virtual_node(meshName=mesh, virtualNodeName=name, spec={})
        creates.append(time.perf_counter() - start)
    for index in range(100):
        client.delete_virtual_node(meshName=mesh, virtualNodeName=f"probe-{index:03d}")
    return serving.median(describes) * 1000, serving.median(creates) * 1000


def _build(server: serving.Server) -> dict[str, tuple[int, float, list[float]]]:
    """Create the whole mesh kind by kind; per kind: count, wall seconds, latencies."""
    phases: dict[str, tuple[int, float, list[float]]] = {}

    def phase(label: str, jobs: list[Callable[[Any], None]]) -> None:
        began = time.perf_counter()
        latencies = _parallel(server, jobs)
        phases[label] = (len(jobs), time.perf_counter() - began, latencies)

    def node_job(index: int) -> Callable[[Any], None]:
        name, spec = _node(index)
        return lambda c: c.create_virtual_node(meshName=MESH, virtualNodeName=name, spec=spec)

    def router_job(index: int) -> Callable[[Any], None]:
        spec = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}
        return lambda c: c.create_virtual_router(
            meshName=MESH, virtualRouterName=f"vr-{index:03d}", spec=spec
        )

    def route_job(router: int, index: int) -> Callable[[Any], None]:
        return lambda c: c.create_route(
            meshName=MESH,
            virtualRouterName=f"vr-{router:03d}",
            routeName=f"rt-{index:02d}",
            spec=_route(router, index),
        )

    def service_job(index: int) -> Callable[[Any], None]:
        if index < ROUTERS:
            spec = {"provider": {"virtualRouter": {"virtualRouterName": f"vr-{index:03d}"}}}
        else:
            spec = {"provider": {"virtualNode": {"virtualNodeName": f"vn-{index % NODES:04d}"}}}
        return lambda c: c.create_virtual_service(
            meshName=MESH, virtualServiceName=f"vs-{index:04d}.local", spec=spec
        )

    phase("virtual nodes", [node_job(i) for i in range(NODES)])
    phase("virtual routers", [router_job(i) for i in range(ROUTERS)])
    phase(
        "routes",
        [route_job(r, i) for r in range(ROUTERS) for i in range(ROUTES_PER_ROUTER)],
    )
    phase("virtual services", [service_job(i) for i in range(SERVICES)])
    return phases


def _list_everything(client: Any) -> tuple[dict[str, int], int, float]:
    """Walk every list of the mesh with paginators; counts, requests, seconds."""
    began = time.perf_counter()
    counts: dict[str, int] = {}
    requests = 0
    for op, key in (
        ("list_virtual_nodes", "virtualNodes"),
        ("list_virtual_services", "virtualServices"),
        ("list_virtual_routers", "virtualRouters"),
    ):
        for page in client.get_paginator(op).paginate(meshName=MESH):
            counts[key] = counts.get(key, 0) + len(page[key])
            requests += 1
    for router in range(ROUTERS):
        page = client.list_routes(meshName=MESH, virtualRouterName=f"vr-{router:03d}")
        counts["routes"] = counts.get("routes", 0) + len(page["routes"])
        requests += 1
    return counts, requests, time.perf_counter() - began


def main() -> None:
    """Build the mesh, list it, and print the figures with their empty-mesh baselines."""
    with serving.running(QUOTAS) as server:
        client = server.client()
        rss_empty = server.rss_mib()
        client.create_mesh(meshName=MESH)
        client.create_mesh(meshName="empty")
        client.create_virtual_node(meshName="empty", virtualNodeName="x", spec={})
        empty_describe, empty_create = _probe(client, "empty", "x")

        began = time.perf_counter()
        phases = _build(server)
        build_seconds = time.perf_counter() - began
        counts, requests, list_seconds = _list_everything(client)
        full_describe, full_create = _probe(client, "empty", "x")
        scale_describe = (
            serving.median(
                [
                    _timed(
                        lambda: client.describe_virtual_node(
                            meshName=MESH, virtualNodeName="vn-1000"
                        )
                    )
                    for _ in range(100)
                ]
            )
            * 1000
        )
        rss_full = server.rss_mib()
        revision = server.revision()
        reader = SqliteStore(server.data_dir, system_clock)
        snapshot_times = [_timed(lambda: mesh_snapshot(reader, MESH)) for _ in range(5)]
        snapshot = mesh_snapshot(reader, MESH)
        reader.close()

    total = sum(n for n, _, _ in phases.values())
    print(f"Mesh at 10x App Mesh's quotas, {WRITERS} boto3 writers, meshplane serve on loopback")
    print(f"{'phase':<18}{'creates':>8}{'seconds':>9}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for label, (count, seconds, latencies) in phases.items():
        print(
            f"{label:<18}{count:>8}{seconds:>9.1f}{count / seconds:>8.0f}"
            f"{serving.median(latencies) * 1000:>9.2f}"
            f"{serving.percentile(latencies, 0.99) * 1000:>9.2f}"
        )
    print(f"{'total':<18}{total:>8}{build_seconds:>9.1f}{total / build_seconds:>8.0f}")
    nodes = phases["virtual nodes"][2]
    early, late = serving.median(nodes[:SAMPLE]), serving.median(nodes[-SAMPLE:])
    print(
        f"node create p50, first {SAMPLE} vs last {SAMPLE}: {early * 1000:.2f} vs "
        f"{late * 1000:.2f} ms ({late / early:.2f}x)"
    )
    print(
        f"list everything: {sum(counts.values())} items "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}) in {requests} requests, "
        f"{list_seconds:.1f} s"
    )
    print(
        f"1 client, describe p50: empty store {empty_describe:.2f} ms, full store "
        f"{full_describe:.2f} ms, node of the big mesh {scale_describe:.2f} ms; "
        f"create p50: {empty_create:.2f} vs {full_create:.2f} ms "
        f"({full_create / empty_create:.2f}x)"
    )
    assert snapshot is not None
    print(
        f"in-process mesh_snapshot of the big mesh (revision {revision}, "
        f"{len(snapshot.virtual_nodes)} nodes, "
        f"{sum(len(r) for r in snapshot.routes.values())} routes): "
        f"p50 {serving.median(snapshot_times) * 1000:.0f} ms"
    )
    print(
        f"server RSS: {rss_empty:.0f} MiB empty, {rss_full:.0f} MiB full "
        f"({rss_full / rss_empty:.1f}x)"
    )


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
