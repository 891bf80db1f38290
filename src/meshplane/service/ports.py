"""Port rules of multiple listeners (``appmesh-api.md`` R10), which need other resources.

Since 2022 a node, router or gateway may have several listeners; then a route must
say which router port it matches, a weighted target which node port it sends to,
a gateway route which gateway port it serves, and a gateway route's target which
port of the target service's provider (node or router) it sends to. Ports that
are named must exist.

The rules hold from both sides. Writing a route or gateway route checks it against
the ports stored today; writing a node, router, gateway or virtual service checks
every route and gateway route that depends on it against the ports (or provider)
it *would* have, so adding a second listener, removing a port still named, or
switching a service to a provider with other ports is refused while any dependent
would break, naming those dependents.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshplane.model import errors, validation
from meshplane.model.kinds import ResourceKey
from meshplane.model.references import listener_ports
from meshplane.model.rules import GATEWAY_ROUTE_TYPES, ROUTE_TYPES
from meshplane.store.protocols import ReadTransaction

Spec = Mapping[str, Any]

_PROVIDERS = (("virtualNode", "virtualNodeName"), ("virtualRouter", "virtualRouterName"))
_PROVIDER_WORDS = {"virtualNode": "virtual node", "virtualRouter": "virtual router"}


class _View:
    """The mesh as the rules see it: stored specs, with at most one spec replaced.

    With ``proposed`` set, the resource at that key reads as the spec being written,
    so dependents are judged against the state the write would create.
    """

    def __init__(
        self, tx: ReadTransaction, proposed: tuple[ResourceKey, Spec] | None = None
    ) -> None:
        self._tx = tx
        self._proposed = proposed
        self._specs: dict[ResourceKey, Spec | None] = {}

    def spec(self, key: ResourceKey) -> Spec | None:
        if self._proposed is not None and key == self._proposed[0]:
            return self._proposed[1]
        if key not in self._specs:
            record = self._tx.get(key)
            self._specs[key] = record.resource.spec if record else None
        return self._specs[key]

    def ports(self, key: ResourceKey) -> list[int]:
        spec = self.spec(key)
        return listener_ports(spec) if spec else []

    def provider(self, mesh: str, service: str) -> ResourceKey | None:
        """The node or router that provides a virtual service, if it has one."""
        spec = self.spec(ResourceKey("virtualService", mesh, "", service)) or {}
        provider = spec.get("provider") or {}
        for kind, member in _PROVIDERS:
            if provider.get(kind):
                return ResourceKey(kind, mesh, "", provider[kind][member])
        return None


def _listed(ports: list[int]) -> str:
    return ", ".join(map(str, ports))


def _route(view: _View, key: ResourceKey, spec: Spec) -> list[str]:
    """A route's match.port against its router, and its targets' ports against their nodes."""
    found: list[str] = []
    router_ports = view.ports(ResourceKey("virtualRouter", key.mesh, "", key.parent))
    for kind in (k for k in ROUTE_TYPES if spec.get(k)):
        body = spec[kind]
        port = (body.get("match") or {}).get("port")
        if port is None and len(router_ports) > 1:
            found.append(
                f"spec.{kind}.match.port: Route must define a port match criteria if the "
                "Virtual Router has multiple listeners"
            )
        elif port is not None and router_ports and port not in router_ports:
            found.append(
                f"spec.{kind}.match.port: {port} is not a listener port of virtual router "
                f"{key.parent} ({_listed(router_ports)})"
            )
        targets = (body.get("action") or {}).get("weightedTargets") or []
        for index, target in enumerate(targets):
            node = target["virtualNode"]
            node_ports = view.ports(ResourceKey("virtualNode", key.mesh, "", node))
            where = f"spec.{kind}.action.weightedTargets[{index}].port"
            if target.get("port") is None and len(node_ports) > 1:
                found.append(
                    f"{where}: virtual node {node} has multiple listeners; the target must "
                    "name a port"
                )
            elif target.get("port") is not None and target["port"] not in node_ports:
                found.append(
                    f"{where}: {target['port']} is not a listener port of virtual node {node}"
                )
    return found


def _gateway_route(view: _View, key: ResourceKey, spec: Spec) -> list[str]:
    """A gateway route's match.port against its gateway, target.port against the provider."""
    found: list[str] = []
    gateway_ports = view.ports(ResourceKey("virtualGateway", key.mesh, "", key.parent))
    for kind in (k for k in GATEWAY_ROUTE_TYPES if spec.get(k)):
        port = (spec[kind].get("match") or {}).get("port")
        if port is None and len(gateway_ports) > 1:
            found.append(
                f"spec.{kind}.match.port: Gateway route must define a port match criteria "
                "if the Virtual Gateway has multiple listeners"
            )
        elif port is not None and gateway_ports and port not in gateway_ports:
            found.append(
                f"spec.{kind}.match.port: {port} is not a listener port of virtual "
                f"gateway {key.parent} ({_listed(gateway_ports)})"
            )
        target = (spec[kind].get("action") or {}).get("target") or {}
        service = (target.get("virtualService") or {}).get("virtualServiceName")
        provider = view.provider(key.mesh, service) if service else None
        if provider is None:
            # No provider yet: its ports are unknown; they are checked when one is set.
            continue
        ports = view.ports(provider)
        named = f"{_PROVIDER_WORDS[provider.kind]} {provider.name}"
        where = f"spec.{kind}.action.target.port"
        if target.get("port") is None and len(ports) > 1:
            found.append(
                f"{where}: virtual service {service} is provided by {named}, which has "
                "multiple listeners; the target must name a port"
            )
        elif target.get("port") is not None and target["port"] not in ports:
            found.append(
                f"{where}: {target['port']} is not a listener port of {named}, the provider "
                f"of virtual service {service} ({_listed(ports)})"
            )
    return found


def _gateway_routes_to(tx: ReadTransaction, service: ResourceKey) -> Iterator[ResourceKey]:
    return (user for user in tx.referrers(service) if user.kind == "gatewayRoute")


def _dependents(tx: ReadTransaction, key: ResourceKey) -> list[ResourceKey]:
    """The routes and gateway routes whose port rules read ``key``'s listeners or provider."""
    found: list[ResourceKey] = []
    if key.kind == "virtualRouter":
        found += [r.key for r in tx.list_records("route", key.mesh, key.name)]
    elif key.kind == "virtualGateway":
        found += [r.key for r in tx.list_records("gatewayRoute", key.mesh, key.name)]
    elif key.kind == "virtualService":
        found += _gateway_routes_to(tx, key)
    if key.kind in ("virtualNode", "virtualRouter"):
        for user in tx.referrers(key):
            if user.kind == "route":
                found.append(user)
            elif user.kind == "virtualService":
                found += _gateway_routes_to(tx, user)
    return sorted(set(found))


def _changed_field(key: ResourceKey, before: Spec, after: Spec) -> str | None:
    """The field whose change can break dependents, or ``None`` if it did not change."""
    if key.kind == "virtualService":
        unchanged = (before.get("provider") or None) == (after.get("provider") or None)
        return None if unchanged else "spec.provider"
    if key.kind in ("virtualNode", "virtualRouter", "virtualGateway"):
        unchanged = listener_ports(before) == listener_ports(after)
        return None if unchanged else "spec.listeners"
    return None


def _broken_dependents(tx: ReadTransaction, key: ResourceKey, spec: Spec) -> list[str]:
    record = tx.get(key)
    if record is None:
        return []  # a new resource has no dependents yet
    field = _changed_field(key, record.resource.spec, spec)
    if field is None:
        return []
    today, proposed = _View(tx), _View(tx, (key, spec))
    found: list[str] = []
    for dependent in _dependents(tx, key):
        dependent_spec = today.spec(dependent) or {}
        rules = _route if dependent.kind == "route" else _gateway_route
        # Report only what this write breaks, not what an older data dir already had.
        broken_today = {p.split(": ", 1)[0] for p in rules(today, dependent, dependent_spec)}
        noun = "route" if dependent.kind == "route" else "gateway route"
        for problem in rules(proposed, dependent, dependent_spec):
            if problem.split(": ", 1)[0] not in broken_today:
                found.append(
                    f"{field}: {noun} {dependent.parent}/{dependent.name} would no longer be "
                    f"valid ({problem}); update or delete it first"
                )
    return found


def check(tx: ReadTransaction, key: ResourceKey, spec: Spec) -> None:
    """BadRequest if writing ``spec`` at ``key`` breaks a multiple-listener rule anywhere."""
    if key.kind == "route":
        found = _route(_View(tx), key, spec)
    elif key.kind == "gatewayRoute":
        found = _gateway_route(_View(tx), key, spec)
    else:
        found = _broken_dependents(tx, key, spec)
    if found:
        raise errors.BadRequestException(validation.summarize(found))
