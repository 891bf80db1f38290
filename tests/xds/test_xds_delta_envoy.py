"""The ADS server driving a real Envoy 1.40 over delta (incremental) ADS.

What holds for both protocols (make-before-break under load, NACKs) runs over each in
``test_xds_envoy.py``; this file has what only delta shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from test_xds_envoy import KEY, SYNC, Mesh, counts, start
from xds_processes import EnvoyProcess

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.xds import AdsServer

pytestmark = pytest.mark.integration


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
        proxy = await start(mesh, envoys, delta=True, blue=100, green=0)
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


def test_delta_envoy_reconnects_with_what_it_runs_and_is_resent_nothing_unchanged(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Control plane restarted: Envoy names its resources (initial_resource_versions), is sent
    none of them again, reads SYNCED, and a later flip still moves its traffic."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        first = mesh.snapshot(blue=100)
        proxy = await start(mesh, envoys, delta=True, blue=100)
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
