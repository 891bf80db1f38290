"""The ADS server against a protocol-level fake client over real gRPC on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from xds_configs import cluster, endpoints, listener, route_config, weighted

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.kit.clock import FakeClock
from meshplane.kit.timers import ManualTimer
from meshplane.testing import FakeAdsClient, names_of
from meshplane.xds import AdsServer, ResourceEncoder, Snapshot, SnapshotCache, node_key

NODE = "mesh/demos/virtualNode/vn-frontend"
KEY = node_key(NODE)
BACKENDS = {"blue": 9001, "green": 9002}
WAIT = 10.0  # generous bound on every await; tests never assert wall-clock times

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run one async scenario on a fresh event loop, bounded."""

    async def bounded() -> T:
        async with asyncio.timeout(60):
            return await scenario()

    return asyncio.run(bounded())


@asynccontextmanager
async def serving(
    ack_timeout: float = 10.0, timer: ManualTimer | None = None
) -> AsyncIterator[tuple[AdsServer, SnapshotCache]]:
    cache = SnapshotCache()
    server = AdsServer(cache, clock=FakeClock(), ack_timeout=ack_timeout, timer=timer)
    await server.start("127.0.0.1", 0)
    try:
        yield server, cache
    finally:
        await server.stop(0)


async def receive(client: FakeAdsClient) -> discovery_pb2.DiscoveryResponse:
    async with asyncio.timeout(WAIT):
        return await client.receive()


async def subscribe_all(
    client: FakeAdsClient,
) -> dict[str, discovery_pb2.DiscoveryResponse]:
    """Walk the fake client through Envoy's startup order; returns the ACKed responses."""
    seen: dict[str, discovery_pb2.DiscoveryResponse] = {}
    await client.request(CLUSTER)
    seen[CLUSTER] = await receive(client)
    await client.ack(seen[CLUSTER])
    await client.request(ENDPOINT, sorted(names_of(seen[CLUSTER])))
    seen[ENDPOINT] = await receive(client)
    await client.ack(seen[ENDPOINT])
    await client.request(LISTENER)
    seen[LISTENER] = await receive(client)
    await client.ack(seen[LISTENER])
    await client.request(ROUTE, ["rds_main"])
    seen[ROUTE] = await receive(client)
    await client.ack(seen[ROUTE])
    return seen


def blue_only(encoder: ResourceEncoder) -> Snapshot:
    return weighted(15000, BACKENDS, {"blue": 100}, encoder)


def blue_green(encoder: ResourceEncoder) -> Snapshot:
    return weighted(15000, BACKENDS, {"blue": 50, "green": 50}, encoder)


def test_initial_requests_are_answered_and_acks_recorded() -> None:
    """Each first request is answered from the snapshot and its ACK shows in status."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            snapshot = blue_green(ResourceEncoder())
            cache.set_snapshot(KEY, snapshot)
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                assert sorted(names_of(seen[CLUSTER])) == ["blue", "green"]
                assert sorted(names_of(seen[ENDPOINT])) == ["blue", "green"]
                assert names_of(seen[LISTENER]) == ["lds_ingress"]
                assert names_of(seen[ROUTE]) == ["rds_main"]
                assert seen[CLUSTER].version_info == snapshot.type_version(CLUSTER)
                status = await server.status.wait_synced(KEY, snapshot, WAIT)
                assert status.connected
                assert status.node.id == NODE
                for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
                    kind = status.type_status(type_url)
                    assert kind.acked_version == seen[type_url].version_info
                    assert kind.sent_version == seen[type_url].version_info
                    assert kind.responses == 1
                    assert kind.nacks == 0

    run(scenario)


def test_eds_and_rds_carry_only_requested_names() -> None:
    """EDS answers exactly the requested names; CDS answers all clusters."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_green(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["green", "unknown"])
                response = await receive(client)
                assert names_of(response) == ["green"]
                await client.request(CLUSTER, ["blue"])  # CDS is wildcard whatever is asked
                assert sorted(names_of(await receive(client))) == ["blue", "green"]

    run(scenario)


def test_empty_type_is_still_answered() -> None:
    """A type the snapshot has nothing of is answered with an empty response."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, Snapshot.of([cluster("blue"), endpoints("blue", 1)], encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(LISTENER)
                response = await receive(client)
                assert response.type_url == LISTENER
                assert list(response.resources) == []
                assert response.nonce != ""

    run(scenario)


def test_requests_wait_for_the_first_snapshot() -> None:
    """With no snapshot yet the request is held, then answered when one is set."""

    async def scenario() -> None:
        async with serving() as (server, cache), FakeAdsClient(server.port or 0, NODE) as client:
            await client.request(CLUSTER)
            await server.status.wait_for(KEY, lambda s: s.connected, WAIT)
            assert server.status.node(KEY) is not None
            assert server.status.nodes()[KEY].type_status(CLUSTER).responses == 0
            snapshot = blue_only(ResourceEncoder())
            cache.set_snapshot(KEY, snapshot)
            response = await receive(client)
            assert names_of(response) == ["blue"]
            assert response.version_info == snapshot.type_version(CLUSTER)

    run(scenario)


def test_nack_is_recorded_and_not_resent() -> None:
    """A NACK keeps Envoy's message in status; the same version is not sent again."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER)
                response = await receive(client)
                await client.nack(response, "", "bad cluster: no")
                # The stream handles requests in order: had it resent the NACKed
                # version, that response would arrive before this LDS answer.
                await client.request(LISTENER)
                assert (await receive(client)).type_url == LISTENER
                status = server.status.node(KEY)
                assert status is not None
                cds = status.type_status(CLUSTER)
                assert cds.nacks == 1
                assert cds.last_nack is not None
                assert cds.last_nack.message == "bad cluster: no"
                assert cds.last_nack.version == response.version_info
                assert cds.last_nack.at == 1_700_000_000.0
                assert cds.acked_version is None
                assert cds.responses == 1
                # Only a changed version is sent again.
                cache.set_snapshot(KEY, blue_green(encoder))
                again = await receive(client)
                assert again.type_url == CLUSTER
                assert again.version_info != response.version_info

    run(scenario)


def test_piggybacked_eds_subscription_is_answered() -> None:
    """An ACK carrying new EDS names (same nonce) gets a response with those names."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_green(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["blue"])
                first = await receive(client)
                assert names_of(first) == ["blue"]
                await client.ack(first, names=["blue", "green"])
                second = await receive(client)
                assert sorted(names_of(second)) == ["blue", "green"]
                assert second.nonce != first.nonce

    run(scenario)


def test_a_repeated_request_after_its_ack_is_answered_again() -> None:
    """Envoy asks again with the ACKed nonce (an updated cluster re-subscribing): answered."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_green(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["blue"])
                first = await receive(client)
                await client.ack(first)
                await client.request(ENDPOINT, ["blue"], nonce=first.nonce)
                again = await receive(client)
                assert names_of(again) == ["blue"]
                assert again.version_info == first.version_info
                assert again.nonce != first.nonce
                await client.ack(again)
                await client.request(LISTENER)
                assert (await receive(client)).type_url == LISTENER

    run(scenario)


def test_stale_nonce_is_dropped() -> None:
    """A request answering an older nonce is ignored, even with new names."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_green(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["blue"])
                first = await receive(client)
                await client.ack(first, names=["green"])
                second = await receive(client)
                await client.request(ENDPOINT, ["blue", "green"], nonce=first.nonce)
                await client.request(LISTENER)
                assert (await receive(client)).type_url == LISTENER
                assert names_of(second) == ["green"]

    run(scenario)


def test_reconnect_with_old_version_gets_current_config() -> None:
    """A new stream that reports an old version and no nonce is sent the current one."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                old = await subscribe_all(client)
            await server.status.wait_for(KEY, lambda s: not s.connected, WAIT)
            newer = blue_green(encoder)
            cache.set_snapshot(KEY, newer)
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER, version=old[CLUSTER].version_info)
                response = await receive(client)
                assert sorted(names_of(response)) == ["blue", "green"]
                assert response.version_info == newer.type_version(CLUSTER)
                status = server.status.node(KEY)
                assert status is not None
                assert status.streams == 1

    run(scenario)


def test_nonce_from_an_older_stream_is_answered() -> None:
    """A first request carrying a nonce this stream never sent is answered, not dropped."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER, version="old", nonce="42")
                assert names_of(await receive(client)) == ["blue"]

    run(scenario)


def test_replicas_of_one_node_have_separate_snapshots() -> None:
    """Two replicas announcing one node id are keyed apart by their replica metadata."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(node_key(NODE, "r-0"), blue_only(encoder))
            cache.set_snapshot(node_key(NODE, "r-1"), blue_green(encoder))
            async with (
                FakeAdsClient(server.port or 0, NODE, replica="r-0") as zero,
                FakeAdsClient(server.port or 0, NODE, replica="r-1") as one,
            ):
                await zero.request(CLUSTER)
                await one.request(CLUSTER)
                assert names_of(await receive(zero)) == ["blue"]
                assert sorted(names_of(await receive(one))) == ["blue", "green"]
            assert sorted(server.status.nodes()) == [f"{NODE}#r-0", f"{NODE}#r-1"]

    run(scenario)


def test_adding_a_target_sends_clusters_before_routes() -> None:
    """Make-before-break: the new cluster and its endpoints are ACKed before routes move;
    the endpoints follow the clusters at once, not after Envoy's request for them."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                target = blue_green(encoder)
                cache.set_snapshot(KEY, target)
                cds = await receive(client)
                assert cds.type_url == CLUSTER
                assert sorted(names_of(cds)) == ["blue", "green"]
                eds = await receive(client)  # before anything asked for green's endpoints
                assert eds.type_url == ENDPOINT
                assert sorted(names_of(eds)) == ["blue", "green"]
                await client.ack(cds)
                # Envoy's own subscription to the new cluster's endpoints, sent before it read
                # the response above: it carries the previous nonce, so it is dropped.
                await client.ack(seen[ENDPOINT], names=["blue", "green"])
                await client.ack(eds)
                rds = await receive(client)  # not a second EDS response
                assert rds.type_url == ROUTE  # the listener did not change: step skipped
                assert rds.version_info == target.type_version(ROUTE)
                await client.ack(rds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_endpoints_sent_ahead_and_acked_unwatched_are_sent_again_before_routes() -> None:
    """Had no cluster watched the endpoints sent with the clusters (the ACK names only the
    old ones), routes wait until a request naming the new cluster is answered and ACKed."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = blue_green(encoder)
                cache.set_snapshot(KEY, target)
                cds = await receive(client)
                ahead = await receive(client)
                assert sorted(names_of(ahead)) == ["blue", "green"]
                await client.ack(cds)
                await client.ack(ahead, names=["blue"])  # no watch took green
                narrowed = await receive(client)
                assert (narrowed.type_url, names_of(narrowed)) == (ENDPOINT, ["blue"])
                await client.ack(narrowed, names=["blue", "green"])  # the watch, later
                eds = await receive(client)
                assert (eds.type_url, sorted(names_of(eds))) == (ENDPOINT, ["blue", "green"])
                await client.ack(eds)
                rds = await receive(client)
                assert rds.type_url == ROUTE
                await client.ack(rds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_removing_a_target_moves_routes_before_dropping_clusters() -> None:
    """Make-before-break: the stale cluster is dropped only after the route ACK."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                target = blue_only(encoder)
                cache.set_snapshot(KEY, target)
                rds = await receive(client)
                assert rds.type_url == ROUTE
                # Probe: a piggybacked EDS change is answered next, so no CDS was
                # queued behind the unACKed routes.
                await client.ack(seen[ENDPOINT], names=["blue"])
                probe = await receive(client)
                assert probe.type_url == ENDPOINT
                await client.ack(probe)
                await client.ack(rds)
                cds = await receive(client)
                assert cds.type_url == CLUSTER
                assert names_of(cds) == ["blue"]
                await client.ack(cds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_nack_during_make_before_break_keeps_the_old_routes() -> None:
    """A NACKed cluster step abandons the walk: routes never point at the rejected cluster."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                cache.set_snapshot(KEY, blue_green(encoder))
                cds = await receive(client)
                eds = await receive(client)  # the added cluster's endpoints, sent with it
                assert eds.type_url == ENDPOINT
                await client.nack(cds, seen[CLUSTER].version_info, "cluster rejected")
                await client.request(LISTENER, nonce=seen[LISTENER].nonce, version="x")
                await client.ack(eds, names=["blue"])  # the rejected cluster's watch is gone
                probe = await receive(client)
                assert probe.type_url == ENDPOINT  # not ROUTE: the walk stopped
                assert names_of(probe) == ["blue"]
                status = server.status.node(KEY)
                assert status is not None
                assert status.type_status(ROUTE).responses == 1
                assert status.type_status(CLUSTER).nacks == 1

    run(scenario)


def test_missing_ack_times_out_and_the_walk_goes_on() -> None:
    """A proxy that never ACKs cannot wedge its stream: the step times out and is recorded."""

    async def scenario() -> None:
        timer = ManualTimer()  # the deadline passes when the test says so, not in real time
        async with serving(ack_timeout=10.0, timer=timer) as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                cache.set_snapshot(KEY, blue_green(encoder))
                assert (await receive(client)).type_url == CLUSTER  # never ACKed
                assert (await receive(client)).type_url == ENDPOINT  # sent with it, never ACKed
                async with asyncio.timeout(WAIT):
                    assert await timer.next_deadline() == 10.0
                status = server.status.node(KEY)
                assert status is not None
                assert status.gate_timeouts == 0
                timer.advance(10.0)
                rds = await receive(client)
                assert rds.type_url == ROUTE
                status = server.status.node(KEY)
                assert status is not None
                assert status.gate_timeouts == 1

    run(scenario)


def test_one_deadline_timer_serves_gate_after_gate() -> None:
    """A gate passed in time leaves its timer armed; the next gate's later deadline re-arms
    it when it fires, and only the gate left unACKed past its own deadline times out."""

    async def scenario() -> None:
        timer = ManualTimer()
        async with serving(ack_timeout=10.0, timer=timer) as (server, cache):
            encoder = ResourceEncoder()
            first = weighted(15000, BACKENDS, {"blue": 100, "green": 0}, encoder)
            second = weighted(15000, BACKENDS, {"blue": 0, "green": 100}, encoder)
            cache.set_snapshot(KEY, first)
            async with FakeAdsClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                cache.set_snapshot(KEY, second)
                await client.ack(await receive(client))
                await server.status.wait_synced(KEY, second, WAIT)
                assert timer.armed() == [10.0]  # the passed gate's timer, not cancelled
                timer.advance(6.0)
                cache.set_snapshot(KEY, first)
                assert (await receive(client)).type_url == ROUTE  # never ACKed: gate at 16
                # A probe the stream answers only after it set that gate (one inbox, in order).
                await client.ack(seen[ENDPOINT], names=["blue"])
                assert (await receive(client)).type_url == ENDPOINT
                assert timer.armed() == [10.0]  # no second timer for it
                timer.advance(4.0)
                assert timer.armed() == [16.0]  # fired early for this gate: re-armed
                status = server.status.node(KEY)
                assert status is not None
                assert status.gate_timeouts == 0
                timer.advance(6.0)
                status = await server.status.wait_for(KEY, lambda s: s.gate_timeouts == 1, WAIT)
                assert status.gate_timeouts == 1
                assert timer.armed() == []

    run(scenario)


def test_unchanged_snapshot_sends_nothing() -> None:
    """Setting a snapshot with identical content causes no push."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
                await client.request(LISTENER, nonce="stale")
                await client.request(ENDPOINT, [])  # unsubscribe all: this changes the answer
                response = await receive(client)
                assert response.type_url == ENDPOINT  # the first thing sent after set_snapshot
                assert list(response.resources) == []

    run(scenario)


def test_second_server_cannot_share_the_port() -> None:
    """SO_REUSEPORT is off: a second control plane fails to bind instead of splitting proxies."""

    async def scenario() -> None:
        async with serving() as (server, _cache):
            other = AdsServer(SnapshotCache(), clock=FakeClock())
            with pytest.raises((OSError, RuntimeError)):
                await other.start("127.0.0.1", server.port or 0)
            await other.stop(0)

    run(scenario)


def test_consistency_catches_dangling_references() -> None:
    """A snapshot naming EDS/RDS resources it lacks reports each one."""
    snapshot = Snapshot.of([cluster("blue"), listener(15000)])
    assert snapshot.inconsistencies() == [
        "'blue' references missing ClusterLoadAssignment 'blue'",
        "'lds_ingress' references missing RouteConfiguration 'rds_main'",
    ]
    complete = Snapshot.of(
        [cluster("blue"), endpoints("blue", 1), listener(15000), route_config({"blue": 1})]
    )
    assert complete.inconsistencies() == []
    complete.check_consistency()


class RecordingCallbacks:
    """StreamCallbacks that only list what the stream reported, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def record_connected(self, key: str, node: object, *, resumed: str = "") -> None:
        self.calls.append(("connected", key))

    def record_disconnected(self, key: str) -> None:
        self.calls.append(("disconnected", key))

    def record_sent(self, key: str, type_url: str, version: str) -> None:
        self.calls.append(("sent", key, type_url))

    def record_acked(self, key: str, type_url: str, version: str, acked: object) -> None:
        self.calls.append(("acked", key, type_url))

    def record_nacked(self, key: str, type_url: str, version: str, message: str) -> None:
        self.calls.append(("nacked", key, type_url, message))

    def record_gate_timeout(self, key: str) -> None:
        self.calls.append(("gate timeout", key))


def test_the_server_reports_to_any_callbacks_not_only_the_board() -> None:
    """AdsServer needs a SnapshotSource and StreamCallbacks; a plain recorder hears the stream."""

    async def scenario() -> list[tuple[str, ...]]:
        callbacks = RecordingCallbacks()
        cache = SnapshotCache()
        cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
        server = AdsServer(cache, callbacks=callbacks)
        await server.start("127.0.0.1", 0)
        try:
            with pytest.raises(AttributeError):
                _ = server.status
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER)
                clusters = await receive(client)
                await client.nack(clusters, "", "no thanks")
                await client.request(LISTENER)
                await receive(client)
        finally:
            await server.stop(0)
        return callbacks.calls

    assert run(scenario) == [
        ("connected", KEY),
        ("sent", KEY, CLUSTER),
        ("nacked", KEY, CLUSTER, "no thanks"),
        ("sent", KEY, LISTENER),
        ("disconnected", KEY),
    ]
