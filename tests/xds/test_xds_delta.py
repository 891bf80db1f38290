"""Delta (incremental) ADS against a protocol-level fake client over real gRPC on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from test_xds_protocol import BACKENDS, KEY, NODE, WAIT, blue_green, blue_only, run, serving
from xds_configs import weighted

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.kit.timers import ManualTimer
from meshplane.testing import FakeAdsClient, FakeDeltaClient
from meshplane.testing.delta import names_of
from meshplane.xds import (
    AdsServer,
    PermissionDenied,
    ResourceEncoder,
    Snapshot,
    SnapshotCache,
    Unauthenticated,
    delta,
)


async def receive(client: FakeDeltaClient) -> discovery_pb2.DeltaDiscoveryResponse:
    async with asyncio.timeout(WAIT):
        return await client.receive()


async def subscribe_all(client: FakeDeltaClient) -> dict[str, discovery_pb2.DeltaDiscoveryResponse]:
    """Walk the fake client through Envoy's delta startup; returns the ACKed responses."""
    seen: dict[str, discovery_pb2.DeltaDiscoveryResponse] = {}
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


def moved_green(encoder: ResourceEncoder, port: int = 9102) -> Snapshot:
    """Blue and green at 50/50 with green's endpoint on another port."""
    return weighted(15000, {**BACKENDS, "green": port}, {"blue": 50, "green": 50}, encoder)


def test_initial_subscriptions_are_answered_and_synced() -> None:
    """Wildcard CDS/LDS and named EDS/RDS are answered in full; the ACKs make it SYNCED."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            snapshot = blue_green(ResourceEncoder())
            cache.set_snapshot(KEY, snapshot)
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                seen = await subscribe_all(client)
                assert names_of(seen[CLUSTER]) == ["blue", "green"]
                assert names_of(seen[ENDPOINT]) == ["blue", "green"]
                assert names_of(seen[LISTENER]) == ["lds_ingress"]
                assert names_of(seen[ROUTE]) == ["rds_main"]
                assert [list(r.removed_resources) for r in seen.values()] == [[], [], [], []]
                clusters = snapshot.resources(CLUSTER)
                assert [r.version for r in seen[CLUSTER].resources] == [
                    clusters["blue"].version,
                    clusters["green"].version,
                ]
                status = await server.status.wait_synced(KEY, snapshot, WAIT)
                for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
                    kind = status.type_status(type_url)
                    # The same version a SotW stream reports for the same resources.
                    assert seen[type_url].system_version_info == snapshot.type_version(type_url)
                    assert kind.acked_version == snapshot.type_version(type_url)
                    assert kind.responses == 1
                    assert kind.nacks == 0

    run(scenario)


def test_endpoint_change_sends_only_the_changed_assignment() -> None:
    """A moved endpoint sends one ClusterLoadAssignment, and nothing of any other type."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = moved_green(encoder)
                cache.set_snapshot(KEY, target)
                eds = await receive(client)
                assert eds.type_url == ENDPOINT
                assert names_of(eds) == ["green"]
                assert list(eds.removed_resources) == []
                assert eds.resources[0].version == target.resources(ENDPOINT)["green"].version
                await client.ack(eds)
                await server.status.wait_synced(KEY, target, WAIT)
                # Had anything else been sent, it would arrive before this LDS answer.
                await client.request(LISTENER, ["lds_ingress"])
                again = await receive(client)
                assert (again.type_url, names_of(again)) == (LISTENER, ["lds_ingress"])
                status = server.status.node(KEY)
                assert status is not None
                assert [status.type_status(t).responses for t in (CLUSTER, ENDPOINT, ROUTE)] == [
                    1,
                    2,
                    1,
                ]

    run(scenario)


def test_weight_flip_sends_one_route_configuration() -> None:
    """A weight change is one RDS resource; its ACK makes the proxy SYNCED."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = weighted(15000, BACKENDS, {"blue": 0, "green": 100}, encoder)
                cache.set_snapshot(KEY, target)
                rds = await receive(client)
                assert (rds.type_url, names_of(rds)) == (ROUTE, ["rds_main"])
                assert rds.system_version_info == target.type_version(ROUTE)
                await client.ack(rds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_adding_a_target_sends_only_the_new_cluster_before_routes() -> None:
    """Make-before-break: the added cluster alone, its endpoints right behind it (before
    Envoy subscribes to them); routes after both ACKs."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = blue_green(encoder)
                cache.set_snapshot(KEY, target)
                cds = await receive(client)
                assert (cds.type_url, names_of(cds)) == (CLUSTER, ["green"])
                eds = await receive(client)
                assert (eds.type_url, names_of(eds)) == (ENDPOINT, ["green"])
                await client.ack(cds)
                # Envoy subscribes to the new cluster's endpoints before it reads the response
                # above, which its new subscription then takes: nothing is sent again.
                await client.request(ENDPOINT, ["green"])
                await client.ack(eds)
                rds = await receive(client)
                assert rds.type_url == ROUTE  # the listener did not change: step skipped
                assert rds.system_version_info == target.type_version(ROUTE)
                await client.ack(rds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_endpoints_sent_ahead_of_a_subscription_are_resent_once_it_comes() -> None:
    """Had no cluster subscribed when Envoy read the endpoints sent ahead (it ACKed them
    first), its later subscription is answered again, and routes wait for that."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = blue_green(encoder)
                cache.set_snapshot(KEY, target)
                cds = await receive(client)
                ahead = await receive(client)
                assert (ahead.type_url, names_of(ahead)) == (ENDPOINT, ["green"])
                await client.ack(cds)
                await client.ack(ahead)  # read before any watch wanted it
                await client.request(ENDPOINT, ["green"])
                again = await receive(client)  # not the routes: green is not known warm
                assert (again.type_url, names_of(again)) == (ENDPOINT, ["green"])
                await client.ack(again)
                rds = await receive(client)
                assert rds.type_url == ROUTE
                await client.ack(rds)
                await server.status.wait_synced(KEY, target, WAIT)

    run(scenario)


def test_removing_a_target_moves_routes_before_removing_the_cluster() -> None:
    """Make-before-break: routes first; the stale cluster and endpoints are removed after."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                target = blue_only(encoder)
                cache.set_snapshot(KEY, target)
                rds = await receive(client)
                assert (rds.type_url, names_of(rds)) == (ROUTE, ["rds_main"])
                await client.ack(rds)
                cds = await receive(client)
                assert (cds.type_url, names_of(cds), list(cds.removed_resources)) == (
                    CLUSTER,
                    [],
                    ["green"],
                )
                eds = await receive(client)
                assert (eds.type_url, names_of(eds), list(eds.removed_resources)) == (
                    ENDPOINT,
                    [],
                    ["green"],
                )
                await client.ack(cds)
                await client.request(ENDPOINT, unsubscribe=["green"])
                await client.ack(eds)
                status = await server.status.wait_synced(KEY, target, WAIT)
                assert dict(status.type_status(CLUSTER).acked) == {
                    "blue": target.resources(CLUSTER)["blue"].version
                }

    run(scenario)


def test_nack_is_recorded_and_not_resent() -> None:
    """A NACK keeps Envoy's message in status (NACKED); only a changed version is sent."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            first = blue_only(encoder)
            cache.set_snapshot(KEY, first)
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER)
                response = await receive(client)
                await client.nack(response, "bad cluster: no")
                # Requests are handled in order: a resend would arrive before this answer.
                await client.request(LISTENER)
                assert (await receive(client)).type_url == LISTENER
                status = server.status.node(KEY)
                assert status is not None
                cds = status.type_status(CLUSTER)
                assert cds.nacks == 1
                assert cds.last_nack is not None
                assert cds.last_nack.message == "bad cluster: no"
                assert cds.last_nack.version == first.type_version(CLUSTER)
                assert cds.last_nack.at == 1_700_000_000.0
                assert cds.acked_version is None
                assert cds.responses == 1
                cache.set_snapshot(KEY, blue_green(encoder))
                again = await receive(client)
                assert (again.type_url, names_of(again)) == (CLUSTER, ["green"])

    run(scenario)


def test_reconnect_with_initial_versions_sends_only_what_changed() -> None:
    """initial_resource_versions: held resources are not resent, stale and unknown ones are."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            snapshot = moved_green(encoder)
            cache.set_snapshot(KEY, snapshot)
            endpoints = snapshot.resources(ENDPOINT)
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                held = {"blue": endpoints["blue"].version, "green": "old", "gone": "v1"}
                await client.request(ENDPOINT, ["blue", "green", "gone"], initial=held)
                eds = await receive(client)
                assert names_of(eds) == ["green"]
                assert list(eds.removed_resources) == ["gone"]
                await client.ack(eds)
                status = await server.status.wait_for(
                    KEY, lambda s: s.type_status(ENDPOINT).acked_version is not None, WAIT
                )
                assert dict(status.type_status(ENDPOINT).acked) == {
                    n: r.version for n, r in endpoints.items()
                }
                assert status.resumed != ""

    run(scenario)


def test_subscriptions_change_by_name() -> None:
    """A name subscribed anew is sent even if held; an unknown one is answered as removed."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(KEY, blue_green(ResourceEncoder()))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["green", "unknown"])
                first = await receive(client)
                assert (names_of(first), list(first.removed_resources)) == (["green"], ["unknown"])
                await client.ack(first)
                await client.request(ENDPOINT, ["blue"], ["green"])
                second = await receive(client)
                assert (names_of(second), list(second.removed_resources)) == (["blue"], [])
                await client.ack(second)
                await client.request(ENDPOINT, ["blue"])  # again: Envoy wants it now
                third = await receive(client)
                assert (names_of(third), list(third.removed_resources)) == (["blue"], [])
                await client.ack(third)
                status = await server.status.wait_for(
                    KEY, lambda s: s.type_status(ENDPOINT).responses == 3, WAIT
                )
                assert sorted(status.type_status(ENDPOINT).acked) == ["blue"]

    run(scenario)


def test_nack_during_make_before_break_keeps_the_old_routes() -> None:
    """A NACKed cluster step abandons the walk: routes never point at the rejected cluster."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_only(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                cache.set_snapshot(KEY, blue_green(encoder))
                cds = await receive(client)
                assert cds.type_url == CLUSTER
                eds = await receive(client)  # the added cluster's endpoints, sent with it
                assert eds.type_url == ENDPOINT
                assert [r.name for r in eds.resources] == ["green"]
                await client.nack(cds, "green: bad")
                await client.request(LISTENER, ["lds_ingress"])
                # The LDS answer comes next: no route was sent after the NACK.
                assert (await receive(client)).type_url == LISTENER
                status = server.status.node(KEY)
                assert status is not None
                assert status.type_status(ROUTE).responses == 1
                assert status.type_status(CLUSTER).last_nack is not None

    run(scenario)


def test_missing_ack_times_out_and_the_walk_goes_on() -> None:
    """A proxy that never ACKs cannot wedge its delta stream: the step times out, recorded."""

    async def scenario() -> None:
        timer = ManualTimer()
        async with serving(ack_timeout=5.0, timer=timer) as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await subscribe_all(client)
                cache.set_snapshot(KEY, blue_only(encoder))
                rds = await receive(client)
                assert rds.type_url == ROUTE  # never ACKed
                async with asyncio.timeout(WAIT):
                    assert await timer.next_deadline() == 5.0
                timer.advance(5.0)
                cds = await receive(client)
                assert (cds.type_url, list(cds.removed_resources)) == (CLUSTER, ["green"])
                status = server.status.node(KEY)
                assert status is not None
                assert status.gate_timeouts == 1

    run(scenario)


class _Tokens:
    """A toy authenticator: metadata ``x-meshplane-token`` must be "<node id>:ok"."""

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        token = metadata.get("x-meshplane-token")
        if token is None:
            raise Unauthenticated("no token")
        if token != f"{node.id}:ok":
            raise PermissionDenied(f"token {token} is not for {node.id}")


def test_delta_streams_are_admitted_like_sotw_streams() -> None:
    """No token → UNAUTHENTICATED, another node's → PERMISSION_DENIED, the right one served."""

    async def scenario() -> list[object]:
        cache = SnapshotCache()
        cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
        server = AdsServer(cache, authenticator=_Tokens())
        port = await server.start("127.0.0.1", 0)
        outcomes: list[object] = []
        try:
            for credential in (None, "mesh/demos/virtualNode/vn-other:ok", f"{NODE}:ok"):
                async with FakeDeltaClient(port, NODE, credential=credential) as proxy:
                    await proxy.request(CLUSTER)
                    if credential == f"{NODE}:ok":
                        outcomes.append(names_of(await receive(proxy)))
                    else:
                        async with asyncio.timeout(WAIT):
                            outcomes.append(await proxy.ended())
            outcomes.append(sorted(server.status.nodes()))
        finally:
            await server.stop(0)
        return outcomes

    assert run(scenario) == [
        (grpc.StatusCode.UNAUTHENTICATED, "no token"),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            f"token mesh/demos/virtualNode/vn-other:ok is not for {NODE}",
        ),
        ["blue"],
        [KEY],
    ]


def test_unacked_responses_are_remembered_up_to_a_bound() -> None:
    """A proxy that never ACKs cannot grow its stream: the oldest unsettled nonce is forgotten."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            encoder = ResourceEncoder()
            cache.set_snapshot(KEY, blue_green(encoder))
            async with FakeDeltaClient(server.port or 0, NODE) as client:
                await client.request(ENDPOINT, ["blue"])
                oldest = await receive(client)
                responses = [oldest]
                for _ in range(delta.MAX_IN_FLIGHT):
                    await client.request(ENDPOINT, ["blue"])  # asked anew: answered anew
                    responses.append(await receive(client))
                await client.ack(oldest)  # forgotten: records nothing
                await client.request(LISTENER)  # handled after that ACK, in order
                assert (await receive(client)).type_url == LISTENER
                before = server.status.node(KEY)
                assert before is not None
                assert before.type_status(ENDPOINT).acked_version is None
                await client.ack(responses[1])  # still remembered: recorded
                status = await server.status.wait_for(
                    KEY, lambda s: s.type_status(ENDPOINT).acked_version is not None, WAIT
                )
                assert status.type_status(ENDPOINT).responses == delta.MAX_IN_FLIGHT + 1
                assert dict(status.type_status(ENDPOINT).acked) == {
                    "blue": blue_green(encoder).resources(ENDPOINT)["blue"].version
                }

    run(scenario)


def test_delta_streams_share_the_node_limit_and_the_stream_cap() -> None:
    """An oversize Node ends a delta stream with INVALID_ARGUMENT; a SotW and a delta stream
    count against one cap, so the second of a cap of one is RESOURCE_EXHAUSTED."""

    async def scenario() -> tuple[list[tuple[grpc.StatusCode, str]], list[str]]:
        cache = SnapshotCache()
        cache.set_snapshot(KEY, blue_only(ResourceEncoder()))
        server = AdsServer(cache, max_streams=1)
        port = await server.start("127.0.0.1", 0)
        outcomes = []
        try:
            async with FakeDeltaClient(port, NODE) as oversize:
                oversize.node.metadata.update({"junk": "x" * (70 * 1024)})
                await oversize.request(CLUSTER)
                async with asyncio.timeout(WAIT):
                    code, details = await oversize.ended()
                outcomes.append((code, details.split(" bytes;")[0].rstrip("0123456789")))
            async with FakeAdsClient(port, NODE) as first:
                await first.request(CLUSTER)
                async with asyncio.timeout(WAIT):
                    assert len((await first.receive()).resources) == 1
                async with FakeDeltaClient(port, NODE) as second:
                    await second.request(CLUSTER)
                    async with asyncio.timeout(WAIT):
                        outcomes.append(await second.ended())
            keys = sorted(server.status.nodes())  # the oversize stream left no trace
        finally:
            await server.stop(0)
        return outcomes, keys

    assert run(scenario) == (
        [
            (grpc.StatusCode.INVALID_ARGUMENT, "the Node is "),
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "meshplane serves at most 1 ADS streams"),
        ],
        [KEY],
    )
