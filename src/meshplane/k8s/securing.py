"""ADS over TLS for injected sidecars: the server certificate, the shared CA, what is mounted.

gRPC sends call credentials (the pod's service-account token, an AWS signature) only
over a secure channel, and the aws-appmesh-envoy image dials its management server
over TLS anyway. So ``meshplane k8s`` serves ADS a second time over TLS, with a
certificate from the built-in CA (``<data-dir>/ca``) for the names sidecars dial, and
the injector mounts that CA into every pod it injects.

Every replica must sign with the same CA (a sidecar reconnects through the Service to
any of them, and mTLS peers of different replicas must trust each other), so the CA
lives in the Secret :data:`CA_SECRET` of meshplane's namespace: the first replica
creates it from its own, the others (and later restarts) adopt it (:func:`share_ca`).
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import logging
import os
from pathlib import Path

import httpx2
from lightkube import ApiError

from meshplane.k8s import apiserver, identities
from meshplane.k8s.operating import Options
from meshplane.kit.clock import Clock
from meshplane.pki import authority as pki_authority
from meshplane.xds.roles import AsyncStreamAuthenticator
from meshplane.xds.server import AdsServer

log = logging.getLogger(__name__)

CA_SECRET = "meshplane-ca"
"""The Secret (in meshplane's namespace) holding the CA every replica signs with."""
_FILES: tuple[str, ...] = ("ca.pem", "ca-key.pem")

SERVER_TTL_S = 365 * 24 * 3600
"""The xDS server certificate lives as long as the process; a restart issues a new one."""


def server_names(xds_host: str) -> tuple[str, ...]:
    """The SANs of the xDS certificate: the dialled host, plus its in-cluster long form."""
    names = [xds_host]
    if xds_host.endswith(".svc"):
        names.append(f"{xds_host}.cluster.local")
    try:
        ipaddress.ip_address(xds_host)
    except ValueError:
        names.append("localhost")
    return tuple(names)


def secure(
    ads: AdsServer,
    options: Options,
    host: str,
    ca_dir: Path,
    clock: Clock,
    *,
    ca_cert: Path | None = None,
    ca_key: Path | None = None,
) -> Options:
    """Have ``ads`` serve TLS on ``options.xds_tls_port``; the injector mounts the CA.

    Returns the options with the injector told the CA and the TLS port (unchanged when
    ``xds_tls_port`` is None).
    """
    if options.xds_identity:
        # Until operating.started installs PodIdentities, no stream is admitted (signed ones
        # neither: they are judged by the plane's own check, which PodIdentities keeps).
        signed = ads.authenticator
        if isinstance(signed, AsyncStreamAuthenticator):
            signed = None  # only the plane's own (synchronous) check judges signed streams
        ads.authenticator = identities.Starting()
        options = dataclasses.replace(options, signed_streams=signed)
    if options.xds_tls_port is None:
        return options
    authority = pki_authority.load_or_create(
        ca_dir, clock, certificate_path=ca_cert, key_path=ca_key
    )
    injector = options.injector
    names = server_names(injector.xds_host)
    issued = authority.issue(names[0], SERVER_TTL_S, names[1:])
    ads.serve_tls(host, options.xds_tls_port, issued.chain_pem, issued.key_pem)
    injector = dataclasses.replace(injector, xds_ca_pem=authority.bundle_pem.decode())
    return dataclasses.replace(options, injector=injector)


def signed_hosts(options: Options) -> tuple[str, ...]:
    """The ``host:port`` names an aws-appmesh-envoy sidecar may have signed its stream for."""
    if options.xds_tls_port is None:
        return ()
    return tuple(f"{n}:{options.xds_tls_port}" for n in server_names(options.injector.xds_host))


def _adopt(secret: dict[str, object], ca_dir: Path) -> None:
    data = secret.get("data")
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in _FILES):
        raise ValueError(f"Secret {CA_SECRET} lacks {' and '.join(_FILES)}")
    ca_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    for name in _FILES:
        path = ca_dir / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(base64.b64decode(str(data[name])))


async def share_ca(kubeconfig: Path | None, namespace: str, ca_dir: Path, clock: Clock) -> str:
    """Make ``ca_dir`` hold the replicas' shared CA; what happened, for the log.

    Adopts the Secret :data:`CA_SECRET` if it exists; otherwise stores this replica's CA
    there (a replica racing us to it wins, and we adopt its). Without access to Secrets
    the replica keeps its own CA and says so: then run one replica, or give every one
    the same ``MESHPLANE_CA_CERT``/``MESHPLANE_CA_KEY``.
    """
    client = apiserver.connect(kubeconfig)
    try:
        try:
            found = await client.get(apiserver.SECRET, CA_SECRET, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
        else:
            _adopt(dict(found), ca_dir)
            return f"adopted the shared CA of Secret {namespace}/{CA_SECRET}"
        pki_authority.load_or_create(ca_dir, clock)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CA_SECRET, "namespace": namespace},
            "type": "Opaque",
            "data": {f: base64.b64encode((ca_dir / f).read_bytes()).decode() for f in _FILES},
        }
        try:
            await client.create(apiserver.SECRET.from_dict(body))
        except ApiError as error:
            if error.status.code != 409:
                raise
            found = await client.get(apiserver.SECRET, CA_SECRET, namespace=namespace)
            _adopt(dict(found), ca_dir)
            return f"adopted the shared CA of Secret {namespace}/{CA_SECRET} (created meanwhile)"
        return f"stored this replica's CA as Secret {namespace}/{CA_SECRET}"
    except (ApiError, httpx2.HTTPError, OSError, ValueError) as error:
        log.warning(
            "the CA is this replica's own (Secret %s/%s: %s): sidecars and mTLS peers of "
            "other replicas will not trust it",
            namespace,
            CA_SECRET,
            error,
        )
        return "kept this replica's own CA"
    finally:
        await client.close()
