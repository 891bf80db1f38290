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
from collections.abc import Iterable

from meshplane.model import extensions
from meshplane.model.snapshot import MeshSnapshot, Resource
from meshplane.translate import specs
from meshplane.translate.specs import Spec, Timeouts


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
    match: Spec
    targets: tuple[WeightedTarget, ...]
    timeouts: Timeouts
    retry_policy: Spec | None
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
        found = {wt.target for h in self.hosts for r in h.routes for wt in r.targets}
        found |= {r.mirror.target for h in self.hosts for r in h.routes if r.mirror}
        found |= {wt.target for t in self.tcp for wt in t.targets}
        return tuple(sorted(found))


def allows_all(snapshot: MeshSnapshot) -> bool:
    """The mesh's egressFilter: ALLOW_ALL passes unknown hosts; DROP_ALL (default) does not."""
    return bool(specs.member(snapshot.mesh.spec, "egressFilter", "type") == "ALLOW_ALL")


def plan_egress(snapshot: MeshSnapshot, services: Iterable[str], warnings: list[str]) -> EgressPlan:
    """Resolve the named backend services into virtual hosts and TCP proxies."""
    hosts: list[HostPlan] = []
    tcp: list[TcpPlan] = []
    for service_name in sorted(set(services)):
        service = snapshot.virtual_services.get(service_name)
        if service is None:
            warnings.append(f"VirtualService {service_name}: not found; backend skipped")
            continue
        node_name = specs.member(service.spec, "provider", "virtualNode", "virtualNodeName")
        router_name = specs.member(service.spec, "provider", "virtualRouter", "virtualRouterName")
        if isinstance(node_name, str):
            found = _node_provided(snapshot, service_name, node_name, warnings)
        elif isinstance(router_name, str):
            found = _router_provided(snapshot, service_name, router_name, warnings)
        else:
            warnings.append(f"VirtualService {service_name}: no provider; backend skipped")
            continue
        hosts.extend(h for h in found if isinstance(h, HostPlan))
        tcp.extend(t for t in found if isinstance(t, TcpPlan))
    return EgressPlan(
        hosts=_with_domains(hosts),
        tcp=_one_per_port(tcp, warnings),
        allow_all=allows_all(snapshot),
    )


def _node_provided(
    snapshot: MeshSnapshot, service: str, node_name: str, warnings: list[str]
) -> list[HostPlan | TcpPlan]:
    """A service provided by a node: per listener, one route to that node's cluster."""
    node = snapshot.virtual_nodes.get(node_name)
    if node is None:
        warnings.append(
            f"VirtualService {service}: provider VirtualNode {node_name} not found; backend skipped"
        )
        return []
    found: list[HostPlan | TcpPlan] = []
    for listener in specs.listeners(node.spec):
        target = (WeightedTarget(Target(node_name, listener.protocol, listener.port), 100),)
        if not listener.is_http:
            found.append(TcpPlan(service, listener.port, target, listener.timeouts.idle_ms))
            continue
        route = RoutePlan(
            name=node_name,
            route_type="grpcRoute" if listener.protocol == "grpc" else "httpRoute",
            match={"prefix": "/"},
            targets=target,
            timeouts=listener.timeouts,
            retry_policy=None,
            weighted=False,
        )
        found.append(HostPlan(service, service, listener.port, listener.protocol, (), (route,)))
    if not found:
        warnings.append(
            f"VirtualService {service}: provider VirtualNode {node_name} has no listeners"
        )
    return found


def _router_provided(
    snapshot: MeshSnapshot, service: str, router_name: str, warnings: list[str]
) -> list[HostPlan | TcpPlan]:
    """A service provided by a router: per router listener, its routes in priority order."""
    router = snapshot.virtual_routers.get(router_name)
    if router is None:
        warnings.append(
            f"VirtualService {service}: provider VirtualRouter {router_name} not found; "
            "backend skipped"
        )
        return []
    routes = snapshot.routes.get(router_name, {})
    router_listeners = specs.listeners(router.spec)
    found: list[HostPlan | TcpPlan] = []
    for listener in router_listeners:
        plans = [
            plan
            for route in _in_match_order(routes.values())
            if (plan := _route(snapshot, router_name, route, listener, warnings)) is not None
        ]
        if listener.is_http:
            http = tuple(p for p in plans if isinstance(p, RoutePlan))
            found.append(HostPlan(service, service, listener.port, listener.protocol, (), http))
        else:
            found.extend(
                dataclasses.replace(p, service=service) for p in plans if isinstance(p, TcpPlan)
            )
    if not router_listeners:
        warnings.append(f"VirtualRouter {router_name} has no listeners; {service} unreachable")
    return found


def _in_match_order(routes: Iterable[Resource]) -> list[Resource]:
    """Priority ascending; then the more specific match; then the name, for determinism."""

    def key(route: Resource) -> tuple[int, int, str]:
        body = specs.route_body(route.spec)
        match = specs.mapping(body[1], "match") if body else {}
        return (specs.priority(route.spec), -specs.match_specificity(match), route.name)

    return sorted(routes, key=key)


def _route(
    snapshot: MeshSnapshot,
    router: str,
    route: Resource,
    listener: specs.Listener,
    warnings: list[str],
) -> RoutePlan | TcpPlan | None:
    """One route on one router listener, or ``None`` when it does not apply or is broken."""
    where = f"Route {route.name} of VirtualRouter {router}"
    body = specs.route_body(route.spec)
    if body is None:
        warnings.append(f"{where}: needs exactly one of {', '.join(specs.ROUTE_TYPES)}; skipped")
        return None
    route_type, spec = body
    match = specs.mapping(spec, "match")
    port = match.get("port")
    if isinstance(port, int) and port != listener.port:
        return None
    is_tcp = route_type == "tcpRoute"
    if is_tcp == listener.is_http:
        warnings.append(
            f"{where}: {route_type} does not fit the {listener.protocol} listener "
            f"on port {listener.port}; skipped"
        )
        return None
    targets = _targets(snapshot, where, spec, listener.port, warnings)
    if not targets:
        warnings.append(f"{where}: no usable weightedTargets; skipped")
        return None
    timeouts = Timeouts.of(specs.mapping(spec, "timeout"))
    if is_tcp:
        return TcpPlan("", listener.port, targets, timeouts.idle_ms)
    plan = RoutePlan(
        name=route.name,
        route_type=route_type,
        match=match,
        targets=targets,
        timeouts=timeouts,
        retry_policy=specs.mapping(spec, "retryPolicy") or None,
        mirror=_mirror(snapshot, where, route, listener.port, warnings),
    )
    if plan.total_weight == 0:
        warnings.append(f"{where}: every weightedTarget has weight 0; it answers 503")
    return plan


def _targets(
    snapshot: MeshSnapshot, where: str, spec: Spec, router_port: int, warnings: list[str]
) -> tuple[WeightedTarget, ...]:
    """The route's weighted targets that name an existing node listener."""
    found: list[WeightedTarget] = []
    for entry in specs.items(spec, "action", "weightedTargets"):
        node_name, weight = entry.get("virtualNode"), entry.get("weight")
        if not isinstance(node_name, str) or not isinstance(weight, int):
            warnings.append(f"{where}: malformed weightedTarget {dict(entry)}; skipped")
            continue
        node = snapshot.virtual_nodes.get(node_name)
        if node is None:
            warnings.append(f"{where}: target VirtualNode {node_name} not found; target skipped")
            continue
        listener = _target_listener(node, entry.get("port"), router_port)
        if listener is None:
            warnings.append(
                f"{where}: target VirtualNode {node_name} has no listener for this route; "
                "target skipped"
            )
            continue
        found.append(WeightedTarget(Target(node_name, listener.protocol, listener.port), weight))
    return tuple(found)


def _mirror(
    snapshot: MeshSnapshot, where: str, route: Resource, router_port: int, warnings: list[str]
) -> WeightedTarget | None:
    """The route's mirror target (meshplane's ``meshplane.dev/mirror`` tag), if usable."""
    mirror = extensions.mirror_of(route.extensions)
    if mirror is None:
        return None
    node = snapshot.virtual_nodes.get(mirror.node)
    listener = _target_listener(node, mirror.port, router_port) if node is not None else None
    if listener is None:
        warnings.append(
            f"{where}: mirror VirtualNode {mirror.node} not found or has no listener for this "
            "route; mirroring skipped"
        )
        return None
    return WeightedTarget(Target(mirror.node, listener.protocol, listener.port), mirror.percent)


def _target_listener(node: Resource, port: object, router_port: int) -> specs.Listener | None:
    """The target port: explicit, else the node's only listener, else the router's port."""
    listeners = specs.listeners(node.spec)
    by_port = {listener.port: listener for listener in listeners}
    if isinstance(port, int):
        return by_port.get(port)
    if len(listeners) == 1:
        return listeners[0]
    return by_port.get(router_port)


def _one_per_port(plans: list[TcpPlan], warnings: list[str]) -> tuple[TcpPlan, ...]:
    """TCP is routed by destination port alone, so one backend per port (App Mesh #195)."""
    kept: dict[int, TcpPlan] = {}
    for plan in plans:
        if plan.port in kept:
            warnings.append(
                f"TCP port {plan.port} already serves {kept[plan.port].service or 'a route'}; "
                f"{plan.service or 'another tcpRoute'} skipped"
            )
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
        name = host.service if len(service_ports) == 1 else f"{host.service}_{host.port}"
        result.append(dataclasses.replace(host, name=name, domains=tuple(domains)))
    return tuple(result)


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
