"""ADS over TLS for injected sidecars: the server certificate and what the injector mounts.

gRPC sends call credentials (the pod's service-account token, an AWS signature) only
over a secure channel, and the aws-appmesh-envoy image dials its management server
over TLS anyway. So ``meshplane k8s`` serves ADS a second time over TLS, with a
certificate from the built-in CA (``<data-dir>/ca``) for the names sidecars dial, and
the injector mounts that CA into every pod it injects.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

from meshplane.k8s.operating import Options
from meshplane.kit.clock import Clock
from meshplane.pki import authority as pki_authority
from meshplane.xds.server import AdsServer

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
