"""Kinds meshplane leaves to Kubernetes: the one line ``apply`` prints when it skips them.

The published App Mesh walkthroughs ship one file per step with the App Mesh
objects beside the Deployments, Services, Ingresses and RBAC that Kubernetes
runs, and ``helm template`` renders a whole chart into one stream. Refusing
the whole file for one Deployment made them unusable as published, so a
document whose kind is neither an App Mesh kind nor one meshplane accepts
(:data:`meshplane.manifests.crds.BY_KIND`) is passed over with a line in
kubectl's form, ``deployment.apps/colorapp skipped: <why>``. A document that
claims the App Mesh group but does not fit it is still refused by
:mod:`meshplane.manifests.documents`: that is a mistake, not someone else's
object.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meshplane.manifests import crds

_WORKLOADS = "workloads are Kubernetes' business; in local mode use a Workload"
_ACCESS = "access control is Kubernetes' business; meshplane's local mode needs none"

# Why each well-known kind is skipped, in words that say what replaces it locally.
_REASONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "Deployment",
            "DaemonSet",
            "StatefulSet",
            "ReplicaSet",
            "ReplicationController",
            "Pod",
            "Job",
            "CronJob",
        ),
        _WORKLOADS,
    ),
    **dict.fromkeys(
        (
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "PodSecurityPolicy",
        ),
        _ACCESS,
    ),
    "Ingress": "ingress is Kubernetes' business; in local mode a VirtualGateway's Workload "
    "publishes the gateway",
    "IngressClass": "ingress is Kubernetes' business; in local mode a VirtualGateway's Workload "
    "publishes the gateway",
    "ConfigMap": "configuration is Kubernetes' business; in local mode put it in the "
    "Workload's env",
    "Secret": "secrets are Kubernetes' business; in local mode point tls certificate files at "
    "files on disk",
    "HorizontalPodAutoscaler": "scaling is Kubernetes' business; in local mode set the "
    "Workload's replicas",
    "PodDisruptionBudget": "scheduling is Kubernetes' business",
    "NetworkPolicy": "network policy is Kubernetes' business; the mesh's backends decide who "
    "may call whom",
    "CustomResourceDefinition": "meshplane serves the App Mesh kinds itself",
    "MutatingWebhookConfiguration": "meshplane admits App Mesh objects itself",
    "ValidatingWebhookConfiguration": "meshplane admits App Mesh objects itself",
}
_OTHER = "not an App Mesh kind; meshplane applies the appmesh.k8s.aws kinds, Namespace and Service"


@dataclasses.dataclass(frozen=True)
class Skipped:
    """One document ``apply``/``delete`` passed over, and why."""

    source: str
    index: int
    resource: str
    """``singular.group`` as kubectl prints it: ``deployment.apps``, ``serviceaccount``."""
    name: str
    reason: str

    def line(self) -> str:
        """``deployment.apps/colorapp skipped: workloads are Kubernetes' business; …``."""
        return f"{self.resource}/{self.name} skipped: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """The wire form the CLI prints, shaped like an applied object's outcome."""
        return {
            "line": self.line(),
            "resource": self.resource,
            "name": self.name,
            "action": "skipped",
            "warnings": [],
        }


def is_foreign(kind: str, api_version: str) -> bool:
    """True for a kind meshplane does not accept under an API group that is not App Mesh's."""
    group = api_version.rpartition("/")[0]
    return kind not in crds.BY_KIND and group != crds.GROUP


def skip(body: dict[str, Any], source: str, index: int) -> Skipped:
    """The skip record of a foreign document (``is_foreign`` holds for its kind)."""
    kind, api_version = body["kind"], body["apiVersion"]
    group = api_version.rpartition("/")[0]
    resource = f"{kind.lower()}.{group}" if group else kind.lower()
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return Skipped(source, index, resource, str(name or ""), _REASONS.get(kind, _OTHER))
