"""The apiserver really calls a mutating webhook served from the test process over HTTPS."""

from __future__ import annotations

import json
from typing import Any

from . import cluster as k8s


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


def test_mutating_webhook_is_called_on_pod_create(cluster: k8s.Cluster, namespace: str) -> None:
    """A url+caBundle webhook on 127.0.0.1 receives the Pod CREATE and its patch is applied."""
    with k8s.AdmissionServer(cluster.ca, label_injected) as server:
        name = f"inject-{namespace}"
        cluster.apply(mutating_webhook(name, server, namespace))
        try:
            # The apiserver picks webhook configurations up from a watch: server-side dry runs
            # (allowed: sideEffects None) show when it calls ours, without creating anything.
            def dry_run_is_mutated() -> bool:
                created = cluster.kubectl(
                    "create",
                    "--dry-run=server",
                    "-o",
                    "json",
                    "-f",
                    "-",
                    stdin=json.dumps(pod("probe", namespace)),
                )
                return json.loads(created.stdout)["metadata"]["labels"].get("injected") == "yes"

            k8s.poll(dry_run_is_mutated, 60.0, "the apiserver calling the webhook")
            cluster.apply(pod("app", namespace))
        finally:
            cluster.kubectl("delete", "mutatingwebhookconfiguration", name)

    stored = cluster.kubectl_json("get", "pod", "app", "-n", namespace)
    real = [r for r in server.requests if not r["dryRun"]]
    assert stored["metadata"]["labels"] == {"app": "app", "injected": "yes"}
    assert [(r["operation"], r["kind"], r["namespace"], r["name"]) for r in real] == [
        ("CREATE", {"group": "", "version": "v1", "kind": "Pod"}, namespace, "app")
    ]
