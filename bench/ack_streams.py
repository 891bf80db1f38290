"""1,000 ACKing ADS streams: from a change to the last stream served, and all ACKed.

The server is an in-process :class:`meshplane.xds.AdsServer`; the streams are
:class:`meshplane.testing.FakeAdsClient` s (state of the world) or
:class:`meshplane.testing.FakeDeltaClient` s (incremental) that behave like healthy
Envoys (``follow``: subscribe, ACK every response), run in a child process so that the
server's process CPU is the server's alone. Two changes, each measured over both
protocols in the same run, one after the other:

- ``weight flip``: a weight change, RDS only (as :mod:`bench.xds_fanout`'s ``weights``);
- ``endpoint change``: one of :data:`CLUSTERS` clusters' endpoint moves, so a SotW
  response carries every ClusterLoadAssignment the proxy subscribes to and a delta one
  only the moved one.

Per change the bench times, from the first ``set_snapshot``, the moment the last stream
was written the changed type at its new version (``last served``) and the moment the
last ACK arrived (``all ACKed``), counted by a status-board stream observer, never by
sleeping; the server's CPU (``getrusage``) per stream per change; and the fake clients'
(their process's, from ``/proc``), which share the machine's cores with the server.

``--freeze`` runs each one twice, side by side: as is, and with
:func:`meshplane.app.freeze_heap` (what the app calls after its first publish pass: the
heap frozen, the young generation's threshold raised) called once the streams are
synced; the ``GC`` rows are the time the cyclic collector ran during the changes
(``gc.callbacks``), all generations and full collections.

Run: ``python -m bench.ack_streams [--streams 1000] [--flips 10] [--modes sotw,delta] [--freeze]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from google.protobuf import message

from bench import xds_fanout
from meshplane import app, xds
from meshplane.envoy import resources as envoy_resources
from meshplane.testing import FakeAdsClient, FakeDeltaClient
from meshplane.xds import status as xds_status

WEIGHTS = ({"blue": 100, "green": 0}, {"blue": 0, "green": 100})
GOAL_MS = 150.0
CLUSTERS = 20
"""Clusters (each with its endpoints) a proxy of the endpoint-change scenario runs."""
MODES = ("sotw", "delta")
SCENARIOS = ("weight flip", "endpoint change")


def _key(index: int) -> str:
    return f"mesh/bench/virtualNode/vn-{index:04d}"


def _endpoint_snapshot(
    listener_port: int, moved: int, encoder: xds.ResourceEncoder
) -> xds.Snapshot:
    """:data:`CLUSTERS` clusters and their endpoints; cluster 0's endpoint on port ``moved``."""
    names = [f"svc-{i:02d}" for i in range(CLUSTERS)]
    built: list[message.Message] = [
        xds_fanout._listener(listener_port),
        xds_fanout._routes({names[0]: 100}),
    ]
    for index, name in enumerate(names):
        built += [
            xds_fanout._cluster(name),
            xds_fanout._endpoints(name, moved if index == 0 else 100 + index),
        ]
    return xds.Snapshot.of(built, encoder)


def _variants(scenario: str, count: int, encoder: xds.ResourceEncoder) -> list[list[xds.Snapshot]]:
    """The two snapshots per stream a scenario alternates between."""
    if scenario == "weight flip":
        return [
            [xds_fanout.snapshot(20000 + i, weights, encoder) for i in range(count)]
            for weights in WEIGHTS
        ]
    return [
        [_endpoint_snapshot(20000 + i, port, encoder) for i in range(count)] for port in (9, 10)
    ]


async def _clients(port: int, count: int, delta: bool) -> None:
    """The child process: ``count`` streams that follow the server like healthy Envoys."""
    kind = FakeDeltaClient if delta else FakeAdsClient
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(kind(port, _key(i))) for i in range(count)]
        following = [asyncio.create_task(c.follow()) for c in clients]
        # Ends when the parent closes our stdin (or kills us).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in following:
            task.cancel()


class _Counter:
    """Counts, per change, responses of ``type_url`` written at the new version and ACKs."""

    def __init__(self, count: int, type_url: str) -> None:
        self.count = count
        self.type_url = type_url
        self.version = ""
        self.sent = self.acked = 0
        self.served_at = self.acked_at = 0.0
        self.done = asyncio.Event()

    def expect(self, version: str) -> None:
        self.version, self.sent, self.acked = version, 0, 0
        self.done = asyncio.Event()

    def __call__(self, event: xds_status.StreamEvent) -> None:
        if getattr(event, "type_url", None) != self.type_url:
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


class _CollectorTime:
    """Seconds the cyclic collector ran: all generations, and generation 2 (full collections)."""

    def __init__(self) -> None:
        self.total = self.full = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        spent = time.perf_counter() - self._began
        self.total += spent
        if info["generation"] == 2:
            self.full += spent


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Result = tuple[list[float], list[float], list[float], list[float], list[float], list[float]]
"""Per change: last served, all ACKed, server and clients' CPU per stream, GC all and full (s)."""


async def run(
    count: int,
    flips: int,
    *,
    delta: bool = False,
    scenario: str = "weight flip",
    freeze: bool = False,
) -> Result:
    """Each change's figures (:data:`Result`); ``freeze``: the start-up heap frozen first."""
    cache = xds.SnapshotCache()
    server = xds.AdsServer(cache, ack_timeout=30.0, max_streams=count + 16)
    port = await server.start()
    encoder = xds.ResourceEncoder()
    variants = _variants(scenario, count, encoder)
    for index in range(count):
        cache.set_snapshot(_key(index), variants[0][index])
    type_url = envoy_resources.ROUTE if scenario == "weight flip" else envoy_resources.ENDPOINT
    counter = _Counter(count, type_url)
    server.status.subscribe_stream(counter)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.ack_streams",
            "--child",
            str(port),
            str(count),
            str(int(delta)),
        ],
        stdin=subprocess.PIPE,
    )
    served: list[float] = []
    acked: list[float] = []
    cpu: list[float] = []
    clients_cpu: list[float] = []
    collected: list[float] = []
    full: list[float] = []
    collector = _CollectorTime()
    gc.callbacks.append(collector)
    thresholds = gc.get_threshold()  # freeze_heap raises the young generation's
    try:
        async with asyncio.timeout(600):
            for index in range(count):
                await server.status.wait_synced(_key(index), variants[0][index], timeout=600)
        if freeze:
            app.freeze_heap()
        for flip in range(flips):
            target = variants[(flip + 1) % 2]
            counter.expect(target[0].type_version(type_url))
            began, cpu_before = time.perf_counter(), xds_fanout._cpu_seconds()
            child_before = _process_cpu(child.pid)
            gc_before, full_before = collector.total, collector.full
            for index in range(count):
                cache.set_snapshot(_key(index), target[index])
            async with asyncio.timeout(120):
                await counter.done.wait()
            cpu.append((xds_fanout._cpu_seconds() - cpu_before) / count)
            clients_cpu.append((_process_cpu(child.pid) - child_before) / count)
            served.append(counter.served_at - began)
            acked.append(counter.acked_at - began)
            collected.append(collector.total - gc_before)
            full.append(collector.full - full_before)
    finally:
        gc.callbacks.remove(collector)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)
        await server.stop(0)
    return served, acked, cpu, clients_cpu, collected, full


def main(argv: list[str] | None = None) -> None:
    """Run every scenario over every mode, one after the other, and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--flips", type=int, default=10)
    parser.add_argument("--modes", default=",".join(MODES), help="sotw, delta or both")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument(
        "--freeze", action="store_true", help="also run each with the start-up heap frozen"
    )
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        port, count, delta = args.child
        asyncio.run(_clients(port, count, bool(delta)))
        return
    protocols = [m for m in args.modes.split(",") if m]
    suffixes = ("", "+freeze") if args.freeze else ("",)
    modes = [m + suffix for m in protocols for suffix in suffixes]
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    results = {
        (scenario, mode): asyncio.run(
            run(
                args.streams,
                args.flips,
                delta=mode.startswith("delta"),
                scenario=scenario,
                freeze=mode.endswith("+freeze"),
            )
        )
        for scenario in scenarios
        for mode in modes
    }

    def ms(values: list[float], q: float) -> str:
        ordered = sorted(values)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"

    def p50_p99(values: list[float]) -> str:
        return f"{ms(values, 0.5)} / {ms(values, 0.99)}"

    print(
        f"{args.streams} ACKing streams (fake clients, child process), {args.flips} changes each;"
        f" endpoint change: 1 of {CLUSTERS} assignments moves"
    )
    width = 26 if args.freeze else 22
    print(f"{'':34}" + "".join(f"{m + ' p50/p99 ms':>{width}}" for m in modes))
    for scenario in scenarios:
        for label, column in (("last served", 0), ("all ACKed", 1)):
            cells = "".join(f"{p50_p99(results[scenario, m][column]):>{width}}" for m in modes)
            first = column == 0 and scenario == "weight flip"
            goal = f"   (goal {GOAL_MS:.0f} ms)" if first else ""
            print(f"{scenario + ', ' + label:34}{cells}{goal}")
        cpu = "".join(
            f"{statistics.median(results[scenario, m][2]) * 1e6:>{width - 3}.0f} µs" for m in modes
        )
        print(f"{scenario + ', server CPU/stream':34}{cpu}")
        clients = "".join(
            f"{statistics.median(results[scenario, m][3]) * 1e6:>{width - 3}.0f} µs" for m in modes
        )
        print(f"{scenario + ', clients CPU/stream':34}{clients}")
        for label, column in (("GC ms, all changes", 4), ("full GC ms, all changes", 5)):
            spent = "".join(
                f"{sum(results[scenario, m][column]) * 1e3:>{width - 3}.1f} ms" for m in modes
            )
            print(f"{scenario + ', ' + label:34}{spent}")


if __name__ == "__main__":
    main()
