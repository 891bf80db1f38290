"""Fan-out side by side: meshplane's ADS server and go-control-plane, same Envoys, same bytes.

One run measures, per fleet size, :mod:`bench.xds_fanout`'s workload three times:
against meshplane's in-process :class:`meshplane.xds.AdsServer` with the Envoys on
state-of-the-world ADS, the same with the Envoys on delta ADS (``DELTA_GRPC``), then
against the go-control-plane peer (``bench/peers/gocp``, built by
``make bench-peer``: go-control-plane's ``SnapshotCache`` in ADS mode behind
its SotW server). Both get the very same snapshots: the peer is handed each
node's serialized resources (the ``Any`` bodies meshplane would send) with
meshplane's per-type versions, so only the servers differ. Each fleet is a
fresh set of real Envoys (``--concurrency 1``), one per node key.

Per push, each server is timed from the moment it is given the new snapshots
(meshplane: the first ``set_snapshot``; the peer: its first ``SetSnapshot``,
after it decoded the push) to the moment its own ACK callbacks have seen every
Envoy ACK every type at the new version. The peer's clock runs inside the peer,
so the HTTP hop that feeds it is not counted against it.

Two moments for meshplane: **routed**, every Envoy has ACKed the new listeners and
routes (meshplane's walk gates them on the added clusters being warm, so from then on
every Envoy routes by the new config), and **all ACKed**, every type at the new
version — for a removal that includes the prune of the stale cluster and its
endpoints, which meshplane sends only once the routes no longer name them (the peer
sends CDS, EDS and RDS at once, without that ordering). A weight flip is routes only:
both moments are the same. The peer is timed to all ACKed. The add/remove rows are
also split by push: ``add`` (green added back), ``remove`` and ``rm routed`` (green
dropped: all ACKed, and routes ACKed), each against the peer's same pushes.

Third, the physical floor (:mod:`bench.file_floor`): the same number of real
Envoys fed by files, a weight flip being one atomic rename of the route file,
timed to the last Envoy's own ``update_time``. The weights rows print it and
the ratios meshplane/floor and peer/floor beside the two servers.

meshplane's pushes run under the app's GC policy (the heap frozen once the fleet
is in sync, as :func:`meshplane.app.freeze_heap` does after the first publish);
``--no-freeze`` runs them under Python's default, as this bench did before.

Run: ``python -m bench.peer_fanout [--clients 20] [--pushes 20] [--no-freeze]``
(``--clients 50 200`` for the issue's fleet sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import file_floor, xds_fanout
from meshplane import xds
from meshplane.envoy import resources as envoy_resources

PEER_BUILD = Path(__file__).parent / "peers" / "gocp" / "build.sh"
VARIANTS = {
    "blue": {"blue": 100},
    "green": {"blue": 0, "green": 100},
    "split": {"blue": 50, "green": 50},
}
SCENARIOS = {
    "weights": ["green", "split"],  # RDS only
    "add/remove": ["blue", "split"],  # drop / add green (CDS+EDS+RDS)
}


def peer_binary() -> Path:
    """Build (or find) the peer with ``bench/peers/gocp/build.sh``; its last line is the path."""
    built = subprocess.run([str(PEER_BUILD)], check=True, capture_output=True, text=True)
    return Path(built.stdout.strip().splitlines()[-1])


class Peer:
    """A running peer process: its xDS port and its control port."""

    def __init__(self, process: subprocess.Popen[str], xds_port: int, http_port: int) -> None:
        self.process = process
        self.xds_port = xds_port
        self._control = f"http://127.0.0.1:{http_port}"

    def push(self, body: bytes) -> int:
        """Hand the peer one push (pre-encoded JSON); returns its push number."""
        request = urllib.request.Request(
            f"{self._control}/push", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(json.loads(response.read())["push"])

    def wait(self, push: int) -> dict[str, Any]:
        """Block until every node ACKed ``push``; the peer's own timings."""
        url = f"{self._control}/wait?push={push}"
        with urllib.request.urlopen(url, timeout=xds_fanout.SYNC_DEADLINE + 10) as response:
            result: dict[str, Any] = json.loads(response.read())
        if result["timed_out"]:
            raise TimeoutError(f"peer push {push}: not every Envoy ACKed")
        return result

    def cpu_seconds(self) -> float:
        """CPU the peer's threads have run so far (``/proc/<pid>/task/*/schedstat``, ns)."""
        tasks = Path(f"/proc/{self.process.pid}/task").glob("*/schedstat")
        return sum(int(t.read_text().split()[0]) for t in tasks) / 1e9


@contextlib.contextmanager
def running_peer() -> Iterator[Peer]:
    """Start the peer; it prints ``xds=PORT http=PORT`` once both listen. Always stop it."""
    process = subprocess.Popen(
        [str(peer_binary())], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        ports = dict(part.split("=") for part in process.stdout.readline().split())
        yield Peer(process, int(ports["xds"]), int(ports["http"]))
    finally:
        process.kill()
        process.wait(timeout=30)


def push_body(targets: dict[str, xds.Snapshot]) -> bytes:
    """The peer's JSON for one push: per node, per type, meshplane's version and bodies."""
    nodes = {
        key: {
            type_url: {
                "version": snapshot.type_version(type_url),
                "resources": [
                    base64.b64encode(r.body).decode() for r in snapshot.resources(type_url).values()
                ],
            }
            for type_url in envoy_resources.TYPE_URLS
            if snapshot.resources(type_url)
        }
        for key, snapshot in targets.items()
    }
    return json.dumps({"nodes": nodes}).encode()


def run_peer_fleet(count: int, pushes: int) -> xds_fanout.Fleet:
    """The peer's row for one fleet size, same snapshots as :func:`xds_fanout.run_fleet`."""
    encoder = xds.ResourceEncoder()
    keys = [xds.node_key(f"mesh/bench/virtualNode/vn-{i:03d}") for i in range(count)]
    listener_ports = dict(zip(keys, xds_fanout._free_ports(count), strict=True))
    bodies = {
        name: push_body({key: xds_fanout.snapshot(listener_ports[key], w, encoder) for key in keys})
        for name, w in VARIANTS.items()
    }
    row = xds_fanout.Fleet(envoys=count)
    with running_peer() as peer, tempfile.TemporaryDirectory(prefix="peer-fanout-") as tmp:
        started = time.perf_counter()
        first = peer.push(bodies["split"])
        with xds_fanout.envoy_fleet(count, peer.xds_port, Path(tmp)) as fleet:
            peer.wait(first)
            row.connect_all_s = time.perf_counter() - started
            for scenario, cycle in SCENARIOS.items():
                samples = row.scenarios[scenario] = xds_fanout.Pushes()
                for push in range(pushes):
                    cpu_before = peer.cpu_seconds()
                    result = peer.wait(peer.push(bodies[cycle[push % 2]]))
                    samples.cpu.append(peer.cpu_seconds() - cpu_before)
                    samples.all_acked.append(result["all_acked_s"])
                    samples.per_envoy_median.append(
                        statistics.median(result["per_node_s"].values())
                    )
                    row.nacks += result["nacks"]
            row.server_rss_mib = xds_fanout._rss_mib(str(peer.process.pid))
            row.envoy_pss_mib = statistics.median(xds_fanout._pss_mib(p.pid) for p in fleet)
    return row


@dataclasses.dataclass
class Pair:
    """One fleet size, measured against both servers."""

    meshplane: xds_fanout.Fleet
    delta: xds_fanout.Fleet
    peer: xds_fanout.Fleet
    floor: file_floor.Floor


def _p99(values: list[float]) -> float:
    return xds_fanout._p99(values)


def _ratio(value: float, floor: float) -> str:
    """``value / floor``, or ``-`` when the floor rounds to zero (1 ms clock)."""
    return f"{value / floor:.2f}" if floor > 0 else "-"


def report(pairs: list[Pair], pushes: int) -> None:
    """Print meshplane and the peer side by side, and their ratio."""
    ms = xds_fanout._ms
    print(
        f"xDS fan-out side by side, real Envoy (--concurrency 1), {pushes} pushes per scenario;"
        " same snapshots to both"
    )
    print("times from 'server given the snapshots' to 'every Envoy ACKed' (ms), CPU per push (ms)")
    header = (
        f"{'envoys':>6} {'scenario':<11} {'moment':<9} {'SotW p50':>8} {'p99':>7} {'CPU':>6}"
        f" {'delta p50':>9} {'p99':>7} {'CPU':>6} {'gocp p50':>9} {'p99':>7} {'CPU':>6}"
        f" {'SotW/gocp p50':>13} {'p99':>5} {'delta/gocp p50':>14} {'p99':>5}"
    )
    print(header)
    print("-" * len(header))
    for pair in pairs:
        for scenario in SCENARIOS:
            sotw, delta = pair.meshplane.scenarios[scenario], pair.delta.scenarios[scenario]
            theirs = pair.peer.scenarios[scenario]
            theirs_p50, theirs_p99 = statistics.median(theirs.all_acked), _p99(theirs.all_acked)
            moments = [("all ACKed", "all_acked", slice(None)), ("routed", "routed", slice(None))]
            if scenario == "add/remove":  # even pushes remove green, odd ones add it back
                moments += [
                    ("add", "all_acked", slice(1, None, 2)),
                    ("remove", "all_acked", slice(0, None, 2)),
                    ("rm routed", "routed", slice(0, None, 2)),
                ]
            for moment, attribute, picked in moments[: 1 if scenario == "weights" else None]:
                a, b = getattr(sotw, attribute)[picked], getattr(delta, attribute)[picked]
                if moment in ("add", "remove", "rm routed"):
                    theirs_p50 = statistics.median(theirs.all_acked[picked])
                    theirs_p99 = _p99(theirs.all_acked[picked])
                print(
                    f"{pair.meshplane.envoys:>6} {scenario:<11} {moment:<9}"
                    f" {ms(statistics.median(a)):>8} {ms(_p99(a))}"
                    f" {ms(statistics.median(sotw.cpu)):>6}"
                    f" {ms(statistics.median(b)):>9} {ms(_p99(b))}"
                    f" {ms(statistics.median(delta.cpu)):>6}"
                    f" {ms(theirs_p50):>9} {ms(theirs_p99)} {ms(statistics.median(theirs.cpu)):>6}"
                    f" {statistics.median(a) / theirs_p50:>13.2f} {_p99(a) / theirs_p99:>5.2f}"
                    f" {statistics.median(b) / theirs_p50:>14.2f} {_p99(b) / theirs_p99:>5.2f}"
                )
    print()
    print("weight flip vs the file-based floor (rename of the route file → last Envoy applied)")
    floor_header = (
        f"{'envoys':>6} {'floor p50':>9} {'p99':>7} {'meshplane/floor p50':>19} {'p99':>5}"
        f" {'gocp/floor p50':>14} {'p99':>5}"
    )
    print(floor_header)
    print("-" * len(floor_header))
    for pair in pairs:
        if not pair.floor.all_applied:
            print(
                f"{pair.floor.envoys:>6} {'-':>9}  (skipped: inotify limit, see bench.file_floor)"
            )
            continue
        floor_p50 = statistics.median(pair.floor.all_applied)
        floor_p99 = xds_fanout._p99(pair.floor.all_applied)
        ours, theirs = pair.meshplane.scenarios["weights"], pair.peer.scenarios["weights"]
        print(
            f"{pair.floor.envoys:>6} {ms(floor_p50):>9} {ms(floor_p99)}"
            f" {_ratio(statistics.median(ours.all_acked), floor_p50):>19}"
            f" {_ratio(xds_fanout._p99(ours.all_acked), floor_p99):>5}"
            f" {_ratio(statistics.median(theirs.all_acked), floor_p50):>14}"
            f" {_ratio(xds_fanout._p99(theirs.all_acked), floor_p99):>5}"
        )
    print()
    print(f"{'envoys':>6} {'server':<9} {'connect→all synced':>19} {'server RSS':>11} {'NACKs':>5}")
    for pair in pairs:
        rows = (("SotW", pair.meshplane), ("delta", pair.delta), ("gocp", pair.peer))
        for name, row in rows:
            print(
                f"{row.envoys:>6} {name:<9} {row.connect_all_s:>17.2f} s"
                f" {row.server_rss_mib:>7.1f} MiB {row.nacks:>5}"
            )


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run each fleet size against meshplane then the peer, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[20])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="meshplane's pushes under Python's default GC policy, not the app's",
    )
    args = parser.parse_args(argv)
    freeze = not args.no_freeze
    pairs = []
    for count in args.clients:
        ours = asyncio.run(xds_fanout.run_fleet(count, args.pushes, freeze=freeze))
        delta = asyncio.run(xds_fanout.run_fleet(count, args.pushes, delta=True, freeze=freeze))
        peer = run_peer_fleet(count, args.pushes)
        floor = file_floor.run_floor(count, args.pushes)
        pairs.append(Pair(ours, delta, peer, floor))
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    report(pairs, args.pushes)


if __name__ == "__main__":
    main()
