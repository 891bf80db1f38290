"""The webhook configurations meshplane registers when it runs out of cluster.

In a cluster the chart declares them, pointing at the webhook Service. Out of
cluster (``meshplane k8s --kubeconfig``) the API server must call meshplane on
this machine, so the configurations name ``clientConfig.url:
https://<host>:<port>/…`` and carry the CA meshplane generated. Names, paths,
rules and policies follow the appmesh-controller chart
(``appmesh-controller.md`` §1.4, §2.1): CR webhooks on CREATE and UPDATE, the
pod webhook on CREATE for namespaces labelled
``appmesh.k8s.aws/sidecarInjectorWebhook`` enabled or disabled,
``failurePolicy: Fail``, ``sideEffects: None``.
"""

from __future__ import annotations

import base64
from typing import Any

from meshplane.k8s import injecting, mirroring, webhooks
from meshplane.manifests import crds

MUTATING = "meshplane-mutating-webhook-configuration"
VALIDATING = "meshplane-validating-webhook-configuration"
OLD_MUTATING = "appmesh-controller-mutating-webhook-configuration"
"""The appmesh-controller chart's: while it exists, both injectors would run."""


def _webhook(
    name: str, url: str, ca_pem: bytes, rule: dict[str, Any], failure_policy: str
) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
        "rules": [rule],
        "admissionReviewVersions": ["v1", "v1beta1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": 10,
    }


def _cr_rule(kind: str) -> dict[str, Any]:
    return {
        "apiGroups": [crds.GROUP],
        "apiVersions": ["v1beta2"],
        "operations": ["CREATE", "UPDATE"],
        "resources": [crds.BY_KIND[kind].plural],
    }


def configurations(
    base_url: str, ca_pem: bytes, failure_policy: str = "Fail"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Mutating- and ValidatingWebhookConfiguration for a server at ``base_url``."""
    mutating = [
        _webhook(
            f"m{kind.lower()}.appmesh.k8s.aws",
            base_url + webhooks.path("mutate", kind),
            ca_pem,
            _cr_rule(kind),
            failure_policy,
        )
        for kind in mirroring.APPMESH_KINDS
    ]
    pod = _webhook(
        "mpod.appmesh.k8s.aws",
        base_url + webhooks.POD_PATH,
        ca_pem,
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
        failure_policy,
    )
    pod["namespaceSelector"] = {
        "matchExpressions": [
            {"key": injecting.INJECT, "operator": "In", "values": ["enabled", "disabled"]}
        ]
    }
    validating = [
        _webhook(
            f"v{kind.lower()}.appmesh.k8s.aws",
            base_url + webhooks.path("validate", kind),
            ca_pem,
            _cr_rule(kind),
            failure_policy,
        )
        for kind in mirroring.APPMESH_KINDS
    ]
    api = "admissionregistration.k8s.io/v1"
    return (
        {
            "apiVersion": api,
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": MUTATING},
            "webhooks": [*mutating, pod],
        },
        {
            "apiVersion": api,
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": VALIDATING},
            "webhooks": validating,
        },
    )
