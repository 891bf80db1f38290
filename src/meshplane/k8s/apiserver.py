"""The connection to the Kubernetes API server, and the resources meshplane reads and writes.

The only module that builds a lightkube client. Every resource is a lightkube
*generic* resource, so objects travel as plain JSON dicts — the form
:mod:`meshplane.k8s.mirroring` and the manifest rules read. Out of cluster a
kubeconfig names the server; in a pod the service account's token and CA do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from meshplane.manifests import crds

FIELD_MANAGER = "meshplane"

CUSTOM: dict[str, Any] = {
    info.kind: (
        create_namespaced_resource(crds.GROUP, "v1beta2", info.kind, info.plural)
        if info.namespaced
        else create_global_resource(crds.GROUP, "v1beta2", info.kind, info.plural)
    )
    for info in crds.ALL
    if info.api_version == crds.API_VERSION
}
"""The seven ``appmesh.k8s.aws/v1beta2`` kinds by kind name."""

NAMESPACE: Any = create_global_resource("", "v1", "Namespace", "namespaces")
EVENT: Any = create_namespaced_resource("", "v1", "Event", "events")
POD: Any = create_namespaced_resource("", "v1", "Pod", "pods")
"""Watched for Cloud Map VirtualNodes' endpoints (:mod:`meshplane.k8s.cloudmapping`)."""
LEASE: Any = create_namespaced_resource("coordination.k8s.io", "v1", "Lease", "leases")
MUTATING: Any = create_global_resource(
    "admissionregistration.k8s.io",
    "v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
)
VALIDATING: Any = create_global_resource(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
)

SECRET: Any = create_namespaced_resource("", "v1", "Secret", "secrets")
TOKEN_REVIEW: Any = create_global_resource(
    "authentication.k8s.io", "v1", "TokenReview", "tokenreviews"
)

WATCHED: dict[str, Any] = {"Namespace": NAMESPACE, **CUSTOM}
"""What the controller lists and watches, by kind."""


def connect(kubeconfig: Path | None) -> AsyncClient:
    """A client for ``kubeconfig``'s current context, or the in-cluster service account."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    # Watches hold a response open for minutes; only connecting and writing are bounded.
    timeout = httpx2.Timeout(10.0, read=None)
    return AsyncClient(config=config, field_manager=FIELD_MANAGER, timeout=timeout)


def connect_sync(kubeconfig: Path | None) -> Client:
    """A blocking client, for callers on a worker thread (a principals change)."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    return Client(config=config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(10.0))


def namespaced(kind: str) -> bool:
    """Whether objects of ``kind`` live in a namespace."""
    return kind == "Pod" or crds.BY_KIND[kind].namespaced


async def server_version(client: AsyncClient) -> tuple[int, int] | None:
    """The API server's (major, minor) from ``/version``; None if it does not say.

    lightkube has no call for ``/version`` (it is not a resource), so this goes through
    the client's HTTP session; a failure means "unknown", never an error.
    """
    try:
        session = client._client._client  # lightkube's own authenticated session
        reply = await session.get("/version")
        found = reply.json()
        minor = str(found.get("minor", "")).rstrip("+")
        return int(found["major"]), int(minor)
    except (AttributeError, KeyError, ValueError, TypeError, httpx2.HTTPError, OSError):
        return None
