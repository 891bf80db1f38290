"""The ADS server driving a real Envoy 1.40 over delta (incremental) ADS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from test_xds_envoy import KEY, NODE, REPLICA, SYNC, Load, Mesh, counts
from xds_configs import route_config
from xds_processes import EnvoyProcess

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.xds import AdsServer, Snapshot

pytestmark = pytest.mark.integration


async def start_delta(
    mesh: Mesh, envoys: Callable[..., EnvoyProcess], **weights: int
) -> EnvoyProcess:
    """Start the server and a delta-bootstrapped Envoy; return once it has ACKed everything."""
    port = await mesh.server.start("127.0.0.1", 0)
    first = mesh.snapshot(**weights)
    mesh.cache.set_snapshot(KEY, first)
    proxy = envoys(NODE, port, replica=REPLICA, delta=True)
    try:
        await mesh.server.status.wait_synced(KEY, first, SYNC)
    except TimeoutError:
        pytest.fail(f"envoy never synced over delta:\n{proxy.log_text()[-4000:]}")
    return proxy


async def updates(session: aiohttp.ClientSession, proxy: EnvoyProcess) -> dict[str, int]:
    """Envoy's own count of the updates it applied, per subscription (``*.update_success``)."""
    url = f"{await asyncio.to_thread(proxy.admin_url)}/stats?filter=update_success$"
    async with session.get(url) as response:
        text = await response.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if not name.startswith("cluster.xds_cluster."):
            found[name.removesuffix(".update_success")] = int(value)
    return found


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The subscriptions whose update count moved, and by how much."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_delta_envoy_syncs_follows_a_weight_flip_and_gets_one_assignment_per_endpoint_change(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Over DELTA_GRPC: SYNCED; a flip moves traffic with one RDS resource; moving green's
    endpoint sends exactly one ClusterLoadAssignment, and Envoy updates only that one."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        proxy = await start_delta(mesh, envoys, blue=100, green=0)
        try:
            async with aiohttp.ClientSession() as session:
                assert await counts(session, mesh.url, 200) == {"blue": 200}
                first = await updates(session, proxy)
                await mesh.push(mesh.snapshot(blue=0, green=100))
                assert await counts(session, mesh.url, 200) == {"green": 200}
                flipped = await updates(session, proxy)
                mesh.ports["green"] = backends("teal")  # green's endpoint moves to "teal"
                moved = mesh.snapshot(blue=0, green=100)
                await mesh.push(moved)
                assert await counts(session, mesh.url, 200) == {"teal": 200}
                last = await updates(session, proxy)
            # Envoy applied one route update for the flip, and one assignment (green's) for the
            # move: nothing else was sent, so nothing else was applied.
            assert changed(first, flipped) == {"http.ingress.rds.rds_main": 1}
            assert changed(flipped, last) == {"cluster.green": 1}
            status = mesh.server.status.node(KEY)
            assert status is not None
            # One response per change, of the changed type only (a SotW EDS response would
            # carry blue's assignment too; the fake-client tests count resources per response).
            assert [
                status.type_status(t).responses for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)
            ] == [1, 2, 1, 2]
            assert [status.type_status(t).nacks for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)] == [
                0,
                0,
                0,
                0,
            ]
        finally:
            await mesh.server.stop(0)

    asyncio.run(scenario())


def test_no_request_fails_while_a_target_is_added_and_removed_over_delta(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Make-before-break over delta: under load, adding and removing a cluster drops nothing."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start_delta(mesh, envoys, blue=100)
        load = Load(mesh.url)
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as keepalive,
                aiohttp.ClientSession(
                    timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)
                ) as fresh,
            ):
                sessions = [keepalive] * 6 + [fresh] * 2
                workers = [asyncio.create_task(load.worker(s)) for s in sessions]
                for _ in range(20):
                    await mesh.push(mesh.snapshot(blue=50, green=50))
                    await load.run_for(40)
                    await mesh.push(mesh.snapshot(blue=100))
                    await load.run_for(40)
                load.done.set()
                await asyncio.gather(*workers)
            failures = {k: v for k, v in load.results.items() if k not in ("blue", "green")}
            assert failures == {}
            assert load.results["blue"] > load.results["green"] > 0
            status = mesh.server.status.node(KEY)
            assert status is not None
            assert status.gate_timeouts == 0
            assert status.type_status(CLUSTER).nacks == 0
        finally:
            await mesh.server.stop(0)

    asyncio.run(scenario())


def test_invalid_route_over_delta_is_nacked_reported_and_not_resent(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """An all-zero weighted route is NACKed with Envoy's message; Envoy keeps the good one."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start_delta(mesh, envoys, blue=100)
        try:
            good = mesh.snapshot(blue=100)
            bad = Snapshot(
                [
                    *[r for t in (CLUSTER, LISTENER, ENDPOINT) for r in good.resources(t).values()],
                    mesh.encoder.encode(route_config({"blue": 0})),
                ]
            )
            mesh.cache.set_snapshot(KEY, bad)
            status = await mesh.server.status.wait_for(
                KEY, lambda s: s.type_status(ROUTE).last_nack is not None, SYNC
            )
            nack = status.type_status(ROUTE).last_nack
            assert nack is not None
            assert nack.version == bad.type_version(ROUTE)
            assert nack.message == "Sum of weights in the weighted_cluster must be greater than 0."
            assert status.type_status(ROUTE).acked_version == good.type_version(ROUTE)
            async with aiohttp.ClientSession() as session:
                assert await counts(session, mesh.url, 200) == {"blue": 200}
            await mesh.push(mesh.snapshot(blue=100, green=0))
            final = mesh.server.status.node(KEY)
            assert final is not None
            assert final.type_status(ROUTE).nacks == 1
            assert final.type_status(ROUTE).last_nack == nack
        finally:
            await mesh.server.stop(0)

    asyncio.run(scenario())


def test_delta_envoy_reconnects_with_what_it_runs_and_is_resent_nothing_unchanged(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Control plane restarted: Envoy names its resources (initial_resource_versions), is sent
    none of them again, reads SYNCED, and a later flip still moves its traffic."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        first = mesh.snapshot(blue=100)
        proxy = await start_delta(mesh, envoys, blue=100)
        port = mesh.server.port
        assert port is not None
        await mesh.server.stop(0)
        async with aiohttp.ClientSession() as session:
            assert await counts(session, mesh.url, 200) == {"blue": 200}
            before = await updates(session, proxy)
            restarted = AdsServer(mesh.cache, ack_timeout=10.0)
            mesh.server = restarted
            try:
                assert await restarted.start("127.0.0.1", port) == port
                status = await restarted.status.wait_synced(KEY, first, SYNC)
                assert status.resumed != ""
                # CDS and LDS count their (empty) first answers; no assignment or route
                # configuration was sent again, so none was applied again.
                assert changed(before, await updates(session, proxy)) == {
                    "cluster_manager.cds": 1,
                    "listener_manager.lds": 1,
                }
                # Every type was answered once, with nothing: Envoy held it all already.
                assert [
                    status.type_status(t).responses for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)
                ] == [1, 1, 1, 1]
                await mesh.push(mesh.snapshot(green=100))
                assert await counts(session, mesh.url, 200) == {"green": 200}
            finally:
                await restarted.stop(0)

    asyncio.run(scenario())
