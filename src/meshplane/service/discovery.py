"""Endpoint registration: where the replicas of a virtual node receive mesh traffic.

On Kubernetes App Mesh learned endpoints from DNS or Cloud Map; meshplane's local
runtime registers them instead, one set per replica (the *source*), so a replica
that restarts replaces its own endpoints without touching its siblings'.

Registrations made over the API carry a *lease*: they live ``lease_ttl`` seconds
unless registered again (the runtime renews every third of it), and :meth:`expire`
withdraws the ones nobody renewed — so a runtime killed with SIGKILL, which cannot
withdraw anything, stops receiving traffic once its lease runs out. A renewal that
changes nothing writes nothing (no store revision, no rebuild). Leases are soft state
held in memory: after a restart every registration found in the store gets one fresh
lease, and only those renewed survive it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from meshplane.kit.clock import Clock, system_clock
from meshplane.model import errors
from meshplane.model.kinds import VIRTUAL_NODE, ResourceKey
from meshplane.model.references import listener_ports
from meshplane.model.snapshot import Endpoint, attributes_of
from meshplane.service.resources import not_found
from meshplane.store.protocols import Store


def _port(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise errors.BadRequestException(f"Invalid request: {field}: must be a port 1..65535")
    return value


MAX_ATTRIBUTES = 64
_ATTRIBUTE_KEY = re.compile(r"^[!-~]{1,255}$")
_ATTRIBUTE_VALUE = re.compile(r"^[ -~]{0,1024}$")


def _attributes(value: Any, field: str) -> tuple[tuple[str, str], ...]:
    """An endpoint's attributes (absent: none), refused unless Cloud Map would keep them."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise errors.BadRequestException(
            f"Invalid request: {field}: must be an object of string keys and values"
        )
    if len(value) > MAX_ATTRIBUTES:
        raise errors.BadRequestException(
            f"Invalid request: {field}: {len(value)} attributes, at most {MAX_ATTRIBUTES}"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
            raise errors.BadRequestException(
                f"Invalid request: {field}: key {key!r} must be 1-255 printable ASCII "
                "characters without spaces"
            )
        if not isinstance(item, str) or not _ATTRIBUTE_VALUE.match(item):
            raise errors.BadRequestException(
                f"Invalid request: {field}.{key}: must be a string of at most 1024 printable "
                "ASCII characters"
            )
    return attributes_of(value)


RegistrationKey = tuple[str, str, str]
"""(mesh, virtual node, source): one replica's registration."""


@dataclasses.dataclass(frozen=True)
class Lease:
    """Until when a registration lives, and what it registered (to spot a mere renewal)."""

    expires_at: float
    endpoints: tuple[Endpoint, ...]


class Discovery:
    """Registers and lists endpoints of virtual nodes; expires unrenewed leases."""

    def __init__(
        self,
        store: Store,
        account_id: str,
        clock: Clock = system_clock,
        lease_ttl: float = 15.0,
    ) -> None:
        """Bind to the store; leases last ``lease_ttl`` seconds on ``clock``."""
        self.store = store
        self.account_id = account_id
        self.lease_ttl = lease_ttl
        self._clock = clock
        self._leases: dict[RegistrationKey, Lease] = {}
        self._seeded = False

    def register(
        self,
        mesh: str,
        virtual_node: str,
        source: str,
        endpoints: Sequence[Mapping[str, Any]],
        *,
        leased: bool = False,
    ) -> list[Endpoint]:
        """Replace the endpoints ``source`` holds for a virtual node (empty list removes them).

        ``leased`` registrations (every one made over the API) expire ``lease_ttl`` seconds
        from now unless registered again; in-process callers may hold them unleased.
        """
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
                    _attributes(item.get("attributes"), f"{where}.attributes"),
                )
            )
        key = ResourceKey.of(VIRTUAL_NODE, mesh, virtual_node)
        registration = (mesh, virtual_node, source)
        wanted = tuple(sorted(set(parsed)))
        self._seed()
        with self.store.read() as rx:
            self._check(rx.get(key), key, parsed)
            current = rx.registrations().get(registration, ())
        if not (leased and wanted and current == wanted):  # a renewal that changes nothing
            with self.store.transaction() as tx:
                self._check(tx.get(key), key, parsed)
                tx.set_endpoints(mesh, virtual_node, source, parsed)
        if leased and wanted:
            self._leases[registration] = Lease(self._clock() + self.lease_ttl, wanted)
        else:
            self._leases.pop(registration, None)
        return parsed

    def lease(self, mesh: str, virtual_node: str, source: str) -> Lease | None:
        """The current lease of one registration (None: unleased or not registered)."""
        return self._leases.get((mesh, virtual_node, source))

    def _check(self, record: Any, key: ResourceKey, parsed: Sequence[Endpoint]) -> None:
        """NotFound without the virtual node; BadRequest for an endpoint of no listener."""
        if record is None:
            raise not_found(key, self.account_id)
        ports = listener_ports(record.resource.spec)
        for index, endpoint in enumerate(parsed):
            if endpoint.listener_port not in ports:
                raise errors.BadRequestException(
                    f"Invalid request: endpoints[{index}].listenerPort: virtual node "
                    f"{key.name} has no listener on port {endpoint.listener_port}"
                )

    def _seed(self) -> None:
        """Give every registration already in the store (made before a restart) one lease."""
        if self._seeded:
            return
        self._seeded = True
        now = self._clock()
        with self.store.read() as rx:
            found = rx.registrations()
        for registration, endpoints in found.items():
            self._leases.setdefault(registration, Lease(now + self.lease_ttl, endpoints))

    def expire(self) -> list[RegistrationKey]:
        """Withdraw every registration whose lease ran out; returns them, sorted."""
        self._seed()
        now = self._clock()
        expired = sorted(k for k, lease in self._leases.items() if lease.expires_at <= now)
        for registration in expired:
            del self._leases[registration]
            mesh, virtual_node, source = registration
            with self.store.transaction() as tx:
                if tx.get(ResourceKey.of(VIRTUAL_NODE, mesh, virtual_node)) is not None:
                    tx.set_endpoints(mesh, virtual_node, source, [])
        return expired

    def list_endpoints(self, mesh: str) -> dict[str, tuple[Endpoint, ...]]:
        """Every endpoint registered in a mesh, by virtual node."""
        with self.store.read() as tx:
            return tx.endpoints(mesh)
