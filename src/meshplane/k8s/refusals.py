"""Why the injector refuses a pod, in sentences that say what to fix.

The appmesh-controller refused a pod for three reasons (``appmesh-controller.md`` §2.1):
several VirtualNodes (or VirtualGateways) select it, it selects both kinds, or the
namespace says ``enabled`` and nothing selects it. It kept the bare sentence ("found
multiple matching VirtualNodes for pod"); meshplane keeps that sentence as the prefix
and names the objects and the fix after it.

Two refusals are meshplane's own, because the controller let those pods in with an
Envoy that could never get a configuration:

* the namespace is labelled for a mesh (``mesh: <name>``, the walkthroughs' convention,
  or ``appmesh.k8s.aws/mesh``) that does not exist, and no Mesh selects the namespace;
* the VirtualNode (or VirtualGateway) selecting the pod is not Active: its
  ``<Kind>Active`` condition is False, and its reason and message say why (a backend
  that does not exist, a mesh that is not Active, an App Mesh error).

An object the controller has not reconciled yet (no condition at all) does not refuse
the pod: a manifest that holds the VirtualNode and its Deployment is applied at once,
and the Deployment's first pod would otherwise race the first reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.model import selectors

MESH_LABELS = ("mesh", "appmesh.k8s.aws/mesh")
"""Namespace labels that name the mesh a namespace is meant for."""


def _names(members: list[ManifestObject]) -> str:
    return ", ".join(f"{m.namespace}/{m.name}" for m in sorted(members, key=lambda m: m.name))


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)"


def several(
    prefix: str, kind: str, members: list[ManifestObject], labels: Mapping[str, str]
) -> str:
    """Several ``kind`` objects select the pod: which ones, and what to change."""
    return (
        f"{prefix}: {kind}s {_names(members)} all select its labels {_labels(labels)}; "
        f"make their podSelectors select disjoint pods (or change the pod's labels)"
    )


def both(prefix: str, node: ManifestObject, gateway: ManifestObject) -> str:
    """A VirtualNode and a VirtualGateway select the pod."""
    return (
        f"{prefix}: VirtualNode {node.namespace}/{node.name} and VirtualGateway "
        f"{gateway.namespace}/{gateway.name}; narrow one of their podSelectors"
    )


def missing_mesh(namespace: str, labels: Mapping[str, str], catalog: Catalog) -> str | None:
    """The namespace names a mesh by label that neither exists nor selects it."""
    meshes = catalog.of_kind("Mesh")
    if selectors.meshes_for(meshes, lambda m: m.spec.get("namespaceSelector"), labels):
        return None
    for key in MESH_LABELS:
        wanted = labels.get(key)
        if not wanted:
            continue
        if any(wanted in (m.name, m.spec.get("awsName")) for m in meshes):
            return None  # it exists: it just does not select the namespace (yet)
        return (
            f"failed to find mesh {wanted}: namespace {namespace} is labelled {key}={wanted}, "
            f"but no Mesh {wanted} exists and no Mesh's namespaceSelector selects the "
            f"namespace; create Mesh {wanted} with namespaceSelector.matchLabels "
            f"{{{key}: {wanted}}}, or correct the namespace's {key} label"
        )
    return None


def not_active(member: ManifestObject) -> str | None:
    """The member's ``<Kind>Active`` condition is False: why, and where to look."""
    wanted = f"{member.kind}Active"
    condition = next(
        (c for c in member.status.get("conditions") or [] if c.get("type") == wanted), None
    )
    if condition is None or condition.get("status") != "False":
        return None
    reason = condition.get("reason") or "NotActive"
    message = condition.get("message") or "no message"
    return (
        f"{member.kind} {member.namespace}/{member.name} selects this pod but is not Active "
        f"({wanted}=False, {reason}: {message}); its Envoy would get no configuration. "
        f"Fix what the condition says (kubectl describe {member.kind.lower()} {member.name} "
        f"-n {member.namespace}), then create the pod again"
    )
