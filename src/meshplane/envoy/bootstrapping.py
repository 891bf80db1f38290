"""Bootstrapping an Envoy sidecar for ADS, and the argv that starts it.

The bootstrap follows App Mesh's own generator (``appmesh-controller.md`` §3.1):
node id and cluster identify the proxy, LDS and CDS (and through them RDS and
EDS) all arrive over one state-of-the-world ADS stream, admin listens on
loopback. It differs where meshplane runs many Envoys on one host
(``xds-envoy-notes.md`` §4): a 0.25-1 s reconnect backoff instead of Envoy's
multi-second default, one worker thread, no hot restart and a short drain.

The bootstrap is a plain dict so callers can dump it as JSON (which is YAML) to
``--config-yaml`` without writing a file per proxy.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshplane.envoy.binary import binary_path

XDS_CLUSTER = "xds_cluster"
"""The static cluster through which Envoy reaches the control plane."""

_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _xds_cluster(xds_host: str, xds_port: int) -> dict[str, Any]:
    return {
        "name": XDS_CLUSTER,
        # An IP needs no resolver; a hostname (e.g. in Kubernetes) is resolved by DNS.
        "type": "STATIC" if _is_ip(xds_host) else "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": xds_host,
                                        "port_value": xds_port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


MAX_DOWNSTREAM_CONNECTIONS = 50_000


def bootstrap(
    node_id: str,
    cluster: str,
    xds_host: str,
    xds_port: int,
    admin_address: str,
    admin_port: int,
    metadata: Mapping[str, Any],
) -> dict[str, Any]:
    """An ADS (SotW) bootstrap for one proxy, as a JSON-able dict.

    ``node_id`` is meshplane's ``mesh/<mesh>/virtualNode/<name>`` (or
    ``virtualGateway``); facts that differ between replicas of one node belong
    in ``metadata`` (meshplane uses the key ``"meshplane"``, e.g.
    ``{"meshplane": {"replica": "echo-backend-blue-0"}}``). ``admin_port`` may
    be 0 when the caller reads the bound address back via ``--admin-address-path``.
    """
    via_ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": node_id, "cluster": cluster, "metadata": dict(metadata)},
        "admin": {
            "address": {"socket_address": {"address": admin_address, "port_value": admin_port}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [
                    {
                        "envoy_grpc": {
                            "cluster_name": XDS_CLUSTER,
                            # Envoy's default backoff left sidecars disconnected for
                            # ~10 s after a control-plane restart; this makes it ~1 s.
                            "retry_policy": {
                                "retry_back_off": {"base_interval": "0.25s", "max_interval": "1s"}
                            },
                        }
                    }
                ],
            },
            "cds_config": dict(via_ads),
            "lds_config": dict(via_ads),
        },
        "static_resources": {"clusters": [_xds_cluster(xds_host, xds_port)]},
        # A bound on downstream connections, so one misbehaving client cannot exhaust the
        # sidecar's file descriptors (and Envoy stops warning at start-up that there is none).
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                        "downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
    }


def command(
    config: Mapping[str, Any],
    *,
    binary: Path | None = None,
    log_level: str = "warning",
    drain_time_s: int = 2,
    concurrency: int = 1,
    admin_address_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv that runs the real Envoy binary with ``config`` inline.

    One worker (sidecars share the host's cores), no hot restart (several
    Envoys on one host would fight over the shared-memory base id), and a
    short drain so replaced listeners do not linger for Envoy's default 600 s.
    """
    argv = [
        str(binary or binary_path()),
        "--config-yaml",
        json.dumps(config, separators=(",", ":"), sort_keys=True),
        "--concurrency",
        str(concurrency),
        "--disable-hot-restart",
        "--drain-time-s",
        str(drain_time_s),
        "--log-level",
        log_level,
    ]
    if admin_address_path is not None:
        argv += ["--admin-address-path", str(admin_address_path)]
    argv += list(extra_args)
    return argv
