"""A replica's Envoy sidecar: the local counterpart of App Mesh's injected ``envoy`` container.

App Mesh's injector (``appmesh-controller.md`` §2.2) gave each pod an Envoy
with ``APPMESH_RESOURCE_ARN=mesh/<mesh>/virtualNode/<vn>``, ingress on 15000,
egress on 15001 and admin on 9901, and iptables steered the pod's traffic
through it. Locally many replicas share one host, so each sidecar gets its own
free ports and says which in its node metadata; the translator builds its
listeners on exactly those ports::

    node.id       mesh/<mesh>/virtualNode/<vn>     (cluster: the same)
    node.metadata {"meshplane": {"replica": "<workload>-<i>",
                                 "ingress": {"<listener port>": <bind port>},
                                 "app":     {"<listener port>": <app port>},
                                 "egress":  <egress port>}}

The bootstrap and argv come from :mod:`meshplane.envoy` (ADS over gRPC with a
short reconnect backoff, ``--concurrency 1``, no hot restart, short drain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshplane import envoy
from meshplane.runtime.ports import LOOPBACK
from meshplane.runtime.processes import ProcessSpec
from meshplane.runtime.selecting import Binding


@dataclasses.dataclass(frozen=True)
class SidecarPorts:
    """The ports one sidecar binds: admin, egress, and one ingress per VN listener."""

    admin: int
    egress: int
    ingress: Mapping[int, int]
    """VirtualNode listener port → the port this sidecar binds for it."""


def metadata(replica: str, ports: SidecarPorts, app_ports: Mapping[int, int]) -> dict[str, Any]:
    """The node metadata the translator and the xDS cache read (JSON object keys are strings)."""
    return {
        "meshplane": {
            "replica": replica,
            "ingress": {str(listener): bound for listener, bound in sorted(ports.ingress.items())},
            "app": {str(listener): port for listener, port in sorted(app_ports.items())},
            "egress": ports.egress,
        }
    }


def process_spec(
    name: str,
    replica: str,
    binding: Binding,
    ports: SidecarPorts,
    app_ports: Mapping[int, int],
    xds: tuple[str, int],
    base_env: Mapping[str, str],
    log_level: str = "warning",
) -> ProcessSpec:
    """How to start the sidecar of ``replica`` (log prefix ``name``)."""
    config = envoy.bootstrap(
        node_id=binding.node_id,
        cluster=binding.node_id,
        xds_host=xds[0],
        xds_port=xds[1],
        admin_address=LOOPBACK,
        admin_port=ports.admin,
        metadata=metadata(replica, ports, app_ports),
    )
    env = dict(base_env)
    # The injector's variables, so operators who grep for them find them.
    env["APPMESH_RESOURCE_ARN"] = binding.node_id
    if not binding.is_gateway:
        env["APPMESH_VIRTUAL_NODE_NAME"] = binding.node_id
    env["ENVOY_ADMIN_ACCESS_PORT"] = str(ports.admin)
    return ProcessSpec(name, envoy.command(config, log_level=log_level), env)
