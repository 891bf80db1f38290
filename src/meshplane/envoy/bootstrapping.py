"""Bootstrapping an Envoy sidecar for ADS, and the argv that starts it.

The bootstrap follows App Mesh's own generator (``appmesh-controller.md`` §3.1):
node id and cluster identify the proxy, LDS and CDS (and through them RDS and
EDS) all arrive over one state-of-the-world ADS stream (or, with ``delta``, one
incremental stream), admin listens on
loopback. It differs where meshplane runs many Envoys on one host
(``xds-envoy-notes.md`` §4): a 0.25-1 s reconnect backoff instead of Envoy's
multi-second default, one worker thread, no hot restart and a short drain.

The bootstrap is a plain dict so callers can dump it as JSON (which is YAML) to
``--config-yaml`` without writing a file per proxy — or, when it holds a secret,
to a private file passed as ``--config-path`` (an argv is readable by every local
user through ``/proc``).

Two options lock a sidecar down on a shared host: ``credential`` puts the proxy
credential the control plane issued on the ADS stream as gRPC initial metadata
(``x-meshplane-token``), and ``admin_pipe`` moves the admin interface from a
loopback port, which any local user can reach, to a unix socket of mode 0600.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshplane.envoy import statslistener
from meshplane.envoy.binary import binary_path

CREDENTIAL_METADATA = "x-meshplane-token"
"""The gRPC metadata entry that carries a proxy credential on the ADS stream."""

ADMIN_PIPE_MODE = 0o600
"""The admin socket's mode: only the user running the sidecar can reach it."""

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
    *,
    credential: str | None = None,
    admin_pipe: Path | None = None,
    stats_port: int | None = None,
    delta: bool = False,
) -> dict[str, Any]:
    """An ADS bootstrap for one proxy (state of the world; ``delta``: incremental), a dict.

    ``node_id`` is meshplane's ``mesh/<mesh>/virtualNode/<name>`` (or
    ``virtualGateway``); facts that differ between replicas of one node belong
    in ``metadata`` (meshplane uses the key ``"meshplane"``, e.g.
    ``{"meshplane": {"replica": "echo-backend-blue-0"}}``). ``admin_port`` may
    be 0 when the caller reads the bound address back via ``--admin-address-path``.
    ``credential`` is sent on every ADS stream; ``admin_pipe`` (a unix socket path)
    replaces ``admin_address``/``admin_port``. ``stats_port`` adds the read-only stats
    listener on ``admin_address:stats_port`` (:mod:`meshplane.envoy.statslistener`).
    ``delta`` makes the stream incremental (``api_type: DELTA_GRPC``): a change sends only
    the resources that changed (meshplane serves both; SotW is Envoy's and App Mesh's default).
    """
    via_ads = {"ads": {}, "resource_api_version": "V3"}
    if admin_pipe is not None:
        admin: dict[str, Any] = {"pipe": {"path": str(admin_pipe), "mode": ADMIN_PIPE_MODE}}
    else:
        admin = {"socket_address": {"address": admin_address, "port_value": admin_port}}
    ads_service: dict[str, Any] = {
        "envoy_grpc": {
            "cluster_name": XDS_CLUSTER,
            # Envoy's default backoff left sidecars disconnected for
            # ~10 s after a control-plane restart; this makes it ~1 s.
            "retry_policy": {"retry_back_off": {"base_interval": "0.25s", "max_interval": "1s"}},
        }
    }
    if credential is not None:
        ads_service["initial_metadata"] = [{"key": CREDENTIAL_METADATA, "value": credential}]
    config: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster, "metadata": dict(metadata)},
        "admin": {"address": admin},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [ads_service],
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
    if stats_port is not None:
        endpoint = admin if admin_pipe is None else statslistener.admin_pipe_address(admin_pipe)
        config["static_resources"]["listeners"] = [
            statslistener.listener(admin_address, stats_port)
        ]
        config["static_resources"]["clusters"].append(statslistener.admin_cluster(endpoint))
        config["stats_flush_interval"] = statslistener.FLUSH_INTERVAL
    return config


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` to ``path`` readable by its owner only (it may hold a credential)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(config, file, separators=(",", ":"), sort_keys=True)
    return path


def command(
    config: Mapping[str, Any] | Path,
    *,
    binary: Path | None = None,
    log_level: str = "warning",
    drain_time_s: int = 2,
    concurrency: int = 1,
    admin_address_path: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv that runs the real Envoy binary with ``config`` inline (or from a file).

    A :class:`~pathlib.Path` is passed as ``--config-path`` (see :func:`write_config`).
    One worker (sidecars share the host's cores), no hot restart (several
    Envoys on one host would fight over the shared-memory base id), and a
    short drain so replaced listeners do not linger for Envoy's default 600 s.
    """
    if isinstance(config, Path):
        source = ["--config-path", str(config)]
    else:
        source = ["--config-yaml", json.dumps(config, separators=(",", ":"), sort_keys=True)]
    argv = [
        str(binary or binary_path()),
        *source,
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
