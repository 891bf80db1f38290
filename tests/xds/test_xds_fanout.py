"""The per-stream push shortcuts: shared framed responses, skipped no-op steps, shared ports."""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from test_xds_protocol import (
    BACKENDS,
    KEY,
    NODE,
    WAIT,
    blue_green,
    blue_only,
    receive,
    run,
    serving,
    subscribe_all,
)
from xds_configs import cluster, route_config, weighted

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.kit.clock import FakeClock
from meshplane.testing import FakeAdsClient, names_of
from meshplane.xds import AdsServer, ResourceEncoder, SnapshotCache, StatusBoard, wire
from meshplane.xds.snapshot import version_of


def test_shared_response_is_a_discovery_response_once_its_nonce_is_added() -> None:
    """The framed body plus nonce_field parses to the version, sorted resources, type and nonce."""
    encoder = ResourceEncoder()
    chosen = {r.name: r for r in (encoder.encode(cluster("b")), encoder.encode(cluster("a")))}
    version = version_of(chosen.values())
    body, sent = wire.SharedResponses().prefix(CLUSTER, version, chosen)
    parsed = discovery_pb2.DiscoveryResponse.FromString(body + wire.nonce_field("7"))
    assert parsed.version_info == version
    assert parsed.type_url == CLUSTER
    assert parsed.nonce == "7"
    assert [r.value for r in parsed.resources] == [chosen["a"].body, chosen["b"].body]
    assert dict(sent) == {"a": chosen["a"].version, "b": chosen["b"].version}
    assert isinstance(sent, MappingProxyType)


def test_shared_responses_frame_each_version_once_and_drop_the_least_recently_used() -> None:
    """Equal (type, version) keys get the very same bytes; past the size the oldest is rebuilt."""
    encoder = ResourceEncoder()
    pools = {name: {name: encoder.encode(route_config({name: 100}))} for name in ("x", "y", "z")}
    versions = {name: version_of(pool.values()) for name, pool in pools.items()}
    shared = wire.SharedResponses(size=2)
    first = {name: shared.prefix(ROUTE, versions[name], pools[name])[0] for name in ("x", "y")}
    assert shared.prefix(ROUTE, versions["x"], pools["x"])[0] is first["x"]  # x now newest
    shared.prefix(ROUTE, versions["z"], pools["z"])  # evicts y, the least recently used
    assert shared.prefix(ROUTE, versions["x"], pools["x"])[0] is first["x"]
    rebuilt = shared.prefix(ROUTE, versions["y"], pools["y"])[0]
    assert rebuilt == first["y"]
    assert rebuilt is not first["y"]


def test_a_weight_flip_sends_only_the_routes_every_time() -> None:
    """Two flips between settled snapshots: one RDS response each, no other type resent."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                for weights in ({"blue": 10, "green": 90}, {"blue": 90, "green": 10}):
                    target = weighted(15000, BACKENDS, weights, encoder)
                    cache.set_snapshot(KEY, target)
                    rds = await receive(client)
                    assert rds.type_url == ROUTE
                    assert rds.version_info == target.type_version(ROUTE)
                    await client.ack(rds)
                    await server.status.wait_synced(KEY, target, WAIT)
                await client.request(ENDPOINT, [])  # unsubscribe all: this changes the answer
                probe = await receive(client)
                assert probe.type_url == ENDPOINT  # the next thing sent: nothing was queued
                status = server.status.node(KEY)
                assert status is not None
                responses = {t: status.type_status(t).responses for t in (CLUSTER, LISTENER)}
                assert responses == {CLUSTER: 1, LISTENER: 1}
                assert status.type_status(ROUTE).responses == 3

    run(scenario)


def test_after_a_nack_the_next_snapshot_walks_every_step() -> None:
    """A walk a NACK cut short settles nothing: going back to the old snapshot re-sends CDS."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            old = blue_only(encoder)
            cache.set_snapshot(KEY, old)
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                cache.set_snapshot(KEY, blue_green(encoder))
                cds = await receive(client)
                assert sorted(names_of(cds)) == ["blue", "green"]
                eds = await receive(client)  # the added cluster's endpoints, sent with it
                assert sorted(names_of(eds)) == ["blue", "green"]
                await client.nack(cds, seen[CLUSTER].version_info, "cluster rejected")
                # Same content as the snapshot the proxy ran before the walk began.
                cache.set_snapshot(KEY, blue_only(encoder))
                again = await receive(client)
                assert again.type_url == CLUSTER
                assert names_of(again) == ["blue"]
                assert again.version_info == old.type_version(CLUSTER)
                await client.ack(again)
                await server.status.wait_synced(KEY, old, WAIT)

    run(scenario)


def test_servers_asked_to_share_a_port_both_bind_it() -> None:
    """share_port: two servers on one port (SO_REUSEPORT), both started, same port."""

    async def scenario() -> None:
        first = AdsServer(SnapshotCache(), clock=FakeClock())
        second = AdsServer(SnapshotCache(), clock=FakeClock())
        port = await first.start("127.0.0.1", 0, share_port=True)
        try:
            assert await second.start("127.0.0.1", port, share_port=True) == port
        finally:
            await second.stop(0)
            await first.stop(0)

    run(scenario)


def test_the_board_keeps_a_read_only_ack_map_and_copies_any_other() -> None:
    """record_acked keeps a MappingProxyType as it is; a plain dict is copied, not aliased."""
    board = StatusBoard(FakeClock())
    board.record_connected(KEY, base_pb2.Node(id=NODE))
    shared = MappingProxyType({"blue": "v1"})
    board.record_acked(KEY, CLUSTER, "c1", shared)
    plain = {"rds_main": "v2"}
    board.record_acked(KEY, ROUTE, "r1", plain)
    plain["rds_main"] = "changed"
    status = board.node(KEY)
    assert status is not None
    assert status.type_status(CLUSTER).acked is shared
    assert dict(status.type_status(ROUTE).acked) == {"rds_main": "v2"}
