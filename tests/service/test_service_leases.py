"""Endpoint leases: registrations made over the API expire unless their runtime renews them."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import errors, kinds
from meshplane.model.snapshot import Endpoint
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

NODE = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "blue.local"}},
}
BLUE = [{"listenerPort": 80, "address": "127.0.0.1", "port": 8080}]
GREEN = [{"listenerPort": 80, "address": "127.0.0.1", "port": 8081}]


def _mesh(tmp_path: Path, clock: FakeClock) -> SqliteStore:
    store = SqliteStore(tmp_path, clock)
    service = MeshService(
        store, Account("us-west-2", "123456789012"), Quotas(), clock, counting_ids()
    )
    service.create(kinds.MESH, "m", "m", {})
    service.create(kinds.VIRTUAL_NODE, "m", "vn-blue", NODE)
    return store


def test_an_unrenewed_lease_expires_and_a_renewed_one_lives(tmp_path: Path) -> None:
    """After 15 s only the registration renewed at 10 s is left; renewing wrote nothing."""
    clock = FakeClock()
    store = _mesh(tmp_path, clock)
    discovery = Discovery(store, "123456789012", clock, lease_ttl=15)
    discovery.register("m", "vn-blue", "blue-0", BLUE, leased=True)
    discovery.register("m", "vn-blue", "blue-1", GREEN, leased=True)
    clock.advance(10)
    revision = store.revision()
    discovery.register("m", "vn-blue", "blue-0", BLUE, leased=True)  # the runtime's renewal
    assert store.revision() == revision
    assert discovery.expire() == []
    clock.advance(5)
    assert discovery.expire() == [("m", "vn-blue", "blue-1")]
    assert discovery.list_endpoints("m") == {"vn-blue": (Endpoint(80, "127.0.0.1", 8080),)}
    clock.advance(10)
    assert discovery.expire() == [("m", "vn-blue", "blue-0")]
    assert discovery.list_endpoints("m") == {}


def test_unleased_registrations_stay_and_withdrawal_ends_a_lease(tmp_path: Path) -> None:
    """In-process (unleased) registrations never expire; an empty list withdraws for good."""
    clock = FakeClock()
    store = _mesh(tmp_path, clock)
    discovery = Discovery(store, "123456789012", clock, lease_ttl=15)
    discovery.register("m", "vn-blue", "static", BLUE)
    discovery.register("m", "vn-blue", "blue-1", GREEN, leased=True)
    discovery.register("m", "vn-blue", "blue-1", [], leased=True)
    clock.advance(60)
    assert discovery.expire() == []
    assert discovery.list_endpoints("m") == {"vn-blue": (Endpoint(80, "127.0.0.1", 8080),)}


def test_registrations_found_after_a_restart_get_one_lease(tmp_path: Path) -> None:
    """A restarted control plane withdraws what nobody renews within one TTL of starting."""
    clock = FakeClock()
    store = _mesh(tmp_path, clock)
    Discovery(store, "123456789012", clock, lease_ttl=15).register(
        "m", "vn-blue", "blue-0", BLUE, leased=True
    )
    clock.advance(100)
    restarted = Discovery(store, "123456789012", clock, lease_ttl=15)
    assert restarted.expire() == []
    clock.advance(15)
    assert restarted.expire() == [("m", "vn-blue", "blue-0")]
    assert restarted.list_endpoints("m") == {}


def test_endpoint_attributes_are_kept_sorted_and_refused_beyond_cloud_maps_limits(
    tmp_path: Path,
) -> None:
    """Attributes round-trip through the store; a non-string value or a spaced key is refused."""
    clock = FakeClock()
    discovery = Discovery(_mesh(tmp_path, clock), "123456789012", clock)
    labelled = [{**BLUE[0], "attributes": {"version": "blue", "app": "color"}}]
    discovery.register("m", "vn-blue", "blue-0", labelled)
    assert discovery.list_endpoints("m") == {
        "vn-blue": (Endpoint(80, "127.0.0.1", 8080, (("app", "color"), ("version", "blue"))),)
    }
    for attributes, message in (
        ({"version": 2}, "endpoints[0].attributes.version: must be a string of at most 1024"),
        ({"a b": "x"}, "endpoints[0].attributes: key 'a b' must be 1-255 printable ASCII"),
        ("color=blue", "endpoints[0].attributes: must be an object of string keys and values"),
    ):
        with pytest.raises(errors.BadRequestException) as refused:
            discovery.register("m", "vn-blue", "blue-1", [{**GREEN[0], "attributes": attributes}])
        assert message in str(refused.value)
