"""The API server restarting under ``meshplane k8s``: its watches return, it keeps reconciling.

The test owns its cluster (the session's is shared, and must not go away under other tests), so
it can stop kube-apiserver alone and start it again on the same port; etcd keeps the objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from . import cluster as k8s
from . import replicas

DEADLINE = 60.0
MESH = "restart"
ROUTER = "vr-backend"
ROUTE = "vrr-backend"


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[k8s.Cluster]:
    """A control plane of this test's own, stopped at its end."""
    tools = k8s.tools_dir()
    if missing := k8s.missing_tools(tools):
        reason = f"Kubernetes test binaries {missing} not in {tools}: run `make k8s-tools`"
        if os.environ.get("MESHPLANE_K8S_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with k8s.running(tools, tmp_path / "k8s") as running:
        yield running


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": MESH},
        "spec": {
            "awsName": name,
            "podSelector": {"matchLabels": {"app": name}},
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": name}},
        },
    }


def _router(blue: int, green: int) -> dict[str, Any]:
    targets = [
        {"virtualNodeRef": {"name": "vn-blue"}, "weight": blue},
        {"virtualNodeRef": {"name": "vn-green"}, "weight": green},
    ]
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {"name": ROUTER, "namespace": MESH},
        "spec": {
            "awsName": ROUTER,
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "routes": [
                {
                    "name": ROUTE,
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "action": {"weightedTargets": targets},
                    },
                }
            ],
        },
    }


def _active(cluster: k8s.Cluster, resource: str, name: str, generation: int) -> Any:
    """The object once its ``<Kind>Active`` condition is True for ``generation``, else None."""
    scope = ["-n", MESH] if resource != "mesh" else []
    item = cluster.kubectl_json("get", resource, name, *scope)
    status = item.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if c["type"].endswith("Active")]
    fresh = item["metadata"]["generation"] == generation == status.get("observedGeneration")
    return item if fresh and [c["status"] for c in conditions] == ["True"] else None


def test_a_restarted_api_server_is_survived(own_cluster: k8s.Cluster, tmp_path: Path) -> None:
    """Stop and start kube-apiserver; a router weight change made afterwards reaches the twin."""
    cluster = own_cluster
    replicas.install_crds(cluster)
    replica = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": MESH, "labels": {"mesh": MESH}},
            },
            {
                "apiVersion": "appmesh.k8s.aws/v1beta2",
                "kind": "Mesh",
                "metadata": {"name": MESH},
                "spec": {"namespaceSelector": {"matchLabels": {"mesh": MESH}}},
            },
            _node("vn-blue"),
            _node("vn-green"),
            _router(100, 0),
        )
        k8s.poll(lambda: _active(cluster, "mesh", MESH, 1), DEADLINE, "mesh Active")
        for node in ("vn-blue", "vn-green"):
            k8s.poll(partial(_active, cluster, "virtualnode", node, 1), DEADLINE, f"{node} Active")
        k8s.poll(lambda: _active(cluster, "virtualrouter", ROUTER, 1), DEADLINE, "router Active")

        def weights() -> list[tuple[str, int]]:
            route = replicas.aws(
                replica,
                tmp_path,
                "describe-route",
                "--mesh-name",
                MESH,
                "--virtual-router-name",
                ROUTER,
                "--route-name",
                ROUTE,
            )["route"]
            targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
            return [(t["virtualNode"], t["weight"]) for t in targets]

        assert weights() == [("vn-blue", 100), ("vn-green", 0)]

        cluster.restart_apiserver()
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(_router(30, 70)))

        router = k8s.poll(
            lambda: _active(cluster, "virtualrouter", ROUTER, 2),
            DEADLINE,
            f"router Active at generation 2 after the restart (log: {replica.log})",
        )
        assert router["status"]["routeARNs"] == {
            ROUTE: f"arn:aws:appmesh:us-west-2:123456789012:mesh/{MESH}"
            f"/virtualRouter/{ROUTER}/route/{ROUTE}"
        }
        k8s.poll(
            lambda: weights() == [("vn-blue", 30), ("vn-green", 70)],
            DEADLINE,
            "the twin route's new weights",
        )
        assert replica.process.poll() is None, replica.tail()
    finally:
        replicas.delete_all(cluster)
        replica.stop()
