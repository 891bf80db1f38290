"""Kubernetes mode's reconcile pass: start-up sync of ~1,000 CRs, then one weight change.

No API server: the objects are fed to :class:`meshplane.k8s.controlling.Controller`
as the watches would (one list per kind), over a real SQLite store and domain
service, so the numbers are the replica's own work between a watch event and
the store write that the sync stage turns into xDS:

* ``first sync`` — the initial pass over 10 meshes x (20 x the walkthrough's
  3 VirtualNodes + 1 VirtualRouter + 1 VirtualService) = 1,010 CRs, twins
  created; then the second pass that confirms nothing changed;
* ``weight change`` — one VirtualRouter's route set to 50/50 (a MODIFIED
  event), the pass that updates its route twin: p50/p99 over the rounds;
* the process's peak RSS.

Run: ``python -m bench.k8s_controller``.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from meshplane.k8s.controlling import Controller
from meshplane.kit.clock import system_clock, uuid_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

MESHES = 10
GROUPS = 20
ROUNDS = 30


def _meta(name: str, namespace: str = "", generation: int = 1) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "uid": f"{namespace}-{name}-uid",
        "generation": generation,
        "resourceVersion": "1",
    }
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def _node(ns: str, name: str, backend: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "awsName": name,
        "meshRef": {"name": ns, "uid": f"-{ns}-uid"},
        "podSelector": {"matchLabels": {"app": name}},
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": name}},
    }
    if backend:
        spec["backends"] = [{"virtualService": {"virtualServiceRef": {"name": backend}}}]
    return {"metadata": _meta(name, ns), "spec": spec}


def _router(ns: str, group: int, weights: tuple[int, int], generation: int = 1) -> dict[str, Any]:
    targets = [
        {"virtualNodeRef": {"name": f"vn-{group}-blue"}, "weight": weights[0]},
        {"virtualNodeRef": {"name": f"vn-{group}-green"}, "weight": weights[1]},
    ]
    return {
        "metadata": _meta(f"vr-{group}", ns, generation),
        "spec": {
            "awsName": f"vr-{group}",
            "meshRef": {"name": ns, "uid": f"-{ns}-uid"},
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "routes": [
                {
                    "name": f"route-{group}",
                    "httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}},
                }
            ],
        },
    }


def _objects() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {
        "Namespace": [],
        "Mesh": [],
        "VirtualNode": [],
        "VirtualRouter": [],
        "VirtualService": [],
        "VirtualGateway": [],
        "GatewayRoute": [],
        "BackendGroup": [],
    }
    for m in range(MESHES):
        ns = f"mesh{m}"
        found["Namespace"].append({"metadata": {**_meta(ns), "labels": {"mesh": ns}}})
        found["Mesh"].append(
            {
                "metadata": _meta(ns),
                "spec": {"awsName": ns, "namespaceSelector": {"matchLabels": {"mesh": ns}}},
            }
        )
        for g in range(GROUPS):
            found["VirtualNode"] += [
                _node(ns, f"vn-{g}-blue", None),
                _node(ns, f"vn-{g}-green", None),
                _node(ns, f"vn-{g}-front", f"vs-{g}"),
            ]
            found["VirtualRouter"].append(_router(ns, g, (100, 0)))
            found["VirtualService"].append(
                {
                    "metadata": _meta(f"vs-{g}", ns),
                    "spec": {
                        "awsName": f"vs-{g}.{ns}.svc.cluster.local",
                        "meshRef": {"name": ns, "uid": f"-{ns}-uid"},
                        "provider": {"virtualRouter": {"virtualRouterRef": {"name": f"vr-{g}"}}},
                    },
                }
            )
    return found


def _echo(controller: Controller, objects: dict[str, list[dict[str, Any]]], plan: Any) -> None:
    """The leader's status writes coming back through the watch, as MODIFIED events."""
    by_key = {
        (kind, body["metadata"].get("namespace", ""), body["metadata"]["name"]): body
        for kind, bodies in objects.items()
        for body in bodies
    }
    for write in plan.statuses:
        body = by_key[write.obj.key]
        status = {**body.get("status", {}), **write.patch}
        body["status"] = {k: v for k, v in status.items() if v is not None}
        controller.observe(write.obj.kind, "MODIFIED", body)


def main() -> None:
    """Print the first-sync time, the per-change pass time and the peak RSS."""
    objects = _objects()
    count = sum(len(v) for k, v in objects.items() if k != "Namespace")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp), system_clock)
        service = MeshService(
            store, Account("us-west-2", "123456789012"), Quotas(), system_clock, uuid_ids
        )
        controller = Controller(service, system_clock)
        start = time.perf_counter()
        for kind, bodies in objects.items():
            controller.relist(kind, bodies)
        plan = controller.converge()
        first = time.perf_counter() - start
        _echo(controller, objects, plan)
        start = time.perf_counter()
        controller.converge()
        again = time.perf_counter() - start
        samples = []
        for round_ in range(ROUNDS):
            weights = (50, 50) if round_ % 2 == 0 else (100, 0)
            body = _router("mesh3", 7, weights, generation=round_ + 2)
            # The API server keeps the status across a spec change; the watch reports both.
            body["status"] = objects["VirtualRouter"][3 * GROUPS + 7].get("status", {})
            objects["VirtualRouter"][3 * GROUPS + 7] = body
            start = time.perf_counter()
            controller.observe("VirtualRouter", "MODIFIED", body)
            changed = controller.converge()
            samples.append(time.perf_counter() - start)
            _echo(controller, objects, changed)
        route = service.describe(kinds.ROUTE, "mesh3", "route-7", parent="vr-7")
        store.close()
    samples.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"k8s controller: {count} CRs in {MESHES} meshes")
    print(f"  first sync (twins created):    {first:.3f} s, {len(plan.statuses)} status writes")
    print(f"  second pass (nothing changed): {again:.3f} s")
    print(
        f"  weight change pass: p50 {statistics.median(samples) * 1000:.1f} ms, "
        f"p99 {samples[int(len(samples) * 0.99) - 1] * 1000:.1f} ms over {ROUNDS} rounds "
        f"(route version {route['metadata']['version']})"
    )
    print(f"  peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
