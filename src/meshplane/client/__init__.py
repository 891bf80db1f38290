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
    open_transport(base_url, *, sign=False, ...) -> Transport  # connect()'s, untyped: .call()
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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from meshplane.client.transport import Signer, Transport, open_transport

_HOMES = {
    "appmesh": "boto",
    "ControlPlaneError": "errors",
    "UnreachableError": "errors",
    "Signer": "transport",
    "Transport": "transport",
    "open_transport": "transport",
}
"""Where each public name lives; the others are :mod:`meshplane.client.meshplane`'s."""
_SUBMODULES = frozenset(
    {"boto", "errors", "meshplane", "plainhttp", "sigv4", "statickeys", "transport"}
)
"""Reached as attributes (``client.transport.EXPLICIT_CHAIN``) as when all were imported."""


def __getattr__(name: str) -> object:
    """Import a public name's module on first use (PEP 562).

    The CLI's fast path needs only the transport and the errors; the typed client's module
    (its dataclasses import :mod:`inspect`) and the boto3 factory were a quarter of a
    ``meshplane get``'s start-up. ``from meshplane.client import X`` works as before.
    """
    import importlib  # noqa: PLC0415 - already loaded by the import system

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES.get(name, 'meshplane')}"), name)
    globals()[name] = value
    return value


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
    "open_transport",
]
