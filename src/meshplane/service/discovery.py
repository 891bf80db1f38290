"""Endpoint registration: where the replicas of a virtual node receive mesh traffic.

On Kubernetes App Mesh learned endpoints from DNS or Cloud Map; meshplane's local
runtime registers them instead, one set per replica (the *source*), so a replica
that restarts replaces its own endpoints without touching its siblings'.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from meshplane.model import errors
from meshplane.model.kinds import VIRTUAL_NODE, ResourceKey
from meshplane.model.references import listener_ports
from meshplane.model.snapshot import Endpoint
from meshplane.service.resources import not_found
from meshplane.store.protocols import Store


def _port(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise errors.BadRequestException(f"Invalid request: {field}: must be a port 1..65535")
    return value


class Discovery:
    """Registers and lists endpoints of virtual nodes."""

    def __init__(self, store: Store, account_id: str) -> None:
        """Bind to the store."""
        self.store = store
        self.account_id = account_id

    def register(
        self, mesh: str, virtual_node: str, source: str, endpoints: Sequence[Mapping[str, Any]]
    ) -> list[Endpoint]:
        """Replace the endpoints ``source`` holds for a virtual node (empty list removes them)."""
        if not source:
            raise errors.BadRequestException("Invalid request: source: is required")
        parsed: list[Endpoint] = []
        for index, item in enumerate(endpoints):
            where = f"endpoints[{index}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("address"), str):
                raise errors.BadRequestException(
                    f"Invalid request: {where}: needs listenerPort, address and port"
                )
            try:
                # Envoy takes only IP addresses in endpoints; one bad entry would make it
                # refuse the whole update for every caller of this node.
                ipaddress.ip_address(item["address"])
            except ValueError as exc:
                raise errors.BadRequestException(
                    f"Invalid request: {where}.address: {item['address']!r} is not an IP address"
                ) from exc
            parsed.append(
                Endpoint(
                    _port(item.get("listenerPort"), f"{where}.listenerPort"),
                    item["address"],
                    _port(item.get("port"), f"{where}.port"),
                )
            )
        key = ResourceKey.of(VIRTUAL_NODE, mesh, virtual_node)
        with self.store.transaction() as tx:
            record = tx.get(key)
            if record is None:
                raise not_found(key, self.account_id)
            ports = listener_ports(record.resource.spec)
            for index, endpoint in enumerate(parsed):
                if endpoint.listener_port not in ports:
                    raise errors.BadRequestException(
                        f"Invalid request: endpoints[{index}].listenerPort: virtual node "
                        f"{virtual_node} has no listener on port {endpoint.listener_port}"
                    )
            tx.set_endpoints(mesh, virtual_node, source, parsed)
        return parsed

    def list_endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every endpoint registered in a mesh, by virtual node."""
        with self.store.read() as tx:
            return tx.endpoints(mesh)
