"""The apiserver really calls a mutating webhook served from the test process over HTTPS."""

from __future__ import annotations

import json
from typing import Any

from . import cluster as k8s
from .test_control_plane import deployment


def pod(name: str, namespace: str) -> dict[str, Any]:
    """A bare Pod; no kubelet runs, so it only has to pass admission."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/echo:1"}]},
    }


def mutating_webhook(name: str, server: k8s.AdmissionServer, namespace: str) -> dict[str, Any]:
    """Pod CREATE in ``namespace`` goes to ``server``'s /mutate-v1-pod, as the injector's does."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "mpod.test.meshplane.dev",
                "clientConfig": {"url": server.url("/mutate-v1-pod"), "caBundle": server.ca_bundle},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
            }
        ],
    }


def label_injected(request: dict[str, Any]) -> dict[str, Any]:
    """Allow the Pod with the label ``injected=yes`` added."""
    return k8s.json_patch(
        request, [{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}]
    )


def _dry_run_is_mutated(cluster: k8s.Cluster, namespace: str) -> bool:
    """Whether the apiserver calls our webhook yet.

    It picks webhook configurations up from a watch, so a new one takes effect a moment later;
    server-side dry runs (allowed with sideEffects None) show when, without creating anything.
    """
    created = cluster.kubectl(
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(pod("probe", namespace)),
    )
    return bool(json.loads(created.stdout)["metadata"]["labels"].get("injected") == "yes")


def test_mutating_webhook_is_called_on_pod_create(cluster: k8s.Cluster, namespace: str) -> None:
    """A url+caBundle webhook on 127.0.0.1 receives the Pod CREATE and its patch is applied."""
    with k8s.AdmissionServer(cluster.ca, label_injected) as server:
        name = f"inject-{namespace}"
        cluster.apply(mutating_webhook(name, server, namespace))
        try:
            k8s.poll(
                lambda: _dry_run_is_mutated(cluster, namespace), 60.0, "the webhook being called"
            )
            cluster.apply(pod("app", namespace))
        finally:
            cluster.kubectl("delete", "mutatingwebhookconfiguration", name)

    stored = cluster.kubectl_json("get", "pod", "app", "-n", namespace)
    real = [r for r in server.requests if not r["dryRun"]]
    assert stored["metadata"]["labels"] == {"app": "app", "injected": "yes"}
    assert [(r["operation"], r["kind"], r["namespace"], r["name"]) for r in real] == [
        ("CREATE", {"group": "", "version": "v1", "kind": "Pod"}, namespace, "app")
    ]


def test_replicaset_pods_pass_the_webhook_without_a_name(
    cluster: k8s.Cluster, namespace: str
) -> None:
    """Pods KCM creates for a Deployment are mutated too; the request has generateName, no name."""
    with k8s.AdmissionServer(cluster.ca, label_injected) as server:
        name = f"inject-{namespace}"
        cluster.apply(mutating_webhook(name, server, namespace))
        try:
            k8s.poll(
                lambda: _dry_run_is_mutated(cluster, namespace), 60.0, "the webhook being called"
            )
            cluster.apply(deployment("echo", namespace))
            k8s.poll(
                lambda: cluster.kubectl_json("get", "pods", "-n", namespace)["items"],
                60.0,
                "the Deployment's Pod",
            )
        finally:
            cluster.kubectl("delete", "mutatingwebhookconfiguration", name)

    (stored,) = cluster.kubectl_json("get", "pods", "-n", namespace)["items"]
    (real,) = [r for r in server.requests if not r["dryRun"]]
    assert stored["metadata"]["labels"]["injected"] == "yes"
    # The apiserver omits request.name for a generateName Pod: name the injected Envoy otherwise.
    assert (real["operation"], real.get("name"), real["userInfo"]["username"]) == (
        "CREATE",
        None,
        "admin",
    )
    assert real["object"]["metadata"]["generateName"].startswith("echo-")
