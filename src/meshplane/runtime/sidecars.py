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
                                 "egress":  <egress port>,
                                 "tcp":     {"<TCP backend service>": <port>},
                                 "stats":   <stats port>}}

Without iptables an app cannot name a TCP backend through ``HTTP_PROXY``, so
each TCP backend of the node gets a loopback port of its own on the sidecar,
announced to the app as ``MESHPLANE_BACKEND_<NAME>_ADDR=127.0.0.1:<port>``
(:func:`backend_variable`).

The bootstrap and argv come from :mod:`meshplane.envoy` (ADS over gRPC with a
short reconnect backoff, ``--concurrency 1``, no hot restart, short drain).

Given a private directory (mode 0700, the supervisor's), a sidecar is locked down for a
shared host: its admin interface is a unix socket of mode 0600 there instead of a
loopback port any local user could reach, and its bootstrap — which carries the proxy
credential on the ADS stream — is a 0600 file there rather than an argv every local
user can read in ``/proc``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meshplane import envoy
from meshplane.runtime.ports import LOOPBACK
from meshplane.runtime.processes import ProcessSpec
from meshplane.runtime.selecting import Binding


@dataclasses.dataclass(frozen=True)
class SidecarPorts:
    """The ports one sidecar binds: admin, egress, and one ingress per VN listener."""

    admin: int
    """The admin port (0 when the admin interface is a unix socket)."""
    egress: int
    ingress: Mapping[int, int]
    """VirtualNode listener port → the port this sidecar binds for it."""
    tcp: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """TCP backend virtual service → the loopback port this sidecar binds for it."""
    stats: int = 0
    """The read-only stats port (``GET /stats``, ``/stats/prometheus``); 0 for none."""


BACKEND_PREFIX = "MESHPLANE_BACKEND_"


def backend_variable(service: str) -> str:
    """The variable announcing a TCP backend: its name upper-cased, every other character ``_``.

    ``echo.tcp.svc.cluster.local`` → ``MESHPLANE_BACKEND_ECHO_TCP_SVC_CLUSTER_LOCAL_ADDR``.
    """
    word = "".join(c if c.isascii() and c.isalnum() else "_" for c in service.upper())
    return f"{BACKEND_PREFIX}{word}_ADDR"


def backend_environment(ports: SidecarPorts) -> dict[str, str]:
    """The app's variables for its TCP backends (two services spelling one name: first wins)."""
    found: dict[str, str] = {}
    for service, port in sorted(ports.tcp.items()):
        found.setdefault(backend_variable(service), f"{LOOPBACK}:{port}")
    return found


def metadata(
    replica: str,
    ports: SidecarPorts,
    app_ports: Mapping[int, int],
    *,
    intercepted: bool = False,
    bind: str | None = None,
) -> dict[str, Any]:
    """The node metadata the translator and the xDS cache read (JSON object keys are strings).

    ``intercepted``: the replica runs behind proxy-init's iptables rules (``--isolation
    netns``), so the sidecar asks for App Mesh's layout instead of its own ports, and for
    its callees' registered endpoints only: every replica there registers its pod address
    once ready, whereas a DNS cluster would resolve a hosts-file entry written before the
    replica listens (and Envoy re-reads a hosts file only once a minute).

    ``bind``: a gateway's Envoy in a network namespace of its own (``--isolation netns``).
    App Mesh put no proxyinit in front of gateways, so it binds its listener ports (and its
    egress) itself at its pod address, where the host reaches it over the bridge, and it
    reaches the replicas through registered endpoints as the sidecars there do.
    """
    app = {str(listener): port for listener, port in sorted(app_ports.items())}
    if intercepted:
        netns = {"replica": replica, "interception": "iptables", "endpoints": "registered"}
        return {"meshplane": {**netns, "app": app}}
    facts: dict[str, Any] = {
        "replica": replica,
        "ingress": {str(listener): bound for listener, bound in sorted(ports.ingress.items())},
        "app": app,
        "egress": ports.egress,
        # Where Prometheus, ``top`` and the control plane read this sidecar's stats.
        **({"stats": ports.stats} if ports.stats else {}),
    }
    if ports.tcp:
        facts["tcp"] = dict(sorted(ports.tcp.items()))
    if bind is not None:
        facts.update(bind=bind, endpoints="registered")
    return {"meshplane": facts}


def process_spec(
    name: str,
    replica: str,
    binding: Binding,
    ports: SidecarPorts,
    app_ports: Mapping[int, int],
    xds: tuple[str, int],
    base_env: Mapping[str, str],
    log_level: str = "warning",
    *,
    credential: str | None = None,
    private: SidecarFiles | None = None,
    intercepted: bool = False,
    bind: str | None = None,
    delta: bool = False,
) -> ProcessSpec:
    """How to start the sidecar of ``replica`` (log prefix ``name``).

    ``credential`` goes on its ADS stream; with ``private`` files its admin interface is a
    0600 unix socket and its bootstrap a 0600 file (see the module docs). ``delta``: the
    sidecar asks for incremental ADS (``DELTA_GRPC``). ``intercepted`` and ``bind``: see
    :func:`metadata`.
    """
    announced = metadata(replica, ports, app_ports, intercepted=intercepted, bind=bind)
    if private is not None:
        # Where the control plane (on this machine) reads `proxy-config --envoy` from.
        announced["meshplane"]["admin"] = str(private.admin)
    config = envoy.bootstrap(
        node_id=binding.node_id,
        cluster=binding.node_id,
        xds_host=xds[0],
        xds_port=xds[1],
        admin_address=LOOPBACK,
        admin_port=ports.admin,
        metadata=announced,
        credential=credential,
        admin_pipe=private.admin if private is not None else None,
        stats_port=ports.stats or None,
        delta=delta,
    )
    env = dict(base_env)
    # The injector's variables, so operators who grep for them find them.
    env["APPMESH_RESOURCE_ARN"] = binding.node_id
    if not binding.is_gateway:
        env["APPMESH_VIRTUAL_NODE_NAME"] = binding.node_id
    if private is None:
        env["ENVOY_ADMIN_ACCESS_PORT"] = str(ports.admin)
        return ProcessSpec(name, envoy.command(config, log_level=log_level), env)
    env["ENVOY_ADMIN_ACCESS_PATH"] = str(private.admin)
    bootstrap = envoy.write_config(private.bootstrap, config)
    return ProcessSpec(name, envoy.command(bootstrap, log_level=log_level), env)


@dataclasses.dataclass(frozen=True)
class SidecarFiles:
    """Where one sidecar's private files live: its admin socket and its bootstrap."""

    admin: Path
    bootstrap: Path

    @classmethod
    def in_directory(cls, directory: Path, number: int) -> SidecarFiles:
        """The files of the ``number``-th sidecar (short names: a socket path is <108 bytes)."""
        return cls(directory / f"{number}.admin", directory / f"{number}.envoy.json")
