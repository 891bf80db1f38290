"""A sidecar's read-only stats port: Envoy's ``/stats`` without the rest of its admin interface.

The admin interface can quit Envoy, reset its counters or change its log level, so a
locked-down sidecar keeps it on a 0600 unix socket (:mod:`meshplane.envoy.bootstrapping`).
Its stats are another matter: Prometheus and ``meshplane top`` must read them. The
bootstrap then adds one static listener on a loopback port (Istio does the same on
15090) whose only routes are ``GET /stats`` and ``GET /stats/prometheus``, forwarded to
the admin interface through a static cluster; every other path or method is a 404 from
that listener and never reaches the admin interface::

    listener meshplane_stats  127.0.0.1:<port>
      GET /stats, /stats/prometheus  →  cluster meshplane_admin  →  admin socket or port

Histograms are merged from Envoy's workers only at a stats flush; a one-second flush
interval (Envoy's default is five) keeps ``p50``/``p99`` current enough for ``top``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LISTENER = "meshplane_stats"
"""The static listener's name (the translator's names all start ``lds_``: no clash)."""
CLUSTER = "meshplane_admin"
"""The static cluster that reaches the admin interface."""
PATHS = ("/stats", "/stats/prometheus")
"""The only admin paths the stats port serves (query strings pass: ``?format=json``)."""
FLUSH_INTERVAL = "1s"

_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"


def _route(path: str) -> dict[str, Any]:
    return {
        "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "route": {"cluster": CLUSTER, "timeout": "5s"},
    }


def listener(address: str, port: int) -> dict[str, Any]:
    """The stats listener on ``address:port`` (a loopback address: it has no authentication)."""
    manager = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": LISTENER,
        "route_config": {
            "name": LISTENER,
            "virtual_hosts": [
                {"name": LISTENER, "domains": ["*"], "routes": [_route(p) for p in PATHS]}
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"type.googleapis.com/{_ROUTER}"},
            }
        ],
    }
    return {
        "name": LISTENER,
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def admin_cluster(admin: dict[str, Any]) -> dict[str, Any]:
    """The cluster whose one endpoint is the admin ``address`` (``pipe`` or ``socket_address``)."""
    return {
        "name": CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": admin}}]}],
        },
    }


def admin_pipe_address(path: Path) -> dict[str, Any]:
    """The address of an admin unix socket, as an endpoint names it."""
    return {"pipe": {"path": str(path)}}
