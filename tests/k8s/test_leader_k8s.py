"""Two replicas, one Lease: the leader is killed and the other takes over status writing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import cluster as k8s
from . import replicas

DEADLINE = 60.0
PREFIX = "arn:aws:appmesh:us-west-2:123456789012:mesh/ha"


def _identity(replica: replicas.Replica) -> str:
    found = re.search(r"lease:\s+default/meshplane-leader as (\S+)", replica.log.read_text())
    return found.group(1) if found else ""


def _lease(cluster: k8s.Cluster) -> dict[str, Any]:
    spec: dict[str, Any] = cluster.kubectl_json(
        "get", "lease", "meshplane-leader", "-n", "default"
    )["spec"]
    return spec


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": "ha"},
        "spec": {
            "podSelector": {"matchLabels": {"app": name}},
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": name}},
        },
    }


def _arn(cluster: k8s.Cluster, name: str) -> str:
    found = cluster.kubectl(
        "get",
        "virtualnode",
        name,
        "-n",
        "ha",
        "-o",
        "jsonpath={.status.virtualNodeARN}",
        check=False,
    )
    return found.stdout if found.returncode == 0 else ""


def test_a_killed_leader_is_replaced_and_no_status_is_lost(
    cluster: k8s.Cluster, tmp_path: Path
) -> None:
    """After SIGKILL of the leader, the follower takes the Lease and writes the pending status."""
    replicas.install_crds(cluster)
    first = replicas.Replica(cluster, tmp_path / "a", register_webhooks=False)
    second: replicas.Replica | None = None
    try:
        k8s.poll(lambda: _identity(first), DEADLINE, "the first replica's banner")
        k8s.poll(
            lambda: _lease(cluster).get("holderIdentity") == _identity(first),
            DEADLINE,
            "the first replica to lead",
        )
        second = replicas.Replica(cluster, tmp_path / "b", register_webhooks=False)
        k8s.poll(lambda: _identity(second), DEADLINE, "the second replica's banner")
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "ha", "labels": {"mesh": "ha"}},
            },
            {
                "apiVersion": "appmesh.k8s.aws/v1beta2",
                "kind": "Mesh",
                "metadata": {"name": "ha"},
                "spec": {"namespaceSelector": {"matchLabels": {"mesh": "ha"}}},
            },
            _node("vn-before"),
        )
        k8s.poll(lambda: _arn(cluster, "vn-before"), DEADLINE, "the leader's status write")
        before = _lease(cluster)
        assert before["holderIdentity"] == _identity(first)

        first.kill()
        cluster.apply(_node("vn-after"))
        arn = k8s.poll(lambda: _arn(cluster, "vn-after"), DEADLINE, "the new leader's write")
        assert arn == f"{PREFIX}/virtualNode/vn-after_ha"
        lease = _lease(cluster)
        assert lease["holderIdentity"] == _identity(second)
        assert lease["leaseTransitions"] == before["leaseTransitions"] + 1
        replicas.delete_all(cluster)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        replicas.delete_all(cluster)
        cluster.kubectl("delete", "namespace", "ha", "--ignore-not-found", "--wait=false")
