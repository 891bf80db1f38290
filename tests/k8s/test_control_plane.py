"""The test control plane is real: versions, Deployments, rollouts, CRDs and helm."""

from __future__ import annotations

from typing import Any

from . import cluster as k8s

DEADLINE = 60.0


def deployment(name: str, namespace: str) -> dict[str, Any]:
    """A one-replica Deployment; no kubelet runs, so its Pod stays Pending."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/echo:1"}]},
            },
        },
    }


def items(cluster: k8s.Cluster, kind: str, namespace: str) -> list[dict[str, Any]]:
    """The objects of ``kind`` in ``namespace``."""
    found: list[dict[str, Any]] = cluster.kubectl_json("get", kind, "-n", namespace)["items"]
    return found


def test_apiserver_and_kubectl_are_the_pinned_release(cluster: k8s.Cluster) -> None:
    """/version and `kubectl version` report the k8s.io/kubernetes version of tools/k8s/go.mod."""
    pinned = k8s.pinned("k8s.io/kubernetes")
    status, version = cluster.get("/version")
    client = cluster.kubectl_json("version")["clientVersion"]
    assert (status, version["gitVersion"], client["gitVersion"]) == (200, pinned, pinned)


def test_deployment_gets_a_replicaset_and_a_pending_pod(
    cluster: k8s.Cluster, namespace: str
) -> None:
    """`kubectl apply` of a Deployment makes KCM create its ReplicaSet, and that a Pending Pod."""
    assert cluster.apply(deployment("echo", namespace)) == "deployment.apps/echo created\n"

    k8s.poll(lambda: items(cluster, "pods", namespace), DEADLINE, "the Deployment's Pod")
    (replicaset,) = items(cluster, "replicasets", namespace)
    (pod,) = items(cluster, "pods", namespace)
    assert [ref["name"] for ref in replicaset["metadata"]["ownerReferences"]] == ["echo"]
    assert [ref["name"] for ref in pod["metadata"]["ownerReferences"]] == [
        replicaset["metadata"]["name"]
    ]
    assert (pod["status"]["phase"], pod["spec"].get("nodeName")) == ("Pending", None)


def test_rollout_restart_makes_a_second_replicaset(cluster: k8s.Cluster, namespace: str) -> None:
    """`kubectl rollout restart` stamps restartedAt into a new ReplicaSet beside the old one."""
    cluster.apply(deployment("echo", namespace))
    k8s.poll(lambda: items(cluster, "replicasets", namespace), DEADLINE, "the first ReplicaSet")

    restarted = cluster.kubectl("rollout", "restart", "deployment/echo", "-n", namespace)

    def shape() -> list[tuple[str, bool, int]]:
        """(rollout revision, template has restartedAt, desired replicas) per ReplicaSet."""
        return sorted(
            (
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                "kubectl.kubernetes.io/restartedAt"
                in (rs["spec"]["template"]["metadata"].get("annotations") or {}),
                rs["spec"]["replicas"],
            )
            for rs in items(cluster, "replicasets", namespace)
        )

    def settled() -> bool:
        return len(shape()) == 2 and len(items(cluster, "pods", namespace)) == 2

    k8s.poll(settled, DEADLINE, "a second ReplicaSet and its Pod")
    assert restarted.stdout == "deployment.apps/echo restarted\n"
    # The new Pod never becomes available (no kubelet), so maxUnavailable 0 keeps the old one at 1.
    assert shape() == [("1", False, 1), ("2", True, 1)]


def widget_crd() -> dict[str, Any]:
    """A namespaced CRD with a schema, as the App Mesh CRDs are."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.meshplane.dev"},
        "spec": {
            "group": "test.meshplane.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_becomes_established_and_serves_its_resources(
    cluster: k8s.Cluster, namespace: str
) -> None:
    """An applied CRD becomes Established, and a CR of it is created and read back as written."""
    cluster.apply(widget_crd())
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.test.meshplane.dev", "--timeout=60s"
    )
    widget = {
        "apiVersion": "test.meshplane.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3},
    }

    assert cluster.apply(widget) == "widget.test.meshplane.dev/w1 created\n"
    back = cluster.kubectl_json("get", "widgets", "w1", "-n", namespace)
    assert (back["kind"], back["metadata"]["generation"], back["spec"]) == (
        "Widget",
        1,
        {"size": 3},
    )


def test_helm_runs(cluster: k8s.Cluster) -> None:
    """`helm version` prints the helm.sh/helm/v3 version pinned in tools/k8s/go.mod."""
    shown = cluster.helm("version", "--template", "{{.Version}}").stdout
    assert shown == k8s.pinned("helm.sh/helm/v3")
