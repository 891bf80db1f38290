"""The ADS server driving a real Envoy 1.40: ACKs, weighted splits, NACKs, restarts."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable

import aiohttp
import pytest
from xds_configs import route_config, weighted
from xds_processes import EnvoyProcess, free_port

from meshplane.envoy import CLUSTER, ENDPOINT, LISTENER, ROUTE
from meshplane.xds import AdsServer, ResourceEncoder, Snapshot, SnapshotCache, node_key

pytestmark = pytest.mark.integration

NODE = "mesh/demos/virtualNode/vn-echo-frontend"
REPLICA = "echo-frontend-0"
KEY = node_key(NODE, REPLICA)
SYNC = 30.0  # generous: a noisy 2-core CI box; never asserted as a duration


async def counts(session: aiohttp.ClientSession, url: str, n: int) -> collections.Counter[str]:
    """Send ``n`` sequential GETs; count bodies of 200s and ``status:<code>`` otherwise."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(n):
        async with session.get(url) as response:
            body = await response.text()
            seen[body if response.status == 200 else f"status:{response.status}"] += 1
    return seen


class Mesh:
    """One ADS server, one Envoy, two backends and a listener port, for one test."""

    def __init__(self, backends: Callable[[str], int]) -> None:
        self.ports = {"blue": backends("blue"), "green": backends("green")}
        self.listener_port = free_port()
        self.encoder = ResourceEncoder()
        self.cache = SnapshotCache()
        self.server = AdsServer(self.cache, ack_timeout=10.0)
        self.url = f"http://127.0.0.1:{self.listener_port}/"

    def snapshot(self, **weights: int) -> Snapshot:
        return weighted(self.listener_port, self.ports, weights, self.encoder)

    async def push(self, snapshot: Snapshot) -> None:
        """Set the snapshot and wait until Envoy has ACKed all of it."""
        self.cache.set_snapshot(KEY, snapshot)
        await self.server.status.wait_synced(KEY, snapshot, SYNC)


async def start(
    mesh: Mesh, envoys: Callable[..., EnvoyProcess], *, delta: bool = False, **weights: int
) -> EnvoyProcess:
    """Start the server and an Envoy (``delta``: bootstrapped for delta ADS); return once it
    has ACKed everything."""
    port = await mesh.server.start("127.0.0.1", 0)
    first = mesh.snapshot(**weights)
    mesh.cache.set_snapshot(KEY, first)
    proxy = envoys(NODE, port, replica=REPLICA, delta=delta)
    try:
        await mesh.server.status.wait_synced(KEY, first, SYNC)
    except TimeoutError:
        protocol = "delta" if delta else "state-of-the-world"
        pytest.fail(f"envoy never synced over {protocol} ADS:\n{proxy.log_text()[-4000:]}")
    return proxy


PROTOCOLS = pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
"""Tests that hold for both ADS protocols run over each."""


def test_envoy_acks_every_type_and_follows_the_weights(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Envoy boots from the bootstrap, ACKs all types, and splits 100/0, 0/100, 50/50."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start(mesh, envoys, blue=100, green=0)
        try:
            status = mesh.server.status.node(KEY)
            assert status is not None
            assert status.node.id == NODE
            assert status.types[CLUSTER].acked_version == mesh.snapshot(
                blue=100, green=0
            ).type_version(CLUSTER)
            async with aiohttp.ClientSession() as session:
                assert await counts(session, mesh.url, 2000) == {"blue": 2000}
                await mesh.push(mesh.snapshot(blue=0, green=100))
                assert await counts(session, mesh.url, 2000) == {"green": 2000}
                await mesh.push(mesh.snapshot(blue=50, green=50))
                split = await counts(session, mesh.url, 2000)
            # Binomial(2000, 0.5): sigma = sqrt(2000 * 0.25) ~ 22.4; allow 5 sigma.
            bound = 5 * math.sqrt(2000 * 0.25)
            assert sum(split.values()) == split["blue"] + split["green"] == 2000
            assert abs(split["blue"] - 1000) <= bound, split
            for type_url in (CLUSTER, LISTENER, ROUTE):
                assert mesh.server.status.nodes()[KEY].types[type_url].nacks == 0
        finally:
            await mesh.server.stop(0)

    asyncio.run(scenario())


class Load:
    """Bounded continuous GETs from a few workers, counting every outcome."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: collections.Counter[str] = collections.Counter()
        self.done = asyncio.Event()
        self._progress = asyncio.Condition()

    async def worker(self, session: aiohttp.ClientSession) -> None:
        for _ in range(100_000):  # bounded even if the test stalls
            if self.done.is_set():
                return
            try:
                async with session.get(self.url) as response:
                    body = await response.text()
                    outcome = body if response.status == 200 else f"{response.status}: {body}"
                    self.results[outcome] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.results[f"error:{type(exc).__name__}"] += 1
            async with self._progress:
                self._progress.notify_all()

    async def run_for(self, requests: int) -> None:
        """Wait until the workers have completed ``requests`` more requests."""
        target = self.results.total() + requests
        async with asyncio.timeout(SYNC), self._progress:
            await self._progress.wait_for(lambda: self.results.total() >= target)


@PROTOCOLS
def test_no_request_fails_while_a_target_is_added_and_removed(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess], delta: bool
) -> None:
    """Under continuous load, adding and removing a weighted cluster drops no request
    (make-before-break over either protocol)."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start(mesh, envoys, delta=delta, blue=100)
        load = Load(mesh.url)
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as keepalive,
                aiohttp.ClientSession(
                    timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)
                ) as fresh,
            ):
                sessions = [keepalive] * 6 + [fresh] * 2  # reused and new connections
                workers = [asyncio.create_task(load.worker(s)) for s in sessions]
                for _ in range(40):
                    await mesh.push(mesh.snapshot(blue=50, green=50))
                    await load.run_for(40)
                    await mesh.push(mesh.snapshot(blue=100))
                    await load.run_for(40)
                load.done.set()
                await asyncio.gather(*workers)
            protocol = "delta" if delta else "SotW"
            print(f"add/remove under load, 40 cycles, {protocol}: {dict(load.results)}")
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


@PROTOCOLS
def test_invalid_route_is_nacked_reported_and_not_resent(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess], delta: bool
) -> None:
    """An all-zero weighted route is NACKed with Envoy's message, kept in status, never resent."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start(mesh, envoys, delta=delta, blue=100)
        try:
            good = mesh.snapshot(blue=100)
            bad = Snapshot(
                [
                    *[r for t in (CLUSTER, LISTENER) for r in good.resources(t).values()],
                    *good.resources(ENDPOINT).values(),
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
            # Envoy keeps serving the last good routes.
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


def test_envoy_keeps_serving_without_the_control_plane_and_resyncs(
    backends: Callable[[str], int], envoys: Callable[..., EnvoyProcess]
) -> None:
    """Control plane stopped: traffic flows on the last config; restarted: Envoy resyncs."""

    async def scenario() -> None:
        mesh = Mesh(backends)
        await start(mesh, envoys, blue=100)
        port = mesh.server.port
        assert port is not None
        await mesh.server.stop(0)
        async with aiohttp.ClientSession() as session:
            assert await counts(session, mesh.url, 200) == {"blue": 200}
            restarted = AdsServer(mesh.cache, ack_timeout=10.0)
            mesh.server = restarted
            try:
                assert await restarted.start("127.0.0.1", port) == port
                await mesh.push(mesh.snapshot(green=100))
                assert await counts(session, mesh.url, 200) == {"green": 200}
                status = restarted.status.node(KEY)
                assert status is not None
                assert status.connected
            finally:
                await restarted.stop(0)

    asyncio.run(scenario())
