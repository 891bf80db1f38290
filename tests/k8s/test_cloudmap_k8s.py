"""Cloud Map on the real API server: Ready pods a Cloud Map node selects are its callers' EDS.

`meshplane k8s` watches Pods. Two blue pods and a red one are created (no kubelet runs: the
test patches each Pod's status with a pod IP and the Ready conditions, as a kubelet would).
A real Envoy dials the replica as the front node; its EDS, read through proxy-config, holds
pod IP:listener port per pod: blue's two for colorapp-blue, all three for colorapp-all (same
Cloud Map service, no attributes, no pods of its own). A pod turned not-Ready and a deleted
pod leave it. The Cloud Map node carries the appmesh-controller's aws-cloudmap-resources
finalizer.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshplane.k8s import controlling

from . import cluster as k8s
from . import replicas

DEADLINE = 60.0


@pytest.fixture
def replica(cluster: k8s.Cluster, tmp_path: Path) -> Iterator[replicas.Replica]:
    """One `meshplane k8s` replica (no webhooks: the controller designates meshes itself)."""
    replicas.install_crds(cluster)
    running = replicas.Replica(cluster, tmp_path / "replica", register_webhooks=False)
    try:
        yield running
    finally:
        running.stop()


def _node(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}], **spec},
    }


def _cloud_map(color: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"namespaceName": "demo.local", "serviceName": "colorapp"}
    if color is not None:
        found["attributes"] = [{"key": "color", "value": color}]
    return {"awsCloudMap": found}


def _service(namespace: str, name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "awsName": f"{name}.{namespace}",
            "provider": {"virtualNode": {"virtualNodeRef": {"name": node}}},
        },
    }


def _pod(namespace: str, name: str, color: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "colorapp", "color": color},
        },
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/colorapp:1"}]},
    }


def _status(cluster: k8s.Cluster, namespace: str, name: str, ip: str, ready: bool) -> None:
    """What a kubelet would write: the pod IP and its Ready/ContainersReady conditions."""
    value = "True" if ready else "False"
    status = {
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "phase": "Running",
        "conditions": [
            {"type": "ContainersReady", "status": value},
            {"type": "Ready", "status": value},
        ],
    }
    cluster.kubectl(
        "patch",
        "pod",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _eds(replica: replicas.Replica, node_id: str) -> dict[str, list[str]] | None:
    """The front proxy's EDS by cluster (None until it is connected)."""
    keys = [p["key"] for p in replica.proxies() if p["nodeId"] == node_id]
    if not keys:
        return None
    query = urllib.parse.urlencode({"key": keys[0]})
    with urllib.request.urlopen(f"{replica.url}/meshplane/v1/proxies/config?{query}") as reply:
        config = json.loads(reply.read())
    return {item["cluster"]: sorted(item["addresses"]) for item in config["endpoints"]}


def test_ready_pods_are_the_cloud_map_nodes_endpoints(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str, tmp_path: Path
) -> None:
    """EDS follows the pods: Ready ones in, by attributes; not-Ready and deleted ones out."""
    mesh = f"cm-{namespace}"
    cluster.kubectl("label", "namespace", namespace, f"mesh={mesh}")
    cluster.apply(
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "Mesh",
            "metadata": {"name": mesh},
            "spec": {"namespaceSelector": {"matchLabels": {"mesh": mesh}}},
        },
        _node(
            namespace,
            "colorapp-blue",
            podSelector={"matchLabels": {"color": "blue"}},
            serviceDiscovery=_cloud_map("blue"),
        ),
        _node(
            namespace,
            "colorapp-red",
            podSelector={"matchLabels": {"color": "red"}},
            serviceDiscovery=_cloud_map("red"),
        ),
        _node(namespace, "colorapp-all", serviceDiscovery=_cloud_map(None)),
        _service(namespace, "blue", "colorapp-blue"),
        _service(namespace, "all", "colorapp-all"),
        _node(
            namespace,
            "front",
            serviceDiscovery={"dns": {"hostname": "front"}},
            backends=[
                {"virtualService": {"virtualServiceRef": {"name": "blue"}}},
                {"virtualService": {"virtualServiceRef": {"name": "all"}}},
            ],
        ),
        _pod(namespace, "blue-1", "blue"),
        _pod(namespace, "blue-2", "blue"),
        _pod(namespace, "red-1", "red"),
    )
    for name, ip in (("blue-1", "10.9.0.11"), ("blue-2", "10.9.0.12"), ("red-1", "10.9.0.21")):
        _status(cluster, namespace, name, ip, ready=True)
    node_id = f"mesh/{mesh}/virtualNode/front_{namespace}"
    envoy = replicas.Envoy(replica, node_id, tmp_path)
    try:
        blue = f"cds_egress_{mesh}_colorapp-blue_{namespace}_http_8080"
        every = f"cds_egress_{mesh}_colorapp-all_{namespace}_http_8080"

        def eds_is(wanted: dict[str, list[str]]) -> bool:
            return _eds(replica, node_id) == wanted

        k8s.poll(
            lambda: eds_is(
                {
                    blue: ["10.9.0.11:8080", "10.9.0.12:8080"],
                    every: ["10.9.0.11:8080", "10.9.0.12:8080", "10.9.0.21:8080"],
                }
            ),
            DEADLINE,
            f"the front's EDS to hold the Ready pods (log: {replica.log})",
        )
        _status(cluster, namespace, "blue-1", "10.9.0.11", ready=False)
        cluster.kubectl("delete", "pod", "red-1", "-n", namespace, "--grace-period=0", "--force")
        k8s.poll(
            lambda: eds_is({blue: ["10.9.0.12:8080"], every: ["10.9.0.12:8080"]}),
            DEADLINE,
            "the not-Ready and the deleted pod to leave the EDS",
        )
    finally:
        envoy.process.kill()
        envoy.process.wait(timeout=30)

    def finalizers() -> list[str]:
        found = cluster.kubectl_json("get", "virtualnode", "colorapp-blue", "-n", namespace)
        return list(found["metadata"].get("finalizers") or [])

    k8s.poll(finalizers, DEADLINE, "the leader to write colorapp-blue's finalizers")
    assert finalizers() == [controlling.RESOURCES, controlling.CLOUDMAP]
