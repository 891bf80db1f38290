"""Endpoint registration refuses what Envoy would refuse, before any Envoy sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import errors, kinds
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

NODE = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "blue.local"}},
}


def test_an_endpoint_address_must_be_an_ip_address(tmp_path: Path) -> None:
    """A hostname is refused with the field and the rule; the store is unchanged."""
    clock = FakeClock()
    store = SqliteStore(tmp_path, clock)
    service = MeshService(
        store, Account("us-west-2", "123456789012"), Quotas(), clock, counting_ids()
    )
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "vn-blue", NODE)
    discovery = Discovery(store, "123456789012")
    before = store.revision()
    with pytest.raises(errors.BadRequestException) as caught:
        discovery.register(
            "m", "vn-blue", "r0", [{"listenerPort": 80, "address": "blue.local", "port": 8080}]
        )
    assert caught.value.message == (
        "Invalid request: endpoints[0].address: 'blue.local' is not an IP address"
    )
    assert store.revision() == before
    registered = discovery.register(
        "m", "vn-blue", "r0", [{"listenerPort": 80, "address": "::1", "port": 8080}]
    )
    assert [(e.address, e.port) for e in registered] == [("::1", 8080)]
