"""Cloud Map on Kubernetes: the Ready pods a Cloud Map VirtualNode selects are its instances.

The appmesh-controller registered, for every VirtualNode with
``serviceDiscovery.awsCloudMap``, each pod its ``podSelector`` selects in the node's
namespace that has a pod IP, is not being deleted and whose ContainersReady condition
is True, under the pod IP, with the pod's labels as instance attributes
(``appmesh-controller.md`` §1.7); a pod that stops being ready or goes away was
deregistered. meshplane does the same into its own registrations (there is no Cloud
Map): :class:`Pods` keeps what the pod watch reports, :func:`wanted` turns it and the
reconciled catalog into one registration per Cloud Map node — one endpoint per
listener, pod IP and listener port, attributes the labels plus ``k8s.io/pod`` and
``k8s.io/namespace`` (the node's own attributes, ``AWS_INSTANCE_*`` and the mesh and
node names are added where instances are matched, :mod:`meshplane.translate.cloudmap`)
— and :class:`Registrar` writes only what changed. Every replica registers into its
own store, as it rebuilds its twins: nothing is written to the API server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from meshplane.manifests.catalog import Catalog
from meshplane.model import errors, selectors
from meshplane.service.discovery import Discovery

log = logging.getLogger(__name__)

SOURCE = "k8s-pods"
"""The registration source of every pod endpoint (one set per Cloud Map node)."""

Registration = tuple[str, str]
"""(mesh, virtual node): App Mesh names."""


@dataclasses.dataclass(frozen=True)
class Pod:
    """What Cloud Map registration reads of a Pod."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    ready: bool
    deleting: bool


def pod_of(body: Mapping[str, Any]) -> Pod:
    """The :class:`Pod` view of a core/v1 Pod (a plain JSON dict)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return Pod(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        labels=dict(metadata.get("labels") or {}),
        ip=str(status.get("podIP") or ""),
        ready=conditions.get("ContainersReady") == "True" or conditions.get("Ready") == "True",
        deleting=bool(metadata.get("deletionTimestamp")),
    )


class Pods:
    """The pod watch's sink: every Pod by (namespace, name), as last reported."""

    def __init__(self) -> None:
        """Empty until the first list."""
        self.pods: dict[tuple[str, str], Pod] = {}
        self.synced = False

    def relist(self, kind: str, bodies: Iterable[Mapping[str, Any]]) -> None:  # noqa: ARG002
        """A full list replaces what was known (``kind`` is always Pod)."""
        self.pods = {(p.namespace, p.name): p for p in map(pod_of, bodies)}
        self.synced = True

    def observe(self, kind: str, event_type: str, body: Mapping[str, Any]) -> None:  # noqa: ARG002
        """One watch event (``kind`` is always Pod)."""
        if event_type == "BOOKMARK":
            return
        pod = pod_of(body)
        if event_type == "DELETED":
            self.pods.pop((pod.namespace, pod.name), None)
        else:
            self.pods[(pod.namespace, pod.name)] = pod


def wanted(catalog: Catalog, pods: Iterable[Pod]) -> dict[Registration, list[dict[str, Any]]]:
    """Each Cloud Map node's endpoints (API form), from the Ready pods it selects."""
    found: dict[Registration, list[dict[str, Any]]] = {}
    candidates = [p for p in pods if p.ready and p.ip and not p.deleting]
    for node in catalog.of_kind("VirtualNode"):
        spec = node.spec
        discovery = spec.get("serviceDiscovery") or {}
        mesh_ref = spec.get("meshRef")
        if node.deleting or not discovery.get("awsCloudMap") or not isinstance(mesh_ref, dict):
            continue
        mesh = catalog.get("Mesh", "", str(mesh_ref.get("name")))
        if mesh is None:
            continue
        ports = [
            int(listener["portMapping"]["port"])
            for listener in spec.get("listeners") or []
            if isinstance(listener, dict) and isinstance(listener.get("portMapping"), dict)
        ]
        selector = spec.get("podSelector")
        endpoints = [
            {
                "listenerPort": port,
                "address": pod.ip,
                "port": port,
                "attributes": {
                    **pod.labels,
                    "k8s.io/namespace": pod.namespace,
                    "k8s.io/pod": pod.name,
                },
            }
            for pod in sorted(candidates, key=lambda p: p.name)
            if pod.namespace == node.namespace and selectors.selects(selector, pod.labels)
            for port in ports
        ]
        found[(str(mesh.spec.get("awsName") or mesh.name), str(spec["awsName"]))] = endpoints
    return found


class Registrar:
    """Keeps the store's pod registrations equal to :func:`wanted`, writing only changes."""

    def __init__(self, discovery: Discovery) -> None:
        """Register through ``discovery`` (unleased: the pod watch withdraws them)."""
        self._discovery = discovery
        self._written: dict[Registration, list[dict[str, Any]]] = {}

    def sync(self, catalog: Catalog, pods: Pods) -> None:
        """Register what changed since the last call; withdraw nodes that left."""
        if not pods.synced:
            return
        now = wanted(catalog, pods.pods.values())
        for key in sorted(set(self._written) | set(now)):
            endpoints = now.get(key, [])
            if self._written.get(key, []) == endpoints:
                continue
            self._written.pop(key, None)
            try:
                self._discovery.register(*key, SOURCE, endpoints)
            except errors.NotFoundException:
                continue  # no twin yet (tried again next pass), or no more (endpoints gone too)
            except errors.BadRequestException as error:
                log.warning("Cloud Map endpoints of %s/%s refused: %s", *key, error)
                continue
            if endpoints:
                self._written[key] = endpoints
