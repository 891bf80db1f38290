"""Kubernetes objects as the manifest front door's :class:`ManifestObject` values, and back.

The controller keeps two views of each custom resource: what the API server
last said (:class:`Seen`: resourceVersion, finalizers, status) and the
:class:`ManifestObject` the reconcile rules work on. Conversion is pure; the
watcher calls it for every list item and watch event.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from meshplane.manifests import crds
from meshplane.manifests.objects import ManifestObject, parse_timestamp

APPMESH_KINDS = (
    "Mesh",
    "VirtualNode",
    "VirtualRouter",
    "VirtualService",
    "VirtualGateway",
    "GatewayRoute",
    "BackendGroup",
)
"""The seven ``appmesh.k8s.aws/v1beta2`` kinds, in the controller's creation order."""

Key = tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class Seen:
    """What the API server last reported about one object (never changed locally)."""

    obj: ManifestObject
    resource_version: str
    finalizers: tuple[str, ...]


def _time(text: Any) -> float:
    """Epoch seconds of a Kubernetes timestamp (fractions, as in a MicroTime, are dropped)."""
    if not isinstance(text, str) or not text:
        return 0.0
    return parse_timestamp(text.split(".")[0].rstrip("Z") + "Z")


def seen(kind: str, body: dict[str, Any]) -> Seen:
    """The :class:`Seen` form of an API object of ``kind`` (a plain JSON dict)."""
    metadata = body.get("metadata") or {}
    info = crds.BY_KIND[kind]
    obj = ManifestObject(
        kind=kind,
        namespace=str(metadata.get("namespace") or "") if info.namespaced else "",
        name=str(metadata["name"]),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        spec=copy.deepcopy(body.get("spec") or {}) if kind != "Namespace" else {},
        status=copy.deepcopy(body.get("status") or {}) if kind != "Namespace" else {},
        uid=str(metadata.get("uid") or ""),
        generation=int(metadata.get("generation") or 0),
        created_at=_time(metadata.get("creationTimestamp")),
        deleted_at=_time(metadata.get("deletionTimestamp")),
    )
    return Seen(
        obj,
        str(metadata.get("resourceVersion") or ""),
        tuple(metadata.get("finalizers") or ()),
    )
