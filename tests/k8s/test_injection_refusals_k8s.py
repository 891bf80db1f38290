"""Pods the injector refuses, as kubectl shows it: the refusal says what to fix (real API server).

Each refusal comes from meshplane's pod webhook called by the real kube-apiserver; the
text asserted is what reaches kubectl's stderr, and the pod is not stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import cluster as k8s
from . import replicas

DEADLINE = 60.0
DENIED = 'admission webhook "mpod.appmesh.k8s.aws" denied the request: '


@pytest.fixture
def replica(cluster: k8s.Cluster, tmp_path: Path) -> Iterator[replicas.Replica]:
    """One replica with its webhooks registered (classic sidecars, no xDS identity)."""
    replicas.install_crds(cluster)
    running = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        yield running
    finally:
        running.stop()


def _pod(namespace: str, name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/echo:1"}]},
    }


def _node(namespace: str, name: str, app: str, backend: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "awsName": name,
        "podSelector": {"matchLabels": {"app": app}},
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": f"{name}.{namespace}.svc"}},
    }
    if backend is not None:
        spec["backends"] = [{"virtualService": {"virtualServiceRef": {"name": backend}}}]
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _create(cluster: k8s.Cluster, pod: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["create", "-f", "-"] + (["--dry-run=server", "-o", "json"] if dry_run else [])
    return cluster.kubectl(*args, stdin=json.dumps(pod), check=False)


def _refusal(cluster: k8s.Cluster, pod: dict[str, Any], expected: str) -> str:
    """Create ``pod`` for real once a dry run shows ``expected`` (meshplane's catalog has
    caught up with the labels and objects the test just wrote); kubectl's stderr."""

    def refused_so() -> bool:
        return expected in _create(cluster, pod, dry_run=True).stderr

    k8s.poll(refused_so, DEADLINE, f"the pod refused with: {expected}")
    done = _create(cluster, pod)
    assert done.returncode == 1
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    missing = cluster.kubectl("get", "pod", name, "-n", namespace, check=False)
    assert "NotFound" in missing.stderr
    return str(done.stderr)


def _label(cluster: k8s.Cluster, namespace: str, mesh: str) -> None:
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        f"mesh={mesh}",
        "appmesh.k8s.aws/sidecarInjectorWebhook=enabled",
    )


def test_a_namespace_labelled_for_a_mesh_that_does_not_exist_refuses_pods(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """mesh=<missing>: kubectl shows the label, the missing mesh and the fix; nothing stored."""
    del replica
    mesh = f"ghost-{namespace}"
    _label(cluster, namespace, mesh)
    cluster.apply(_node(namespace, "vn-web", "web"))
    expected = (
        f"failed to find mesh {mesh}: namespace {namespace} is labelled mesh={mesh}, but no "
        f"Mesh {mesh} exists and no Mesh's namespaceSelector selects the namespace; create "
        f"Mesh {mesh} with namespaceSelector.matchLabels {{mesh: {mesh}}}, or correct the "
        "namespace's mesh label"
    )
    stderr = _refusal(cluster, _pod(namespace, "web-1", "web"), expected)
    assert f"{DENIED}{expected}" in stderr


def _mesh(cluster: k8s.Cluster, namespace: str) -> str:
    mesh = f"mesh-{namespace}"
    _label(cluster, namespace, mesh)
    cluster.apply(
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "Mesh",
            "metadata": {"name": mesh},
            "spec": {"namespaceSelector": {"matchLabels": {"mesh": mesh}}},
        }
    )
    return mesh


def _condition(cluster: k8s.Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = cluster.kubectl_json("get", "virtualnode", name, "-n", namespace)
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "VirtualNodeActive"), None)


def test_a_node_that_is_not_active_refuses_its_pod_until_fixed(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """A missing backend: refused quoting the condition; once the backend exists: injected."""
    del replica
    _mesh(cluster, namespace)
    cluster.apply(_node(namespace, "vn-web", "web", backend="vs-missing"))
    k8s.poll(
        lambda: (_condition(cluster, namespace, "vn-web") or {}).get("status") == "False",
        DEADLINE,
        "vn-web not Active",
    )
    condition = _condition(cluster, namespace, "vn-web")
    assert condition is not None
    assert (condition["reason"], condition["message"]) == (
        "Waiting",
        f"VirtualService {namespace}/vs-missing not found",
    )
    expected = (
        f"VirtualNode {namespace}/vn-web selects this pod but is not Active "
        f"(VirtualNodeActive=False, Waiting: VirtualService {namespace}/vs-missing not found); "
        "its Envoy would get no configuration. Fix what the condition says (kubectl describe "
        f"virtualnode vn-web -n {namespace}), then create the pod again"
    )
    stderr = _refusal(cluster, _pod(namespace, "web-1", "web"), expected)
    assert f"{DENIED}{expected}" in stderr

    cluster.apply(
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "VirtualService",
            "metadata": {"name": "vs-missing", "namespace": namespace},
            "spec": {"awsName": f"vs-missing.{namespace}.svc.cluster.local"},
        }
    )
    k8s.poll(
        lambda: (_condition(cluster, namespace, "vn-web") or {}).get("status") == "True",
        DEADLINE,
        "vn-web Active",
    )
    pod = _pod(namespace, "web-1", "web")
    k8s.poll(lambda: _create(cluster, pod, dry_run=True).returncode == 0, DEADLINE, "admitted")
    cluster.apply(pod)
    stored = cluster.kubectl_json("get", "pod", "web-1", "-n", namespace)
    assert [c["name"] for c in stored["spec"]["containers"]] == ["app", "envoy"]
    assert [c["name"] for c in stored["spec"]["initContainers"]] == ["proxyinit"]


def test_two_nodes_selecting_one_pod_are_named_in_the_refusal(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """Two VirtualNodes with one podSelector: the controller's words, both names, the fix."""
    del replica
    _mesh(cluster, namespace)
    cluster.apply(_node(namespace, "vn-a", "web"), _node(namespace, "vn-b", "web"))
    expected = (
        f"found multiple matching VirtualNodes for pod: VirtualNodes {namespace}/vn-a, "
        f"{namespace}/vn-b all select its labels app=web; make their podSelectors select "
        "disjoint pods (or change the pod's labels)"
    )
    stderr = _refusal(cluster, _pod(namespace, "web-1", "web"), expected)
    assert f"{DENIED}{expected}" in stderr
