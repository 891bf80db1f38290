"""Kubernetes mode on the real control plane, measured (a script, not a test).

Run from ``tests/``: ``../.venv/bin/python -m k8s.measure`` (after ``make k8s-tools``).

1. 1,010 CRs (10 meshes x 20 x the walkthrough's 3 VirtualNodes + router + service) are
   applied while no meshplane runs; then ``meshplane k8s`` starts: time to its first sync
   (from its log) and until every CR's status carries its ARN; the replica's RSS.
2. A real Envoy connects as one frontend; 20 times a ``kubectl apply`` flips its router's
   weights: time from starting ``kubectl apply`` to Envoy's config showing the new weights
   (and from kubectl returning), p50/p99.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from . import cluster as k8s
from . import replicas

MESHES = 10
GROUPS = 20
ROUNDS = 20


def _objects(ns: str) -> list[dict[str, Any]]:
    api = "appmesh.k8s.aws/v1beta2"
    found: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"mesh": ns}}},
        {
            "apiVersion": api,
            "kind": "Mesh",
            "metadata": {"name": ns},
            "spec": {"awsName": ns, "namespaceSelector": {"matchLabels": {"mesh": ns}}},
        },
    ]
    for g in range(GROUPS):
        for colour in ("blue", "green", "front"):
            spec: dict[str, Any] = {
                "awsName": f"vn-{g}-{colour}",
                "podSelector": {"matchLabels": {"app": f"{g}-{colour}"}},
                "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                "serviceDiscovery": {"dns": {"hostname": f"vn-{g}-{colour}"}},
            }
            if colour == "front":
                spec["backends"] = [{"virtualService": {"virtualServiceRef": {"name": f"vs-{g}"}}}]
            found.append(
                {
                    "apiVersion": api,
                    "kind": "VirtualNode",
                    "metadata": {"name": f"vn-{g}-{colour}", "namespace": ns},
                    "spec": spec,
                }
            )
        found.append(_router(ns, g, (100, 0)))
        found.append(
            {
                "apiVersion": api,
                "kind": "VirtualService",
                "metadata": {"name": f"vs-{g}", "namespace": ns},
                "spec": {
                    "awsName": f"vs-{g}.{ns}.svc.cluster.local",
                    "provider": {"virtualRouter": {"virtualRouterRef": {"name": f"vr-{g}"}}},
                },
            }
        )
    return found


def _router(ns: str, g: int, weights: tuple[int, int]) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {"name": f"vr-{g}", "namespace": ns},
        "spec": {
            "awsName": f"vr-{g}",
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "routes": [
                {
                    "name": f"route-{g}",
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "action": {
                            "weightedTargets": [
                                {"virtualNodeRef": {"name": f"vn-{g}-blue"}, "weight": weights[0]},
                                {"virtualNodeRef": {"name": f"vn-{g}-green"}, "weight": weights[1]},
                            ]
                        },
                    },
                }
            ],
        },
    }


def _with_arn(cluster: k8s.Cluster) -> int:
    total = 0
    for plural in ("meshes", "virtualnodes", "virtualrouters", "virtualservices"):
        items = cluster.kubectl_json("get", plural, "-A")["items"]
        total += sum(1 for i in items if any(k.endswith("ARN") for k in i.get("status") or {}))
    return total


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else 0.0


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    """Print start-up sync and apply-to-Envoy latencies measured on the real control plane."""
    with tempfile.TemporaryDirectory() as tmp, k8s.running(k8s.tools_dir(), Path(tmp)) as cluster:
        replicas.install_crds(cluster)
        count = 0
        for m in range(MESHES):
            documents = _objects(f"mesh{m}")
            count += len(documents) - 1
            cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
        start = time.monotonic()
        replica = replicas.Replica(cluster, Path(tmp) / "replica", register_webhooks=False)
        try:
            k8s.poll(lambda: "first sync" in replica.log.read_text(), 300, "first sync")
            line = next(x for x in replica.log.read_text().splitlines() if "first sync" in x)
            k8s.poll(lambda: _with_arn(cluster) == count, 600, "every status written")
            written = time.monotonic() - start
            print(f"start-up: {count} CRs; {line.split(' INFO ')[-1]}")
            print(f"  process start -> every CR's status has its ARN: {written:.1f} s")
            print(f"  replica RSS: {_rss_mb(replica.process.pid):.0f} MB")
            envoy = replicas.Envoy(replica, "mesh/mesh3/virtualNode/vn-7-front", Path(tmp))
            try:
                prefix = "cds_egress_mesh3_vn-7"

                def expected(w: tuple[int, int]) -> list[list[tuple[str, int]]]:
                    return [[(f"{prefix}-blue_http_80", w[0]), (f"{prefix}-green_http_80", w[1])]]

                k8s.poll(lambda: envoy.weights() == expected((100, 0)), 120, "Envoy 100/0")
                total, after_kubectl = [], []
                for round_ in range(ROUNDS):
                    weights = (50, 50) if round_ % 2 == 0 else (100, 0)
                    body = yaml.safe_dump(_router("mesh3", 7, weights))
                    began = time.monotonic()
                    cluster.kubectl("apply", "-f", "-", stdin=body)
                    returned = time.monotonic()
                    k8s.poll(lambda w=weights: envoy.weights() == expected(w), 60, "weights")
                    seen = time.monotonic()
                    total.append(seen - began)
                    after_kubectl.append(seen - returned)
                print(
                    f"kubectl apply -> Envoy has the weights: p50 {_pct(total, 0.5):.0f} ms, "
                    f"p99 {_pct(total, 0.99):.0f} ms; after kubectl returned: "
                    f"p50 {_pct(after_kubectl, 0.5):.0f} ms, "
                    f"p99 {_pct(after_kubectl, 0.99):.0f} ms ({ROUNDS} rounds, "
                    f"mean {statistics.mean(total) * 1000:.0f} ms)"
                )
            finally:
                envoy.stop()
        finally:
            replica.stop()


if __name__ == "__main__":
    main()
