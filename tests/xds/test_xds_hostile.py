"""Hostile ADS clients are bounded: oversize nodes, stream floods, NACK floods, node-id churn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from xds_configs import cluster, endpoints

from meshplane.envoy import CLUSTER
from meshplane.kit.clock import FakeClock
from meshplane.kit.timers import ManualTimer
from meshplane.testing import FakeAdsClient
from meshplane.xds import AdsServer, ResourceEncoder, Snapshot, SnapshotCache, node_key
from meshplane.xds import status as xds_status
from meshplane.xds import stream as xds_stream

NODE = "mesh/demos/virtualNode/vn-frontend"
WAIT = 10.0


def run(scenario: object) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(60):
            await scenario()  # type: ignore[operator]

    asyncio.run(bounded())


@asynccontextmanager
async def serving(**options: object) -> AsyncIterator[tuple[AdsServer, SnapshotCache]]:
    cache = SnapshotCache()
    server = AdsServer(cache, clock=FakeClock(), **options)  # type: ignore[arg-type]
    await server.start("127.0.0.1", 0)
    try:
        yield server, cache
    finally:
        await server.stop(0)


async def _refusal(client: FakeAdsClient) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(WAIT):
            await client.receive()
    return caught.value


def test_an_oversize_node_is_refused_before_anything_is_recorded() -> None:
    """A Node over 64 KiB ends the stream with INVALID_ARGUMENT; the board never sees it."""

    async def scenario() -> None:
        async with serving() as (server, cache):
            cache.set_snapshot(node_key(NODE), Snapshot.of([cluster("a")], ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                client.node.metadata.update({"junk": "x" * (70 * 1024)})
                await client.request(CLUSTER)
                error = await _refusal(client)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details().startswith("the Node is ")
            assert error.details().endswith(
                "bytes; meshplane accepts at most 65536 (node id, cluster and metadata)"
            )
            assert dict(server.status.nodes()) == {}

    run(scenario)


def test_streams_past_the_cap_are_refused() -> None:
    """With a cap of one stream, a second is ended with RESOURCE_EXHAUSTED; the first serves."""

    async def scenario() -> None:
        async with serving(max_streams=1) as (server, cache):
            cache.set_snapshot(node_key(NODE), Snapshot.of([cluster("a")], ResourceEncoder()))
            async with FakeAdsClient(server.port or 0, NODE) as first:
                await first.request(CLUSTER)
                async with asyncio.timeout(WAIT):
                    assert len((await first.receive()).resources) == 1
                async with FakeAdsClient(server.port or 0, "mesh/demos/virtualNode/b") as second:
                    await second.request(CLUSTER)
                    error = await _refusal(second)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error.details() == "meshplane serves at most 1 ADS streams"

    run(scenario)


def test_nack_messages_are_truncated_and_their_logging_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 100 kB NACK message is kept cut to 2048 characters; three quick NACKs log once."""
    timer = ManualTimer()  # never advanced: the three NACKs arrive within one interval
    encoder = ResourceEncoder()

    async def scenario() -> None:
        async with serving(timer=timer) as (server, cache):
            key = node_key(NODE)
            cache.set_snapshot(key, Snapshot.of([cluster("a"), endpoints("a", 1)], encoder))
            async with FakeAdsClient(server.port or 0, NODE) as client:
                await client.request(CLUSTER)
                async with asyncio.timeout(WAIT):
                    response = await client.receive()
                for _ in range(3):  # each NACK carries the latest nonce: each one counts
                    await client.nack(response, "", "e" * 100_000)
                status = await server.status.wait_for(
                    key, lambda s: s.type_status(CLUSTER).nacks == 3, WAIT
                )
                nack = status.type_status(CLUSTER).last_nack
                assert nack is not None
                assert nack.message == "e" * 2048 + "… (97952 more characters)"

    with caplog.at_level(logging.WARNING):
        run(scenario)
    logged = [r.getMessage() for r in caplog.records if "NACKed" in r.getMessage()]
    assert len(logged) == 1
    assert len(logged[0]) < 2200


def test_the_board_forgets_all_but_the_most_recent_disconnected_proxies() -> None:
    """Of five proxies that came and went, the board keeps the last two; connected ones stay."""
    board = xds_status.StatusBoard(FakeClock(), keep_disconnected=2)
    board.record_connected("stays", base_pb2.Node(id="stays"))
    for index in range(5):
        board.record_connected(f"k{index}", base_pb2.Node(id=f"k{index}"))
        board.record_disconnected(f"k{index}")
    assert sorted(board.nodes()) == ["k3", "k4", "stays"]
    board.record_connected("k3", base_pb2.Node(id="k3"))  # back: no longer counted as gone
    board.record_connected("k9", base_pb2.Node(id="k9"))
    board.record_disconnected("k9")
    assert sorted(board.nodes()) == ["k3", "k4", "k9", "stays"]


def test_truncated_says_how_much_was_cut() -> None:
    """Short messages pass unchanged; long ones are cut with the count of the rest."""
    assert xds_stream.truncated("short") == "short"
    assert xds_stream.truncated("abcdef", limit=4) == "abcd… (2 more characters)"
