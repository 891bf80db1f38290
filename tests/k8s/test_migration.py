"""Replacing the appmesh-controller: its CRs are adopted as they are, and still delete in order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import cluster as k8s
from . import replicas

PREFIX = "arn:aws:appmesh:us-west-2:123456789012:mesh/legacy"
MEMBERS = "finalizers.appmesh.k8s.aws/mesh-members"
RESOURCES = "finalizers.appmesh.k8s.aws/aws-appmesh-resources"
LAST_FLIP = "2026-01-01T00:00:00Z"
DEADLINE = 60.0


def _old_status(kind: str, arn: str) -> dict[str, Any]:
    """What the appmesh-controller wrote: the ARN, one Active condition, observedGeneration."""
    field = f"{kind[0].lower()}{kind[1:]}ARN"
    return {
        field: arn,
        "conditions": [
            {"type": f"{kind}Active", "status": "True", "lastTransitionTime": LAST_FLIP}
        ],
        "observedGeneration": 1,
    }


def _create_as_the_old_controller_left_it(
    cluster: k8s.Cluster, body: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(body))
    kind, name = body["kind"].lower(), body["metadata"]["name"]
    scope = ["-n", body["metadata"]["namespace"]] if "namespace" in body["metadata"] else []
    cluster.kubectl(
        "patch",
        kind,
        name,
        *scope,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    found: dict[str, Any] = cluster.kubectl_json("get", kind, name, *scope)
    return found


@pytest.fixture
def legacy(cluster: k8s.Cluster) -> Iterator[dict[str, dict[str, Any]]]:
    """A mesh `legacy` with a VirtualNode, written as the appmesh-controller left them."""
    replicas.install_crds(cluster)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "legacy", "labels": {"mesh": "legacy"}},
        }
    )
    mesh = _create_as_the_old_controller_left_it(
        cluster,
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "Mesh",
            "metadata": {"name": "legacy", "finalizers": [MEMBERS, RESOURCES]},
            "spec": {"awsName": "legacy", "namespaceSelector": {"matchLabels": {"mesh": "legacy"}}},
        },
        _old_status("Mesh", PREFIX),
    )
    node = _create_as_the_old_controller_left_it(
        cluster,
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "VirtualNode",
            "metadata": {"name": "vn-old", "namespace": "legacy", "finalizers": [RESOURCES]},
            "spec": {
                "awsName": "vn-old_legacy",
                "meshRef": {"name": "legacy", "uid": mesh["metadata"]["uid"]},
                "podSelector": {"matchLabels": {"app": "old"}},
                "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
                "serviceDiscovery": {"dns": {"hostname": "old.legacy.svc.cluster.local"}},
            },
        },
        _old_status("VirtualNode", f"{PREFIX}/virtualNode/vn-old_legacy"),
    )
    yield {"mesh": mesh, "node": node}
    replicas.delete_all(cluster)  # strips what no replica finalized
    cluster.kubectl("delete", "namespace", "legacy", "--ignore-not-found", "--wait=false")


def test_the_old_controllers_objects_are_adopted_and_delete_in_order(
    cluster: k8s.Cluster, legacy: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Same ARNs, status and finalizers untouched; the mesh waits for its node, then both go."""
    replica = replicas.Replica(cluster, tmp_path / "replica")
    try:

        def twinned() -> Any:
            done = replicas.aws_run(
                replica,
                tmp_path,
                "describe-virtual-node",
                "--mesh-name",
                "legacy",
                "--virtual-node-name",
                "vn-old_legacy",
            )
            return json.loads(done.stdout)["virtualNode"] if done.returncode == 0 else None

        twin = k8s.poll(twinned, DEADLINE, "the adopted node's twin")
        assert twin["metadata"]["arn"] == f"{PREFIX}/virtualNode/vn-old_legacy"
        assert twin["status"] == {"status": "ACTIVE"}
        meshes = replicas.aws(replica, tmp_path, "list-meshes")["meshes"]
        assert [(m["meshName"], m["arn"]) for m in meshes] == [("legacy", PREFIX)]

        node = cluster.kubectl_json("get", "virtualnode", "vn-old", "-n", "legacy")
        mesh = cluster.kubectl_json("get", "mesh", "legacy")
        assert node["status"] == legacy["node"]["status"]
        assert node["metadata"]["finalizers"] == [RESOURCES]
        assert mesh["status"] == legacy["mesh"]["status"]
        assert mesh["metadata"]["finalizers"] == [MEMBERS, RESOURCES]

        cluster.kubectl("delete", "mesh", "legacy", "--wait=false")

        def blocked() -> Any:
            return cluster.kubectl_json(
                "get",
                "events",
                "-n",
                "default",
                "--field-selector",
                "involvedObject.name=legacy,reason=PendingMembersDeletion",
            )["items"]

        (event,) = k8s.poll(blocked, DEADLINE, "the PendingMembersDeletion event")
        assert event["message"] == (
            "objects belonging to this mesh exist, delete them to proceed: virtualNode: 1"
        )
        assert cluster.kubectl_json("get", "mesh", "legacy")["metadata"]["finalizers"] == [
            MEMBERS,
            RESOURCES,
        ]

        cluster.kubectl("delete", "virtualnode", "vn-old", "-n", "legacy", "--timeout=60s")

        def mesh_gone() -> bool:
            done = cluster.kubectl("get", "mesh", "legacy", check=False)
            return done.returncode != 0 and "NotFound" in done.stderr

        k8s.poll(mesh_gone, DEADLINE, "the mesh to be finalized")
        assert replicas.aws(replica, tmp_path, "list-meshes")["meshes"] == []
    finally:
        replica.stop()
