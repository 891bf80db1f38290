"""Fan-out sharded: N ADS server processes on one port (SO_REUSEPORT), Envoys split by the kernel.

A measurement, not a feature: does spreading the streams of one fleet over
several Python processes (each one event loop, one core at most) bring the
all-ACKed time of a push down on this machine? Each shard is a child process
running its own :class:`meshplane.xds.AdsServer` with ``share_port`` on the same
port and its own :class:`meshplane.xds.SnapshotCache` holding every node's
snapshots (built from the same recipe as :mod:`bench.xds_fanout`, so the bytes
are those of the one-process run); the kernel hands each new Envoy connection
to one of them. The seam is the snapshot cache: a real split would hand the
sync stage's snapshots to every shard.

Per push the parent tells every shard at once to set the new snapshots; each
shard answers with the moment it started (``time.perf_counter``: CLOCK_MONOTONIC,
one clock for every process) and the moment the last of its own Envoys had
ACKed everything, and its CPU. The push's all-ACKed time is the latest end
minus the earliest start; its CPU the sum over shards.

Run: ``python -m bench.shard_fanout [--clients 200] [--pushes 10] [--shards 1 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import peer_fanout, xds_fanout
from meshplane import xds


def _keys(count: int) -> list[str]:
    return [xds.node_key(f"mesh/bench/virtualNode/vn-{i:03d}") for i in range(count)]


async def _shard(port: int, listener_ports: list[int]) -> None:
    """One shard: serve every node's snapshots; obey push/status lines read on stdin."""
    encoder = xds.ResourceEncoder()
    cache = xds.SnapshotCache()
    server = xds.AdsServer(cache, ack_timeout=30.0)
    keys = _keys(len(listener_ports))
    built = {
        (key, name): xds_fanout.snapshot(listener_port, weights, encoder)
        for key, listener_port in zip(keys, listener_ports, strict=True)
        for name, weights in peer_fanout.VARIANTS.items()
    }
    tracker = xds_fanout.Tracker(server.status)
    for key in keys:
        cache.set_snapshot(key, built[key, "split"])
    await server.start("127.0.0.1", port, share_port=True)
    print(json.dumps({"ready": True}), flush=True)
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            command = json.loads(line)
            connected = [k for k, n in server.status.nodes().items() if n.connected]
            if command["do"] == "status":
                synced = sum(
                    1 for k in connected if server.status.nodes()[k].has_acked(built[k, "split"])
                )
                print(json.dumps({"connected": len(connected), "synced": synced}), flush=True)
                continue
            variant = command["variant"]
            cpu_before = xds_fanout._cpu_seconds()
            started = time.perf_counter()
            tracker.expect({k: built[k, variant] for k in connected})
            for key in keys:
                cache.set_snapshot(key, built[key, variant])
            await tracker.wait(xds_fanout.SYNC_DEADLINE)
            ended = max(tracker.acked_at.values(), default=started)
            cpu = xds_fanout._cpu_seconds() - cpu_before
            reply = {"start": started, "end": ended, "cpu": cpu, "streams": len(connected)}
            print(json.dumps(reply), flush=True)
    finally:
        await server.stop(0)


class _Shards:
    """The running shard processes, spoken to by JSON lines."""

    def __init__(self, processes: list[subprocess.Popen[str]]) -> None:
        self.processes = processes

    def ask(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        line = json.dumps(command) + "\n"
        for process in self.processes:  # every shard first, then the answers
            assert process.stdin is not None
            process.stdin.write(line)
            process.stdin.flush()
        return [self._read(p) for p in self.processes]

    @staticmethod
    def _read(process: subprocess.Popen[str]) -> dict[str, Any]:
        assert process.stdout is not None
        answer: dict[str, Any] = json.loads(process.stdout.readline())
        return answer


@contextlib.contextmanager
def _running(shards: int, port: int, listener_ports: list[int]) -> Iterator[_Shards]:
    argv = [sys.executable, "-m", "bench.shard_fanout", "--shard", str(port)]
    argv += [str(p) for p in listener_ports]
    processes = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(shards)
    ]
    try:
        for process in processes:
            assert _Shards._read(process)["ready"]
        yield _Shards(processes)
    finally:
        for process in processes:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run(shards: int, count: int, pushes: int) -> dict[str, Any]:
    """One fleet of ``count`` Envoys over ``shards`` processes; the samples per scenario."""
    ports = xds_fanout._free_ports(count + 1)
    port, listener_ports = ports[0], ports[1:]
    result: dict[str, Any] = {"shards": shards, "scenarios": {}}
    with (
        _running(shards, port, listener_ports) as running,
        tempfile.TemporaryDirectory(prefix="shard-fanout-") as tmp,
        xds_fanout.envoy_fleet(count, port, Path(tmp)),
    ):
        deadline = time.monotonic() + xds_fanout.SYNC_DEADLINE
        while True:  # a bench, not a test: poll the shards until every Envoy is in sync
            states = running.ask({"do": "status"})
            if sum(s["synced"] for s in states) == count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every Envoy synced: {states}")
            time.sleep(0.2)
        result["streams"] = [s["connected"] for s in states]
        for scenario, cycle in peer_fanout.SCENARIOS.items():
            samples: dict[str, list[float]] = {"all_acked": [], "cpu": []}
            for push in range(pushes):
                answers = running.ask({"do": "push", "variant": cycle[push % 2]})
                start = min(a["start"] for a in answers)
                samples["all_acked"].append(max(a["end"] for a in answers) - start)
                samples["cpu"].append(sum(a["cpu"] for a in answers))
            result["scenarios"][scenario] = samples
    return result


def report(results: list[dict[str, Any]], count: int, pushes: int) -> None:
    """Print each shard count's p50/p99 and CPU per push side by side."""
    ms = xds_fanout._ms
    print(f"xDS fan-out over N processes (SO_REUSEPORT), {count} real Envoys, {pushes} pushes")
    header = f"{'shards':>6} {'streams':<11} {'scenario':<11} {'p50':>7} {'p99':>7} {'CPU':>7}"
    print(header)
    print("-" * len(header))
    for result in results:
        for scenario, samples in result["scenarios"].items():
            print(
                f"{result['shards']:>6} {'/'.join(map(str, result['streams'])):<11}"
                f" {scenario:<11} {ms(statistics.median(samples['all_acked']))}"
                f" {ms(xds_fanout._p99(samples['all_acked']))}"
                f" {ms(statistics.median(samples['cpu']))}"
            )


def main(argv: list[str] | None = None) -> None:
    """Run each shard count in turn (or, with --shard, be one shard)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard", type=int, nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.shard:
        asyncio.run(_shard(args.shard[0], args.shard[1:]))
        return
    results = [run(shards, args.clients, args.pushes) for shards in args.shards]
    report(results, args.clients, args.pushes)


if __name__ == "__main__":
    main()
