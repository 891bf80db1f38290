"""1,000 ACKing ADS streams: from a weight flip to the last stream served, and all ACKed.

The server is an in-process :class:`meshplane.xds.AdsServer`; the streams are
:class:`meshplane.testing.FakeAdsClient` s that behave like healthy Envoys
(``follow``: subscribe, ACK every response), run in a child process so that the
server's process CPU is the server's alone. Per flip (a weight change: RDS only, as
:mod:`bench.xds_fanout`'s ``weights`` scenario) the bench times, from the first
``set_snapshot`` of the flip, the moment the last stream was written its new route
configuration (``last served``) and the moment the last ACK arrived (``all ACKed``),
counted by a status-board stream observer, never by sleeping; and the server's CPU
(``getrusage``) per stream per flip.

Run: ``python -m bench.ack_streams [--streams 1000] [--flips 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time

from bench import xds_fanout
from meshplane import xds
from meshplane.envoy import resources as envoy_resources
from meshplane.testing import FakeAdsClient
from meshplane.xds import status as xds_status

WEIGHTS = ({"blue": 100, "green": 0}, {"blue": 0, "green": 100})
GOAL_MS = 150.0


def _key(index: int) -> str:
    return f"mesh/bench/virtualNode/vn-{index:04d}"


async def _clients(port: int, count: int) -> None:
    """The child process: ``count`` streams that follow the server like healthy Envoys."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(FakeAdsClient(port, _key(i))) for i in range(count)
        ]
        following = [asyncio.create_task(c.follow()) for c in clients]
        # Ends when the parent closes our stdin (or kills us).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in following:
            task.cancel()


class _Counter:
    """Counts, per flip, RDS responses written at the new version and their ACKs."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.version = ""
        self.sent = self.acked = 0
        self.served_at = self.acked_at = 0.0
        self.done = asyncio.Event()

    def expect(self, version: str) -> None:
        self.version, self.sent, self.acked = version, 0, 0
        self.done = asyncio.Event()

    def __call__(self, event: xds_status.StreamEvent) -> None:
        if getattr(event, "type_url", None) != envoy_resources.ROUTE:
            return
        if getattr(event, "version", None) != self.version:
            return
        if isinstance(event, xds_status.Sent):
            self.sent += 1
            if self.sent == self.count:
                self.served_at = time.perf_counter()
        elif isinstance(event, xds_status.Acked):
            self.acked += 1
            if self.acked == self.count:
                self.acked_at = time.perf_counter()
                self.done.set()


async def run(count: int, flips: int) -> tuple[list[float], list[float], list[float]]:
    """(last served, all ACKed, CPU seconds per stream) for each flip."""
    cache = xds.SnapshotCache()
    server = xds.AdsServer(cache, ack_timeout=30.0, max_streams=count + 16)
    port = await server.start()
    encoder = xds.ResourceEncoder()
    variants = [
        [xds_fanout.snapshot(20000 + i, weights, encoder) for i in range(count)]
        for weights in WEIGHTS
    ]
    for index in range(count):
        cache.set_snapshot(_key(index), variants[0][index])
    counter = _Counter(count)
    server.status.subscribe_stream(counter)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.ack_streams", "--child", str(port), str(count)],
        stdin=subprocess.PIPE,
    )
    served, acked, cpu = [], [], []
    try:
        async with asyncio.timeout(600):
            for index in range(count):
                await server.status.wait_synced(_key(index), variants[0][index], timeout=600)
        for flip in range(flips):
            target = variants[(flip + 1) % 2]
            counter.expect(target[0].type_version(envoy_resources.ROUTE))
            began, cpu_before = time.perf_counter(), xds_fanout._cpu_seconds()
            for index in range(count):
                cache.set_snapshot(_key(index), target[index])
            async with asyncio.timeout(120):
                await counter.done.wait()
            cpu.append((xds_fanout._cpu_seconds() - cpu_before) / count)
            served.append(counter.served_at - began)
            acked.append(counter.acked_at - began)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)
        await server.stop(0)
    return served, acked, cpu


def main(argv: list[str] | None = None) -> None:
    """Run the flips and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--flips", type=int, default=10)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_clients(*args.child))
        return
    served, acked, cpu = asyncio.run(run(args.streams, args.flips))

    def ms(values: list[float], q: float) -> str:
        ordered = sorted(values)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:8.1f}"

    print(f"{args.streams} ACKing streams (FakeAdsClient, child process), {args.flips} flips")
    print(f"{'':14} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'last served':14} {ms(served, 0.5)} {ms(served, 0.99)}   (goal {GOAL_MS:.0f} ms)")
    print(f"{'all ACKed':14} {ms(acked, 0.5)} {ms(acked, 0.99)}")
    print(f"server CPU per stream per flip: {statistics.median(cpu) * 1e6:.0f} µs (median)")


if __name__ == "__main__":
    main()
