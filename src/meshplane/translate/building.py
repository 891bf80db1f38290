"""The entry point: one mesh snapshot and one sidecar identity in, Envoy resources out.

A pure function: no I/O, no clock, no globals; the same inputs always give
the same resources in the same order. Broken input never raises: the broken
piece is skipped, the reason lands in :attr:`EnvoyResources.warnings`, and
the rest is published, so one bad route cannot stall a whole mesh's pushes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.model import extensions, kinds
from meshplane.model import specs_generated as g
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot, Typed
from meshplane.translate import (
    cloudmap,
    clusters,
    coverage,
    dependencies,
    diagnostics,
    endpoints,
    gateways,
    identity,
    listeners,
    memo,
    names,
    plan,
    reuse,
    routes,
    specs,
    tls,
)
from meshplane.translate.identity import NodeIdentity

RouteConfig: TypeAlias = route_pb2.RouteConfiguration | routes.SerializedRouteConfiguration
"""A route configuration as built: a message, or (from shared pieces) its wire bytes."""


@dataclasses.dataclass(frozen=True, eq=False)
class EnvoyResources:
    """Everything one sidecar is sent, each tuple sorted by resource name.

    Equal when the resources, warnings and secrets are (route configurations compared
    as messages, however they were built).
    """

    listeners: tuple[listener_pb2.Listener, ...] = ()
    routes_as_built: tuple[RouteConfig, ...] = ()
    """The route configurations as the translation made them; the sync stage sends the
    serialized ones' bytes as they are. :attr:`route_configurations` has them all as
    messages."""
    clusters: tuple[cluster_pb2.Cluster, ...] = ()
    cluster_load_assignments: tuple[endpoint_pb2.ClusterLoadAssignment, ...] = ()
    warnings: tuple[diagnostics.Warning, ...] = ()
    """Why pieces were skipped, in the order they were met."""
    secrets: tuple[tls.SecretRequest, ...] = ()
    """The SDS secrets the resources name, sorted by name: the control plane serves them."""
    reads: dependencies.Reads = dataclasses.field(default_factory=dependencies.Reads, compare=False)
    """What the translation looked up: a change elsewhere cannot alter these resources."""

    @functools.cached_property
    def route_configurations(self) -> tuple[route_pb2.RouteConfiguration, ...]:
        """Every route configuration as a message, sorted by name (serialized ones parsed)."""
        return tuple(
            r.message() if isinstance(r, routes.SerializedRouteConfiguration) else r
            for r in self.routes_as_built
        )

    def _compared(self) -> tuple[object, ...]:
        return (
            self.listeners,
            self.route_configurations,
            self.clusters,
            self.cluster_load_assignments,
            self.warnings,
            self.secrets,
        )

    def __eq__(self, other: object) -> bool:
        """Same resources (route configurations as messages), warnings and secrets."""
        if not isinstance(other, EnvoyResources):
            return NotImplemented
        return self._compared() == other._compared()

    __hash__ = None  # type: ignore[assignment]  # messages inside are unhashable


T = TypeVar("T")


def _ordered(found: Mapping[str, T]) -> tuple[T, ...]:
    """Values sorted by their names."""
    return tuple(map(found.__getitem__, sorted(found)))


@dataclasses.dataclass
class _Collected:
    """Resources gathered while building, keyed by name (the first one wins)."""

    listeners: dict[str, listener_pb2.Listener] = dataclasses.field(default_factory=dict)
    routes: dict[str, RouteConfig] = dataclasses.field(default_factory=dict)
    clusters: dict[str, cluster_pb2.Cluster] = dataclasses.field(default_factory=dict)
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment] = dataclasses.field(
        default_factory=dict
    )
    warnings: plan.Warnings = dataclasses.field(default_factory=list)
    secrets: dict[str, tls.SecretRequest] = dataclasses.field(default_factory=dict)
    file_sans: tls.FileSans | None = None
    """Reads a certificate file's SANs (the sync stage, on the control plane's machine)."""

    def warn(self, node: NodeIdentity, code: str, message: str) -> None:
        """Record a warning about the sidecar's own resource."""
        self.warnings.append(diagnostics.Warning(node.node_id, code, f"{node.node_id}: {message}"))

    def freeze(self, reads: dependencies.Reads | None = None) -> EnvoyResources:
        """Sort by name and seal (with what the translation read, when known)."""
        return EnvoyResources(
            reads=reads if reads is not None else dependencies.Reads(),
            listeners=_ordered(self.listeners),
            routes_as_built=_ordered(self.routes),
            clusters=_ordered(self.clusters),
            cluster_load_assignments=_ordered(self.assignments),
            warnings=tuple(self.warnings),
            secrets=_ordered(self.secrets),
        )


def build(
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    shared: reuse.SharedTranslations | None = None,
    *,
    file_sans: tls.FileSans | None = None,
) -> EnvoyResources:
    """Translate the mesh as seen by one sidecar into Envoy resources, noting what it read.

    ``shared`` (one per mesh, kept by the caller across proxies and revisions) lends
    pieces other proxies' translations already built; the result is the same without it.
    ``file_sans`` (optional) reads the SANs of a target's ``file`` certificate, so a SAN
    mismatch with one is said too; it changes warnings only, never the resources.
    """
    recorder = dependencies.Recorder(snapshot)
    pieces = shared.using(snapshot, recorder) if shared is not None else None
    return _build(recorder.snapshot, node, pieces, file_sans).freeze(recorder.reads())


def _build(
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    pieces: reuse.Reuse | None = None,
    file_sans: tls.FileSans | None = None,
) -> _Collected:
    """The translation proper (``snapshot`` may be a recording view), not yet sealed."""
    out = _Collected(file_sans=file_sans)
    if node.mesh != snapshot.name:
        out.warn(node, "wrong-mesh", f"snapshot is of mesh {snapshot.name}; nothing built")
        return out
    if node.kind == kinds.VIRTUAL_NODE.key:
        virtual_node = snapshot.virtual_nodes.get(node.name)
        if virtual_node is None:
            out.warn(node, "node-not-found", f"VirtualNode {node.name} not found; nothing built")
            return out
        _warn_untranslated(out, virtual_node.key, "VirtualNode", node.name, virtual_node.spec)
        own_map = cloudmap.service_of(virtual_node.spec)
        if own_map is not None:
            out.warnings.append(
                diagnostics.of(
                    virtual_node.key, "cloudmap-emulated", cloudmap.note(node.name, own_map)
                )
            )
        _add_ingress(out, snapshot, node, virtual_node)
        backends = [
            entry.virtual_service.virtual_service_name
            for entry in virtual_node.spec.backends or ()
            if entry.virtual_service is not None
        ]
        egress = plan.plan_egress(snapshot, backends, out.warnings, pieces)
        defaults = virtual_node.spec.backend_defaults
        default_policy = policy_tls(defaults.client_policy if defaults else None)
        policies: dict[str, tls.ClientTls | None] = {
            entry.virtual_service.virtual_service_name: policy_tls(
                entry.virtual_service.client_policy
            )
            or default_policy
            for entry in virtual_node.spec.backends or ()
            if entry.virtual_service is not None
        }
        _add_egress(out, snapshot, node, egress, virtual_node.spec.logging, policies, pieces)
    else:
        gateway = snapshot.virtual_gateways.get(node.name)
        if gateway is None:
            out.warn(
                node, "gateway-not-found", f"VirtualGateway {node.name} not found; nothing built"
            )
            return out
        _warn_untranslated(out, gateway.key, "VirtualGateway", node.name, gateway.spec)
        for route in snapshot.gateway_routes.get(node.name, {}).values():
            _warn_untranslated(out, route.key, "GatewayRoute", route.name, route.spec)
        targets, keeps_host = _add_gateway_ingress(out, snapshot, node, gateway)
        egress = plan.plan_egress(snapshot, targets, out.warnings, pieces)
        gateway_defaults = gateway.spec.backend_defaults
        gateway_policy = policy_tls(gateway_defaults.client_policy if gateway_defaults else None)
        _add_egress(
            out,
            snapshot,
            node,
            egress,
            gateway.spec.logging,
            dict.fromkeys(targets, gateway_policy),
            pieces,
            kept_host_header=gateways.KEPT_HOST_HEADER if keeps_host else None,
        )
    return out


def policy_tls(
    policy: g.ClientPolicy | g.VirtualGatewayClientPolicy | None,
) -> tls.ClientTls | None:
    """A client policy's ``tls`` member."""
    return policy.tls if policy is not None else None


def discovery_name(spec: g.VirtualNodeSpec) -> str | None:
    """A node's service-discovery name: what its certificate's SAN must match (§3.6)."""
    discovery = spec.service_discovery
    if discovery is None:
        return None
    if discovery.dns is not None:
        return discovery.dns.hostname
    if discovery.aws_cloud_map is not None:
        cloud_map = discovery.aws_cloud_map
        return f"{cloud_map.service_name}.{cloud_map.namespace_name}"
    return None


def _server_tls(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    listener: specs.Listener,
    hostname: str | None,
) -> tls.ServerTls | bool | None:
    """One inbound listener's TLS (``False``: skip it); automatic mTLS for virtual nodes."""
    mode = extensions.mtls_of(snapshot.mesh.extensions)
    domain = node.trust_domain
    own = tls.spiffe_id(snapshot.name, node.kind, node.name, domain)
    auto = None
    if mode is not None and node.kind == kinds.VIRTUAL_NODE.key:
        auto = (mode, own, f"{tls.mesh_identities(domain)}{snapshot.name}/")

    def warn(code: str, message: str) -> None:
        out.warn(node, code, f"listener {listener.port}: {message}")

    return tls.server_tls(
        listener.tls,
        own=own,
        hostname=hostname,
        auto=auto,
        secrets=out.secrets,
        warn=warn,
        domain=domain,
    )


def _warn_untranslated(
    out: _Collected, key: ResourceKey, resource: str, name: str, spec: Any
) -> None:
    """A warning per accepted member of the sidecar's own resources that changes nothing.

    They reach ``proxy-status`` notes like every translation warning (see
    :mod:`meshplane.translate.coverage`).
    """
    for path, note in _untranslated(spec)(resource):
        out.warnings.append(
            diagnostics.of(
                key,
                "field-not-translated",
                f"{resource} {name}: {path} is accepted but not translated: {note}",
            )
        )


@memo.IdentityCache
def _untranslated(spec: Any) -> Callable[[str], tuple[tuple[str, str], ...]]:
    """``coverage.untranslated`` of one spec object, remembered per spec.

    A proxy's own spec is walked again for every change that reaches the proxy.
    """
    wire = spec.to_wire()
    found: dict[str, tuple[tuple[str, str], ...]] = {}

    def of(resource: str) -> tuple[tuple[str, str], ...]:
        if resource not in found:
            found[resource] = tuple(coverage.untranslated(resource, wire))
        return found[resource]

    return of


def _add_gateway_ingress(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    gateway: Typed[g.VirtualGatewaySpec],
) -> tuple[list[str], bool]:
    """Each gateway listener with its gateway routes; returns targets and whether Host is kept.

    The flag is true when a route keeps the client's Host: the egress side then restores
    it (see :mod:`meshplane.translate.gateways`).

    The model allows gateway listeners only http, http2 and grpc, so each one
    gets an HTTP connection manager.
    """
    gateway_listeners = specs.listeners(gateway.spec)
    logging = gateway.spec.logging
    several = len(gateway_listeners) > 1
    targets: list[str] = []
    routed = [
        (listener, gateways.routes_for(snapshot, node.name, listener, out.warnings))
        for listener in gateway_listeners
    ]
    keeps_host = any(gateways.keeps_any_host(found) for _, found in routed)
    gateways.warn_unserved(
        snapshot,
        node.name,
        {route.name for _, found in routed for route in found},
        {(listener.protocol, listener.port) for listener in gateway_listeners},
        out.warnings,
    )
    for listener, gateway_routes in routed:
        cluster = names.self_redirect_cluster(
            snapshot.name,
            node.name,
            listener.protocol,
            node.egress_port,
            listener.port if several else None,
        )
        out.clusters[cluster] = clusters.build_local_cluster(
            cluster, listener, (node.bind_address, node.egress_port)
        )
        targets.extend(route.service for route in gateway_routes)
        route_config = names.ingress_route_config(listener.protocol, listener.port)
        out.routes[route_config] = gateways.build_ingress_route_config(
            route_config, cluster, gateway_routes, keeps_host=keeps_host
        )
        bind_port = node.ingress_port(listener.port)
        name = names.ingress_listener(node.bind_address, bind_port)
        manager = listeners.http_connection_manager(
            "ingress", route_config, protocol=listener.protocol, logging=logging
        )
        server = _server_tls(out, snapshot, node, listener, None)
        if server is False:
            continue
        secured = {listener.port: server} if isinstance(server, tls.ServerTls) else {}
        out.listeners[name] = listeners.build_ingress_listener(
            name, node.bind_address, bind_port, [(listener, manager)], secured
        )
    return targets, keeps_host


def _add_ingress(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    virtual_node: Typed[g.VirtualNodeSpec],
) -> None:
    """One local cluster per listener; inbound listeners grouped by the port they bind."""
    node_listeners = specs.listeners(virtual_node.spec)
    logging = virtual_node.spec.logging
    several = len(node_listeners) > 1
    bound: dict[int, list[tuple[specs.Listener, listener_components_pb2.Filter]]] = {}
    secured: dict[int, tls.ServerTls] = {}
    hostname = discovery_name(virtual_node.spec)
    for listener in node_listeners:
        bind_port = node.ingress_port(listener.port)
        if bind_port == node.egress_port:
            out.warn(
                node,
                "listener-binds-egress-port",
                f"listener {listener.port} would bind the egress port {bind_port}; skipped",
            )
            continue
        server = _server_tls(out, snapshot, node, listener, hostname)
        if server is False:
            continue
        if isinstance(server, tls.ServerTls):
            secured[listener.port] = server
        cluster = names.local_cluster(snapshot.name, node.name, listener.protocol, listener.port)
        out.clusters[cluster] = clusters.build_local_cluster(
            cluster, listener, node.app_address(listener.port)
        )
        stat_prefix = names.ingress_stat_prefix(listener.protocol, listener.port, several=several)
        if listener.is_http:
            route_config = names.ingress_route_config(listener.protocol, listener.port)
            out.routes[route_config] = routes.build_ingress_route_config(
                route_config, cluster, listener.timeouts
            )
            network_filter = listeners.http_connection_manager(
                stat_prefix, route_config, protocol=listener.protocol, logging=logging
            )
        else:
            network_filter = listeners.tcp_proxy(
                stat_prefix, [(cluster, 1)], idle_ms=listener.timeouts.idle_ms, logging=logging
            )
        bound.setdefault(bind_port, []).append((listener, network_filter))
    for bind_port, chains in bound.items():
        name = names.ingress_listener(node.bind_address, bind_port)
        out.listeners[name] = listeners.build_ingress_listener(
            name,
            node.bind_address,
            bind_port,
            chains,
            secured,
            by_destination_port=intercepted(node),
        )


def _add_egress(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    egress: plan.EgressPlan,
    logging: specs.Logging | None,
    policies: Mapping[str, tls.ClientTls | None],
    pieces: reuse.Reuse | None = None,
    *,
    kept_host_header: str | None = None,
) -> None:
    """The egress listener, its route configuration(s), and every target's cluster.

    ``policies`` holds the caller's client policy TLS per backend service; a
    target's cluster is called the way the service that reaches it says.
    ``kept_host_header`` comes from a gateway (``defaultTargetHostname: DISABLED``); gateways
    are never intercepted, so only the local-mode egress uses it.
    """
    if intercepted(node):
        egress = _without_shared_tcp_ports(out, snapshot, egress)
        _add_intercepted_egress(out, snapshot, node, egress, logging, pieces)
    else:
        _add_proxy_egress(out, snapshot, node, egress, logging, kept_host_header, pieces)
    discovery = node.discovery
    shareable = pieces is not None and extensions.mtls_of(snapshot.mesh.extensions) is None
    services = {h.service for h in egress.hosts} | {t.service for t in egress.tcp}
    if pieces is not None and shareable and all(policies.get(s) is None for s in services):
        # No caller TLS anywhere: every target's cluster comes from its services' shared
        # pieces; warnings are replayed per target, in target order, as built below.
        blocks = [
            pieces.piece(
                ("service-targets", service, discovery),
                functools.partial(_service_targets, snapshot, pieces, service, discovery),
                out.warnings,
            )
            for service in sorted(services)
        ]
        if all(block.plain for block in blocks):
            # Every target shared, none warned, no TCP backend (whose ports may be
            # dropped): the proxy's targets are exactly its services' targets, so each
            # service's clusters go in as one block (freeze sorts them by name).
            for block in blocks:
                out.clusters.update(block.clusters)
                out.assignments.update(block.assignments)
            return
        shared: dict[plan.Target, _SharedTarget] = {}
        for block in blocks:
            shared.update(block.targets)
        for target in egress.targets:
            found, warnings = shared[target]
            out.warnings.extend(warnings)
            if found is None:
                _add_target_cluster(out, snapshot, node, target, None, discovery=discovery)
                continue
            cluster, assignment = found
            out.clusters[cluster.name] = cluster
            if assignment is not None:
                out.assignments[assignment.cluster_name] = assignment
        return
    reached_by: dict[plan.Target, set[str]] = {}
    for host in egress.hosts:
        for route in host.routes:
            for reached in (*route.targets, *((route.mirror,) if route.mirror else ())):
                reached_by.setdefault(reached.target, set()).add(host.service)
    for tcp in egress.tcp:
        for reached in tcp.targets:
            reached_by.setdefault(reached.target, set()).add(tcp.service)
    for target in egress.targets:
        reaching = sorted(reached_by.get(target, ()))
        policy = _target_policy(out, node, target, reaching, policies)
        if pieces is not None and shareable and policy is None:
            # No TLS chosen by the caller: the target's cluster is every caller's (unless
            # the target's own listener has TLS, which names the caller: built per caller).
            found_target = pieces.piece(
                ("target", target, discovery),
                functools.partial(shared_target, snapshot, target, discovery),
                out.warnings,
            )
            if found_target is not None:
                cluster, assignment = found_target
                out.clusters[cluster.name] = cluster
                if assignment is not None:
                    out.assignments[assignment.cluster_name] = assignment
                continue
        _add_target_cluster(out, snapshot, node, target, policy, discovery=discovery)


TargetResources = tuple[cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment | None]
_SharedTarget = tuple[TargetResources | None, tuple[diagnostics.Warning, ...]]
"""A target's shared cluster and assignment (``None``: built per caller) and its warnings."""


class _ServiceTargets(NamedTuple):
    """One service's targets with their shared resources, and those resources by name.

    A tuple, so :mod:`meshplane.sync.encodings` finds the messages inside.
    """

    targets: dict[plan.Target, _SharedTarget]
    clusters: dict[str, cluster_pb2.Cluster]
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment]
    plain: bool
    """Every target shared and without warnings, and the service has no TCP backend:
    a caller may take :attr:`clusters` and :attr:`assignments` as they are."""


def _service_targets(
    snapshot: MeshSnapshot,
    pieces: reuse.Reuse,
    service: str,
    discovery: str,
    _warnings: plan.Warnings,
) -> _ServiceTargets:
    """Every target of one service's plan with its shared resources and their warnings.

    Built from the shared plan and target pieces, looked up inside, so the entry
    depends on all they read; the warnings are kept per target, not recorded here.
    """
    found = pieces.piece(
        ("service", service), functools.partial(plan.service_plan, snapshot, service), []
    )
    targets: set[plan.Target] = set()
    plain = True
    for piece in found:
        if isinstance(piece, plan.HostPlan):
            for route in piece.routes:
                targets.update(t.target for t in route.targets)
                if route.mirror is not None:
                    targets.add(route.mirror.target)
        else:
            plain = False
            targets.update(t.target for t in piece.targets)
    result: dict[plan.Target, _SharedTarget] = {}
    clusters: dict[str, cluster_pb2.Cluster] = {}
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
    for target in targets:
        warnings: plan.Warnings = []
        resources = pieces.piece(
            ("target", target, discovery),
            functools.partial(shared_target, snapshot, target, discovery),
            warnings,
        )
        result[target] = (resources, tuple(warnings))
        if resources is None or warnings:
            plain = False
            continue
        cluster, assignment = resources
        clusters[cluster.name] = cluster
        if assignment is not None:
            assignments[assignment.cluster_name] = assignment
    return _ServiceTargets(result, clusters, assignments, plain)


def _add_proxy_egress(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    egress: plan.EgressPlan,
    logging: specs.Logging | None,
    kept_host_header: str | None,
    pieces: reuse.Reuse | None,
) -> None:
    """Local mode: the app's HTTP_PROXY is one HTTP chain; TCP ports get chains of their own.

    A virtual node's egress also terminates HTTP CONNECT for the mesh's services (clients
    honouring ``grpc_proxy``/``https_proxy`` tunnel through it), looping the tunnel back
    into the same listener; and each TCP backend the runtime gave a loopback port
    (``node.tcp_ports``) gets a listener of its own there, since without iptables the
    app cannot name a TCP backend any other way.
    """
    app_side = node.kind == kinds.VIRTUAL_NODE.key
    tunnel = names.tunnel_cluster(snapshot.name, node.name, node.egress_port) if app_side else None
    route_config = names.egress_route_config("http", node.egress_port)
    out.routes[route_config] = _egress_route_config(
        route_config,
        snapshot,
        egress.hosts,
        pieces,
        allow_all=egress.allow_all,
        kept_host_header=kept_host_header,
        tunnel_cluster=tunnel,
    )
    manager = listeners.http_connection_manager(
        "egress",
        route_config,
        protocol="http",
        logging=logging,
        forward_proxy=egress.allow_all,
        connect=tunnel is not None,
    )
    tcp_chains = _tcp_chains(out, snapshot, egress.tcp, logging)
    name = names.egress_listener(node.bind_address, node.egress_port)
    out.listeners[name] = listeners.build_egress_listener(
        name, node.bind_address, node.egress_port, manager, tcp_chains
    )
    if tunnel is not None and egress.hosts:
        loopback = clusters.build_static_cluster(tunnel, (node.bind_address, node.egress_port))
        out.clusters[loopback.name] = loopback
    for tcp_plan, proxy in tcp_chains:
        port = node.tcp_ports.get(tcp_plan.service)
        if port is None:
            continue
        tcp_name = names.tcp_backend_listener(tcp_plan.service, port)
        out.listeners[tcp_name] = listeners.build_tcp_backend_listener(
            tcp_name, node.bind_address, port, proxy
        )
    if egress.allow_all:
        passthrough = clusters.build_allow_all_cluster(snapshot.name)
        out.clusters[passthrough.name] = passthrough


def _egress_route_config(
    name: str,
    snapshot: MeshSnapshot,
    hosts: Sequence[plan.HostPlan],
    pieces: reuse.Reuse | None,
    *,
    allow_all: bool,
    kept_host_header: str | None = None,
    tunnel_cluster: str | None = None,
) -> RouteConfig:
    """An egress route configuration: with a shared table, built as bytes from its pieces."""
    wire = shared_routes_wire(snapshot, pieces, kept_host_header)
    if wire is not None:
        return routes.serialized_egress_route_config(
            name,
            snapshot.name,
            hosts,
            allow_all=allow_all,
            host_routes_wire=wire,
            tunnel_cluster=tunnel_cluster,
        )
    return routes.build_egress_route_config(
        name,
        snapshot.name,
        hosts,
        allow_all=allow_all,
        kept_host_header=kept_host_header,
        tunnel_cluster=tunnel_cluster,
    )


def _add_intercepted_egress(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    egress: plan.EgressPlan,
    logging: specs.Logging | None,
    pieces: reuse.Reuse | None,
) -> None:
    """Behind iptables: one chain per original destination port, as App Mesh's sidecars.

    Each HTTP-family port gets an HTTP connection manager with its own route
    configuration ``rds_egress_<proto>_<port>`` holding every backend's virtual
    hosts on that port (codec AUTO serves HTTP/1.1, h2c and gRPC alike); each
    TCP port a tcp_proxy. Under ALLOW_ALL each route configuration ends in the
    passthrough virtual host, and a default chain tcp-proxies every other port
    to its original destination.
    """
    by_port: dict[int, list[plan.HostPlan]] = {}
    for host in egress.hosts:
        by_port.setdefault(host.port, []).append(host)
    chains: list[tuple[str, int, listener_components_pb2.Filter]] = []
    for port, hosts in sorted(by_port.items()):
        protocols = {host.protocol for host in hosts}
        protocol = protocols.pop() if len(protocols) == 1 else "http"
        route_config = names.egress_route_config(protocol, port)
        out.routes[route_config] = _egress_route_config(
            route_config, snapshot, hosts, pieces, allow_all=egress.allow_all
        )
        manager = listeners.http_connection_manager(
            "egress", route_config, protocol=protocol, logging=logging
        )
        chains.append((f"{protocol}_{port}", port, manager))
    for tcp_plan, proxy in _tcp_chains(out, snapshot, egress.tcp, logging):
        chains.append((f"tcp_{tcp_plan.port}", tcp_plan.port, proxy))
    chains.sort(key=lambda chain: chain[1])
    default = None
    if egress.allow_all:
        passthrough = clusters.build_original_dst_cluster(snapshot.name)
        out.clusters[passthrough.name] = passthrough
        default = listeners.tcp_proxy(
            "egress.passthrough",
            [(passthrough.name, 1)],
            idle_ms=specs.DEFAULT_IDLE_MS,
            logging=logging,
        )
    if not chains and default is None:
        # Nothing may leave (DROP_ALL, no backends): no listener, so redirected connections
        # are refused, as App Mesh's "no matching filter chain" closes them (and Envoy
        # refuses a listener without chains).
        return
    name = names.egress_listener(node.bind_address, node.egress_port)
    out.listeners[name] = listeners.build_intercepted_egress_listener(
        name, node.bind_address, node.egress_port, chains, default
    )


def _without_shared_tcp_ports(
    out: _Collected, snapshot: MeshSnapshot, egress: plan.EgressPlan
) -> plan.EgressPlan:
    """Drop (with a warning) each TCP backend on a port an HTTP backend already uses.

    Behind iptables the port is all the egress listener knows of a connection,
    so the two cannot share it (App Mesh #175); the HTTP side keeps it.
    """
    http_ports = {host.port for host in egress.hosts}
    kept = []
    for tcp_plan in egress.tcp:
        if tcp_plan.port not in http_ports:
            kept.append(tcp_plan)
            continue
        out.warnings.append(
            diagnostics.service(
                snapshot.name,
                tcp_plan.service,
                "tcp-port-shared-with-http",
                f"TCP backend {tcp_plan.service}:{tcp_plan.port}: an HTTP backend uses the "
                "same port, which interception cannot tell apart; skipped",
            )
        )
    return dataclasses.replace(egress, tcp=tuple(kept))


def _tcp_chains(
    out: _Collected,
    snapshot: MeshSnapshot,
    tcp_plans: tuple[plan.TcpPlan, ...],
    logging: specs.Logging | None,
) -> list[tuple[plan.TcpPlan, listener_components_pb2.Filter]]:
    """A tcp_proxy per TCP backend port; a port whose weights are all 0 is skipped."""
    tcp_chains = []
    for tcp in tcp_plans:
        weighted = [
            (
                names.egress_cluster(
                    snapshot.name, t.target.node, t.target.protocol, t.target.port
                ),
                t.weight,
            )
            for t in tcp.targets
            if t.weight > 0
        ]
        if not weighted:
            out.warnings.append(
                diagnostics.service(
                    snapshot.name,
                    tcp.service,
                    "tcp-zero-weights",
                    f"TCP backend {tcp.service}:{tcp.port}: every weight is 0; skipped",
                )
            )
            continue
        proxy = listeners.tcp_proxy(
            f"egress.tcp.{tcp.port}", weighted, idle_ms=tcp.idle_ms, logging=logging
        )
        tcp_chains.append((tcp, proxy))
    return tcp_chains


def intercepted(node: NodeIdentity) -> bool:
    """Whether the sidecar gets App Mesh's intercepted layout (virtual nodes only).

    A virtual gateway binds its listener ports itself and gets no iptables
    rules (App Mesh injects no proxyinit for it), so it keeps its shape.
    """
    return node.intercepted and node.kind == kinds.VIRTUAL_NODE.key


def _target_policy(
    out: _Collected,
    node: NodeIdentity,
    target: plan.Target,
    services: list[str],
    policies: Mapping[str, tls.ClientTls | None],
) -> tls.ClientTls | None:
    """The client policy for a target; one cluster serves every service reaching it."""
    chosen = [policies.get(service) for service in services]
    applying = [p for p in chosen if tls.applies(p, target.port)]
    if (len(applying) != len(chosen) or len(set(applying)) > 1) and applying:
        out.warn(
            node,
            "tls-policy-conflict",
            f"VirtualNode {target.node} port {target.port} is reached through "
            f"{', '.join(services)} with different client policies; the TLS one of "
            f"{services[chosen.index(applying[0])]} is used for all",
        )
    return applying[0] if applying else None


def _warn_san_mismatch(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    target: plan.Target,
    policy: tls.ClientTls | None,
    upstream: tls.Upstream,
    *,
    automatic: bool,
) -> None:
    """Say why calls fail when the caller's SANs cannot match the target's certificate.

    The warning concerns the target (its resource is the target's node id), so
    ``proxy-status`` lists it under the backend's proxies as well as the caller's.
    """
    expected = tls.expected_sans(policy, target.port)
    presented = tls.presented_sans(
        upstream.tls, hostname=upstream.hostname, identity=upstream.identity if automatic else None
    )
    server = upstream.tls
    if (
        presented is None
        and expected
        and out.file_sans is not None
        and server is not None
        and server.mode != "DISABLED"
        and server.certificate.file is not None
    ):
        presented = out.file_sans(server.certificate.file.certificate_chain)
    if not tls.san_mismatch(expected, presented):
        return
    out.warnings.append(
        diagnostics.node(
            snapshot.name,
            target.node,
            "tls-san-mismatch",
            tls.mismatch_message(node.node_id, target.node, target.port, expected, presented or ()),
        )
    )


def shared_routes(
    snapshot: MeshSnapshot, pieces: reuse.Reuse | None, kept_host_header: str | None
) -> Callable[[plan.HostPlan], Sequence[route_components_pb2.Route]] | None:
    """A host's routes from the shared table (``None`` without one: built per caller).

    The entry is built from the service's shared plan, looked up again inside it so the
    entry depends on what that plan read (and is dropped with it).
    """
    if pieces is None:
        return None

    def build(host: plan.HostPlan, _warnings: plan.Warnings) -> list[route_components_pb2.Route]:
        planned = shared_host_plan(snapshot, pieces, host)
        return routes.build_host_routes(snapshot.name, planned, kept_host_header)

    def host_routes(host: plan.HostPlan) -> Sequence[route_components_pb2.Route]:
        key = ("routes", host.service, host.port, kept_host_header)
        return pieces.piece(key, functools.partial(build, host), [])

    return host_routes


def shared_host_plan(
    snapshot: MeshSnapshot, pieces: reuse.Reuse, host: plan.HostPlan
) -> plan.HostPlan:
    """``host``'s plan as its service's shared plan holds it, looked up inside a piece's build.

    The lookup records the plan piece's reads, so the entry being built depends on them
    (and is dropped with the plan).
    """
    found = pieces.piece(
        ("service", host.service),
        functools.partial(plan.service_plan, snapshot, host.service),
        [],  # the plan's warnings were recorded where it was planned
    )
    return next(h for h in found if isinstance(h, plan.HostPlan) and h.port == host.port)


def shared_routes_wire(
    snapshot: MeshSnapshot, pieces: reuse.Reuse | None, kept_host_header: str | None
) -> Callable[[plan.HostPlan], bytes] | None:
    """A host's shared routes serialized (a ``VirtualHost`` holding only them), shared too.

    Built from the routes piece, looked up inside so the entry depends on what it read
    and is dropped with it; ``None`` without a table.
    """
    routes_of = shared_routes(snapshot, pieces, kept_host_header)
    if pieces is None or routes_of is None:
        return None

    def build(host: plan.HostPlan, _warnings: plan.Warnings) -> bytes:
        holder = route_components_pb2.VirtualHost(routes=routes_of(host))
        serialized: bytes = holder.SerializeToString(deterministic=True)
        return serialized

    def host_routes_wire(host: plan.HostPlan) -> bytes:
        key = ("routes-wire", host.service, host.port, kept_host_header)
        return pieces.piece(key, functools.partial(build, host), [])

    return host_routes_wire


def shared_target(
    snapshot: MeshSnapshot, target: plan.Target, discovery: str, warnings: plan.Warnings
) -> tuple[cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment | None] | None:
    """A target's cluster and load assignment when no caller's TLS touches them, else ``None``.

    Called without a client policy and without automatic mTLS; the target listener's own
    TLS is the last caller-dependent input (its SANs and certificates name the caller).
    """
    virtual_node = snapshot.virtual_nodes[target.node]
    listener = next(
        entry for entry in specs.listeners(virtual_node.spec) if entry.port == target.port
    )
    if listener.tls is not None:
        return None
    out = _Collected(warnings=warnings)
    caller = NodeIdentity(mesh=snapshot.name, kind=kinds.VIRTUAL_NODE.key, name=target.node)
    _add_target_cluster(out, snapshot, caller, target, None, discovery=discovery)
    name = names.egress_cluster(snapshot.name, target.node, target.protocol, target.port)
    return out.clusters[name], out.assignments.get(name)


def _add_target_cluster(
    out: _Collected,
    snapshot: MeshSnapshot,
    node: NodeIdentity,
    target: plan.Target,
    policy: tls.ClientTls | None,
    *,
    discovery: str,
) -> None:
    """A target listener's cluster, and its load assignment when it is served over EDS.

    ``discovery`` is the caller's (:attr:`NodeIdentity.discovery`): an intercepted caller
    on Kubernetes gets a DNS node's DNS cluster, as App Mesh sent it, even when endpoints
    are registered for it; local mode prefers registered endpoints, which its replicas
    always have; a caller in ``up --isolation netns`` gets registered endpoints only, so
    a replica takes traffic once it is ready and not before.
    """
    virtual_node = snapshot.virtual_nodes[target.node]
    listener = next(
        entry for entry in specs.listeners(virtual_node.spec) if entry.port == target.port
    )
    name = names.egress_cluster(snapshot.name, target.node, target.protocol, target.port)
    domain = node.trust_domain
    own = tls.spiffe_id(snapshot.name, node.kind, node.name, domain)
    automatic = extensions.mtls_of(snapshot.mesh.extensions) is not None
    upstream = tls.Upstream(
        port=target.port,
        tls=listener.tls,
        hostname=discovery_name(virtual_node.spec),
        identity=tls.spiffe_id(snapshot.name, kinds.VIRTUAL_NODE.key, target.node, domain),
    )

    def warn(code: str, message: str) -> None:
        out.warn(node, code, f"calls to {target.node} port {target.port}: {message}")

    upstream_tls = tls.client_tls(
        policy,
        upstream,
        own=own,
        auto=own if automatic else None,
        secrets=out.secrets,
        warn=warn,
        domain=domain,
    )
    _warn_san_mismatch(out, snapshot, node, target, policy, upstream, automatic=automatic)
    found = virtual_node.spec.service_discovery
    dns = found.dns if found is not None else None
    cloud_map = found.aws_cloud_map if found is not None else None
    if cloud_map is not None:  # the instances of its Cloud Map service its attributes match
        registered = cloudmap.instances(snapshot, virtual_node)
    else:
        registered = snapshot.endpoints.get(target.node, ())
    use_eds = (
        cloud_map is not None
        or discovery == identity.REGISTERED_ONLY
        or (bool(registered) and not (discovery == identity.DNS_FIRST and dns is not None))
    )
    if not use_eds and dns is None:
        out.warnings.append(
            diagnostics.node(
                snapshot.name,
                target.node,
                "no-discovery",
                f"VirtualNode {target.node} has no DNS service discovery and no registered "
                "endpoints; its cluster stays empty",
            )
        )
        use_eds = True
    mesh_discovery = snapshot.mesh.spec.service_discovery
    preference = (
        (dns.ip_preference if dns is not None else None)
        or (cloud_map.ip_preference if cloud_map is not None else None)
        or (mesh_discovery.ip_preference if mesh_discovery is not None else None)
    )
    out.clusters[name] = clusters.build_egress_cluster(
        name,
        listener,
        found,
        use_eds=use_eds,
        ip_preference=preference,
        upstream_tls=upstream_tls,
    )
    if use_eds:
        out.assignments[name] = endpoints.build_load_assignment(name, registered, target.port)
