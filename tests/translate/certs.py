"""Test certificates from meshplane's own CA: the golden cases' files and SDS secrets.

The golden cases name certificate files under :data:`GOLDEN_DIR` (a fixed path, so
the goldens read as App Mesh specs do); ``envoy --mode validate`` loads them, so
they are written there before Envoy runs.
"""

from __future__ import annotations

import pathlib

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshplane.kit.clock import system_clock
from meshplane.pki import authority
from meshplane.translate import EnvoyResources, tls

GOLDEN_DIR = pathlib.Path("/tmp/meshplane-goldens/certs")
TTL_S = 3600


def write_files(directory: pathlib.Path) -> authority.Authority:
    """A CA in ``directory/ca`` plus ca.pem, server(-key).pem and client(-key).pem beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = authority.load_or_create(directory / "ca", system_clock)
    (directory / "ca.pem").write_bytes(ca.bundle_pem)
    for role, name in (("server", "server.example.com"), ("client", "client.example.com")):
        issued = ca.issue(name, TTL_S)
        (directory / f"{role}.pem").write_bytes(issued.chain_pem)
        (directory / f"{role}-key.pem").write_bytes(issued.key_pem)
    return ca


def secrets_for(resources: EnvoyResources, ca: authority.Authority) -> dict[str, secret_pb2.Secret]:
    """The secret of every name the resources ask for, issued as the sync stage would."""
    found = {}
    for request in resources.secrets:
        if request.kind == "trust":
            found[request.name] = tls.trust_secret(request.name, ca.bundle_pem)
        else:
            issued = ca.issue(request.name, TTL_S, request.dns_names)
            found[request.name] = tls.certificate_secret(
                request.name, issued.chain_pem, issued.key_pem
            )
    return found
