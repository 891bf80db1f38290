"""The control plane's client: every HTTP call to meshplane goes through here.

Layer 1. A typed client of ``/meshplane/v1`` and ``/healthz`` (:class:`MeshplaneClient`,
and :class:`AsyncMeshplaneClient` for event-loop callers such as the runtime) and a
boto3 factory for the App Mesh API (:func:`appmesh`). The CLI, the runtime, the demo
and :mod:`meshplane.testing` use it instead of calling the control plane themselves
(an import-linter contract keeps it that way), so authentication is switched on in one
place: given credentials, :mod:`meshplane.client.transport` signs every request with
SigV4 for service ``appmesh``. May import :mod:`meshplane.kit`, the standard library
and botocore; never the server side.

Public API::

    connect(base_url, *, sign=False, region="us-west-2", profile=None, fallback_credentials=None,
            timeout=10.0, trust_env=True) -> MeshplaneClient
    MeshplaneClient(Transport(base_url, *, timeout=10.0, signer=None, trust_env=True))
        .health() -> Health, .proxies() -> ProxiesReport,
        .wait_for_revision(revision, timeout) -> ProxiesReport,
        .issue_proxy_credential(node_id, replica) -> ProxyCredential,
        .lease_endpoints(mesh, node, source, endpoints, credential=None) -> Registration,
        .register_endpoints(mesh, node, source, endpoints, credential=None), .endpoints(mesh),
        .apply(sources, namespace), .delete(sources, namespace),
        .objects(kind, namespace), .object(kind, name, namespace),
        .delete_object(kind, name, namespace), .label_namespace(name, labels, overwrite),
        .credentials(), .create_credentials(name, policy), .delete_credentials(name),
        .call(method, path, body=None, query=None)
    AsyncMeshplaneClient(connect(...))  # the same methods, awaitable
    Signer.from_environment(region, profile=None, fallback=None) -> Signer | None
    Signer.from_file(path, region, profile="meshplane") -> Signer
    appmesh(endpoint_url, region, **kwargs) -> boto3 appmesh client
    ControlPlaneError(method, path, status, body), UnreachableError
"""

from meshplane.client.boto import appmesh
from meshplane.client.errors import ControlPlaneError, UnreachableError
from meshplane.client.meshplane import (
    AsyncMeshplaneClient,
    Endpoint,
    Health,
    MeshplaneClient,
    ProxiesReport,
    ProxyCredential,
    Registration,
    Source,
    connect,
)
from meshplane.client.transport import Signer, Transport

__all__ = [
    "AsyncMeshplaneClient",
    "ControlPlaneError",
    "Endpoint",
    "Health",
    "MeshplaneClient",
    "ProxiesReport",
    "ProxyCredential",
    "Registration",
    "Signer",
    "Source",
    "Transport",
    "UnreachableError",
    "appmesh",
    "connect",
]
