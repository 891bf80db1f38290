"""What a sidecar's outbound side must do, decided in App Mesh terms before any proto.

A virtual node's backends are virtual services; each service is provided by a
virtual node (one route to it) or a virtual router (its routes, by priority).
The plan resolves those references against the snapshot and records every
piece it cannot use as a warning instead of failing: a missing service, a
route target that names no node, a route of the wrong type. The proto modules
(:mod:`.routes`, :mod:`.clusters`, :mod:`.listeners`) then turn the plan into
Envoy resources without consulting the snapshot's references again.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from meshplane.model import extensions, kinds
from meshplane.model import specs_generated as g
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot, Typed
from meshplane.translate import diagnostics, specs
from meshplane.translate.diagnostics import Warning
from meshplane.translate.specs import Timeouts

if TYPE_CHECKING:
    from meshplane.translate.reuse import Reuse

Warnings = list[Warning]
"""Where translation records what it skipped, in the order it was met."""


@dataclasses.dataclass(frozen=True, order=True)
class Target:
    """One listener of one virtual node: becomes one ``cds_egress_…`` cluster."""

    node: str
    protocol: str
    port: int


@dataclasses.dataclass(frozen=True)
class WeightedTarget:
    """A target with its relative weight (0 kept: Envoy accepts it, App Mesh keeps it)."""

    target: Target
    weight: int


@dataclasses.dataclass(frozen=True)
class RoutePlan:
    """One Envoy route: an App Mesh match, where it goes, its timeouts and retries."""

    name: str
    route_type: str
    """``httpRoute``, ``http2Route`` or ``grpcRoute``."""
    match: g.HttpRouteMatch | g.GrpcRouteMatch
    targets: tuple[WeightedTarget, ...]
    timeouts: Timeouts
    retry_policy: g.HttpRetryPolicy | g.GrpcRetryPolicy | None
    """``None`` means App Mesh's invisible default retry policy."""
    weighted: bool = True
    """False for a service provided by a node: one cluster, no weights."""
    mirror: WeightedTarget | None = None
    """Where a copy of ``weight`` % of the requests goes (the ``meshplane.dev/mirror`` tag)."""

    @property
    def total_weight(self) -> int:
        """Sum of weights; 0 means Envoy would NACK a weighted_clusters action."""
        return sum(t.weight for t in self.targets)


@dataclasses.dataclass(frozen=True)
class HostPlan:
    """One virtual host: a virtual service on one of its client-facing ports."""

    name: str
    service: str
    port: int
    protocol: str
    domains: tuple[str, ...]
    routes: tuple[RoutePlan, ...]


@dataclasses.dataclass(frozen=True)
class TcpPlan:
    """A TCP backend port: tcp_proxy to weighted clusters."""

    service: str
    port: int
    targets: tuple[WeightedTarget, ...]
    idle_ms: int


@dataclasses.dataclass(frozen=True)
class EgressPlan:
    """Everything the outbound side serves, sorted, plus the clusters it needs."""

    hosts: tuple[HostPlan, ...]
    tcp: tuple[TcpPlan, ...]
    allow_all: bool

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target any route or tcp proxy sends to, once, sorted."""
        # Keyed by the order of Target's fields as plain tuples: hashing and comparing
        # those is much cheaper than the dataclass's generated __hash__ and __lt__ on
        # the few hundred targets of a big proxy (equal targets are interchangeable).
        found: dict[tuple[str, str, int], Target] = {}
        for host in self.hosts:
            for route in host.routes:
                for weighted in route.targets:
                    target = weighted.target
                    found[target.node, target.protocol, target.port] = target
                if route.mirror:
                    target = route.mirror.target
                    found[target.node, target.protocol, target.port] = target
        for tcp in self.tcp:
            for weighted in tcp.targets:
                target = weighted.target
                found[target.node, target.protocol, target.port] = target
        return tuple(found[key] for key in sorted(found))


def allows_all(snapshot: MeshSnapshot) -> bool:
    """The mesh's egressFilter: ALLOW_ALL passes unknown hosts; DROP_ALL (default) does not."""
    egress = snapshot.mesh.spec.egress_filter
    return egress is not None and egress.type == "ALLOW_ALL"


def plan_egress(
    snapshot: MeshSnapshot,
    services: Iterable[str],
    warnings: Warnings,
    reuse: Reuse | None = None,
) -> EgressPlan:
    """Resolve the named backend services into virtual hosts and TCP proxies.

    With ``reuse``, each service's plan is taken from (or entered into) the shared
    table: it is the same for every caller.
    """
    hosts: list[HostPlan] = []
    tcp: list[TcpPlan] = []
    mesh = snapshot.name
    for service_name in sorted(set(services)):
        if reuse is None:
            found = service_plan(snapshot, service_name, warnings)
        else:
            found = reuse.piece(
                ("service", service_name),
                functools.partial(service_plan, snapshot, service_name),
                warnings,
            )
        hosts.extend(h for h in found if isinstance(h, HostPlan))
        tcp.extend(t for t in found if isinstance(t, TcpPlan))
    return EgressPlan(
        hosts=_with_domains(hosts),
        tcp=_one_per_port(mesh, tcp, warnings),
        allow_all=allows_all(snapshot),
    )


KnownRoutes = Mapping[tuple[int, str], "RoutePlan | None"]
"""(router listener port, route name) → what planning that route on that HTTP listener
gave before (``None``: it does not apply there), for routes known not to have changed."""


def service_plan(
    snapshot: MeshSnapshot,
    service_name: str,
    warnings: Warnings,
    known: KnownRoutes | None = None,
) -> tuple[HostPlan | TcpPlan, ...]:
    """One backend service's virtual hosts and TCP proxies (none when it is unusable).

    ``known``: routes planned before whose inputs did not change — each taken as it is,
    its target nodes looked up again so the reads are the same (the sync stage, after a
    weight shift of one route of ten). Only valid when planning them warned about nothing.
    """
    mesh = snapshot.name
    service = snapshot.virtual_services.get(service_name)
    if service is None:
        message = f"VirtualService {service_name}: not found; backend skipped"
        warnings.append(diagnostics.service(mesh, service_name, "service-not-found", message))
        return ()
    provider = service.spec.provider
    if provider is not None and provider.virtual_node is not None:
        node_name = provider.virtual_node.virtual_node_name
        return tuple(_node_provided(snapshot, service_name, node_name, warnings))
    if provider is not None and provider.virtual_router is not None:
        router_name = provider.virtual_router.virtual_router_name
        return tuple(_router_provided(snapshot, service_name, router_name, warnings, known))
    message = f"VirtualService {service_name}: no provider; backend skipped"
    warnings.append(diagnostics.service(mesh, service_name, "service-no-provider", message))
    return ()


def _node_provided(
    snapshot: MeshSnapshot, service: str, node_name: str, warnings: Warnings
) -> list[HostPlan | TcpPlan]:
    """A service provided by a node: per listener, one route to that node's cluster."""
    node = snapshot.virtual_nodes.get(node_name)
    if node is None:
        message = (
            f"VirtualService {service}: provider VirtualNode {node_name} not found; backend skipped"
        )
        warnings.append(diagnostics.service(snapshot.name, service, "provider-not-found", message))
        return []
    found: list[HostPlan | TcpPlan] = []
    for listener in specs.listeners(node.spec):
        target = (WeightedTarget(Target(node_name, listener.protocol, listener.port), 100),)
        if not listener.is_http:
            found.append(TcpPlan(service, listener.port, target, listener.timeouts.idle_ms))
            continue
        grpc = listener.protocol == "grpc"
        route = RoutePlan(
            name=node_name,
            route_type="grpcRoute" if grpc else "httpRoute",
            match=g.GrpcRouteMatch() if grpc else g.HttpRouteMatch(prefix="/"),
            targets=target,
            timeouts=listener.timeouts,
            retry_policy=None,
            weighted=False,
        )
        found.append(HostPlan(service, service, listener.port, listener.protocol, (), (route,)))
    if not found:
        message = f"VirtualService {service}: provider VirtualNode {node_name} has no listeners"
        warnings.append(
            diagnostics.service(snapshot.name, service, "provider-no-listeners", message)
        )
    return found


def _router_provided(
    snapshot: MeshSnapshot,
    service: str,
    router_name: str,
    warnings: Warnings,
    known: KnownRoutes | None = None,
) -> list[HostPlan | TcpPlan]:
    """A service provided by a router: per router listener, its routes in priority order."""
    router = snapshot.virtual_routers.get(router_name)
    if router is None:
        message = (
            f"VirtualService {service}: provider VirtualRouter {router_name} not found; "
            "backend skipped"
        )
        warnings.append(diagnostics.service(snapshot.name, service, "provider-not-found", message))
        return []
    routes = snapshot.routes.get(router_name, {})
    router_listeners = specs.listeners(router.spec)
    found: list[HostPlan | TcpPlan] = []
    ordered = _in_match_order(routes.values())
    for listener in router_listeners:
        kept = known if known is not None and listener.is_http else None
        plans = [
            plan
            for route in ordered
            if (
                plan := _route(snapshot, router_name, route, listener, warnings)
                if kept is None or (listener.port, route.name) not in kept
                else _looked_up_again(snapshot, kept[(listener.port, route.name)])
            )
            is not None
        ]
        if listener.is_http:
            http = tuple(p for p in plans if isinstance(p, RoutePlan))
            found.append(HostPlan(service, service, listener.port, listener.protocol, (), http))
        else:
            found.extend(
                dataclasses.replace(p, service=service) for p in plans if isinstance(p, TcpPlan)
            )
    if not router_listeners:
        key = ResourceKey.of(kinds.VIRTUAL_ROUTER, snapshot.name, router_name)
        warnings.append(
            diagnostics.of(
                key,
                "router-no-listeners",
                f"VirtualRouter {router_name} has no listeners; {service} unreachable",
            )
        )
    return found


def _looked_up_again(snapshot: MeshSnapshot, plan: RoutePlan | None) -> RoutePlan | None:
    """A known route's plan, its nodes looked up as planning it did (see ``service_plan``).

    A route that warned about nothing found every target and mirror node it named.
    """
    if plan is not None:
        nodes = snapshot.virtual_nodes
        for target in plan.targets:
            nodes.get(target.target.node)
        if plan.mirror is not None:
            nodes.get(plan.mirror.target.node)
    return plan


def _in_match_order(routes: Iterable[Typed[g.RouteSpec]]) -> list[Typed[g.RouteSpec]]:
    """Priority ascending; then the more specific match; then the name, for determinism."""

    def key(route: Typed[g.RouteSpec]) -> tuple[int, int, str]:
        body = specs.route_body(route.spec)
        match = body[1].match if body else None
        return (specs.priority(route.spec), -specs.match_specificity(match), route.name)

    return sorted(routes, key=key)


@dataclasses.dataclass(frozen=True)
class _Where:
    """The route being planned, for its warnings."""

    key: ResourceKey
    text: str
    warnings: Warnings

    def warn(self, code: str, message: str) -> None:
        """Record ``message`` about this route, prefixed with its name as users read it."""
        self.warnings.append(diagnostics.of(self.key, code, f"{self.text}: {message}"))


def _route(
    snapshot: MeshSnapshot,
    router: str,
    route: Typed[g.RouteSpec],
    listener: specs.Listener,
    warnings: Warnings,
) -> RoutePlan | TcpPlan | None:
    """One route on one router listener, or ``None`` when it does not apply or is broken."""
    where = _Where(route.key, f"Route {route.name} of VirtualRouter {router}", warnings)
    body = specs.route_body(route.spec)
    if body is None:
        where.warn(
            "route-type-count", f"needs exactly one of {', '.join(specs.ROUTE_TYPES)}; skipped"
        )
        return None
    route_type, spec = body
    port = spec.match.port if spec.match is not None else None
    if port is not None and port != listener.port:
        return None
    is_tcp = isinstance(spec, g.TcpRoute)
    if is_tcp == listener.is_http:
        where.warn(
            "route-type-mismatch",
            f"{route_type} does not fit the {listener.protocol} listener "
            f"on port {listener.port}; skipped",
        )
        return None
    targets = _targets(snapshot, where, spec.action.weighted_targets, listener.port)
    if not targets:
        where.warn("route-no-targets", "no usable weightedTargets; skipped")
        return None
    timeouts = Timeouts.of(spec.timeout)
    if isinstance(spec, g.TcpRoute):
        return TcpPlan("", listener.port, targets, timeouts.idle_ms)
    plan = RoutePlan(
        name=route.name,
        route_type=route_type,
        match=spec.match,
        targets=targets,
        timeouts=timeouts,
        retry_policy=spec.retry_policy,
        mirror=_mirror(snapshot, where, route, listener.port),
    )
    if plan.total_weight == 0:
        where.warn("route-zero-weights", "every weightedTarget has weight 0; it answers 503")
    return plan


def _targets(
    snapshot: MeshSnapshot,
    where: _Where,
    weighted: tuple[g.WeightedTarget, ...],
    router_port: int,
) -> tuple[WeightedTarget, ...]:
    """The route's weighted targets that name an existing node listener."""
    found: list[WeightedTarget] = []
    for entry in weighted:
        node_name = entry.virtual_node
        node = snapshot.virtual_nodes.get(node_name)
        if node is None:
            where.warn(
                "target-not-found", f"target VirtualNode {node_name} not found; target skipped"
            )
            continue
        listener = _target_listener(node, entry.port, router_port)
        if listener is None:
            where.warn(
                "target-no-listener",
                f"target VirtualNode {node_name} has no listener for this route; target skipped",
            )
            continue
        target = Target(node_name, listener.protocol, listener.port)
        found.append(WeightedTarget(target, entry.weight))
    return tuple(found)


def _mirror(
    snapshot: MeshSnapshot, where: _Where, route: Typed[g.RouteSpec], router_port: int
) -> WeightedTarget | None:
    """The route's mirror target (meshplane's ``meshplane.dev/mirror`` tag), if usable."""
    mirror = extensions.mirror_of(route.extensions)
    if mirror is None:
        return None
    node = snapshot.virtual_nodes.get(mirror.node)
    listener = _target_listener(node, mirror.port, router_port) if node is not None else None
    if listener is None:
        where.warn(
            "mirror-unusable",
            f"mirror VirtualNode {mirror.node} not found or has no listener for this "
            "route; mirroring skipped",
        )
        return None
    return WeightedTarget(Target(mirror.node, listener.protocol, listener.port), mirror.percent)


def _target_listener(
    node: Typed[g.VirtualNodeSpec], port: int | None, router_port: int
) -> specs.Listener | None:
    """The target port: explicit, else the node's only listener, else the router's port."""
    listeners = specs.listeners(node.spec)
    by_port = {listener.port: listener for listener in listeners}
    if port is not None:
        return by_port.get(port)
    if len(listeners) == 1:
        return listeners[0]
    return by_port.get(router_port)


def _one_per_port(mesh: str, plans: list[TcpPlan], warnings: Warnings) -> tuple[TcpPlan, ...]:
    """TCP is routed by destination port alone, so one backend per port (App Mesh #195)."""
    kept: dict[int, TcpPlan] = {}
    for plan in plans:
        if plan.port in kept:
            message = (
                f"TCP port {plan.port} already serves "
                f"{kept[plan.port].service or 'a route'}; "
                f"{plan.service or 'another tcpRoute'} skipped"
            )
            warnings.append(diagnostics.service(mesh, plan.service, "tcp-port-taken", message))
            continue
        kept[plan.port] = plan
    return tuple(kept[port] for port in sorted(kept))


def _with_domains(hosts: list[HostPlan]) -> tuple[HostPlan, ...]:
    """Give each host its domains: ``name`` and ``name:port``, plus unambiguous short aliases.

    The bare name goes to one port only (80 when present, else the lowest),
    because Envoy rejects a domain listed by two virtual hosts.
    """
    ports: dict[str, list[int]] = {}
    for host in hosts:
        ports.setdefault(host.service, []).append(host.port)
    claims: dict[str, set[str]] = {}
    for service in ports:
        for alias in _aliases(service):
            claims.setdefault(alias, set()).add(service)
    result: list[HostPlan] = []
    for host in sorted(hosts, key=lambda h: (h.service, h.port)):
        service_ports = ports[host.service]
        bare_port = 80 if 80 in service_ports else min(service_ports)
        names = [host.service] + [
            a for a in _aliases(host.service) if claims[a] == {host.service} and a not in ports
        ]
        domains = [f"{n}:{host.port}" for n in names]
        if host.port == bare_port:
            domains = names + domains
        name = host_name(host.service, host.port, len(service_ports))
        # Made directly rather than with dataclasses.replace (per host, per proxy: hot).
        result.append(
            HostPlan(name, host.service, host.port, host.protocol, tuple(domains), host.routes)
        )
    return tuple(result)


def host_name(service: str, port: int, ports: int) -> str:
    """A virtual host's name: the service's, with the port when the service has ``ports`` > 1."""
    return service if ports == 1 else f"{service}_{port}"


KUBERNETES_SUFFIX = ".svc.cluster.local"


def _aliases(service: str) -> tuple[str, ...]:
    """Shorter names a pod would dial for a Kubernetes-style FQDN service name.

    ``vs-a.demos.svc.cluster.local`` is also reachable as ``vs-a.demos.svc``,
    ``vs-a.demos`` and ``vs-a`` (the walkthrough dials ``http://vs-echo-backend:80``).
    """
    if not service.endswith(KUBERNETES_SUFFIX):
        return ()
    short = service.removesuffix(KUBERNETES_SUFFIX)
    labels = short.split(".")
    if len(labels) != 2 or not all(labels):
        return ()
    return (f"{short}.svc", short, labels[0])
