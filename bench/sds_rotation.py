"""SDS rotation fan-out: new certificates for a fleet of real Envoys, pushed until all ACKed.

N real Envoy 1.40 processes, each a sidecar whose listener is STRICT TLS with its own
SPIFFE certificate and the trust bundle, both over SDS from one in-process ADS server,
as the sync stage serves them. A rotation issues a fresh certificate per Envoy from
the built-in CA and publishes the changed snapshots (only the secret changes): the
time from the first ``set_snapshot`` to the moment every Envoy ACKed its new secret
(awaited through the status board, never by sleeping), its per-Envoy median and p99,
and the issuing time for the whole fleet.

Run: ``python -m bench.sds_rotation [--clients 50 200] [--rotations 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from google.protobuf import message

from bench import xds_fanout
from meshplane import xds
from meshplane.kit.clock import system_clock
from meshplane.pki import Issuer, authority
from meshplane.translate import tls

TTL_S = 3600


@dataclasses.dataclass
class Row:
    """One fleet size's figures (seconds)."""

    envoys: int
    all_acked: list[float] = dataclasses.field(default_factory=list)
    per_envoy_median: list[float] = dataclasses.field(default_factory=list)
    per_envoy_p99: list[float] = dataclasses.field(default_factory=list)
    issuing: list[float] = dataclasses.field(default_factory=list)
    nacks: int = 0


def _snapshot(
    port: int, identity: str, issuer: Issuer, encoder: xds.ResourceEncoder
) -> xds.Snapshot:
    listener = xds_fanout._listener(port)
    context = tls.server_tls(
        None,
        own=identity,
        hostname=None,
        auto=("STRICT", identity, tls.MESH_IDENTITIES),
        secrets={},
        warn=lambda _code, _message: None,
    )
    assert isinstance(context, tls.ServerTls)
    listener.filter_chains[0].transport_socket.CopyFrom(tls.socket(context.context))
    issued = issuer.current(identity)
    messages: list[message.Message] = [
        listener,
        xds_fanout._routes({"blue": 100}),
        xds_fanout._cluster("blue"),
        xds_fanout._endpoints("blue", 9),
        tls.certificate_secret(identity, issued.chain_pem, issued.key_pem),
        tls.trust_secret(tls.TRUST_BUNDLE, issuer.authority.bundle_pem),
    ]
    return xds.Snapshot.of(messages, encoder)


async def run_fleet(count: int, rotations: int) -> Row:
    """``count`` Envoys on TLS listeners; every certificate rotated ``rotations`` times."""
    row = Row(envoys=count)
    encoder = xds.ResourceEncoder()
    cache = xds.SnapshotCache()
    server = xds.AdsServer(cache, ack_timeout=30.0)
    port = await server.start("127.0.0.1", 0)
    keys = [xds.node_key(f"mesh/bench/virtualNode/vn-{i:03d}") for i in range(count)]
    ids = {key: tls.spiffe_id("bench", "virtualNode", f"vn-{i:03d}") for i, key in enumerate(keys)}
    ports = dict(zip(keys, xds_fanout._free_ports(count), strict=True))
    tracker = xds_fanout.Tracker(server.status)
    try:
        with tempfile.TemporaryDirectory(prefix="sds-rotation-") as tmp:
            ca = authority.load_or_create(Path(tmp) / "ca", system_clock)
            clock = _Clock()
            issuer = Issuer(ca, clock, TTL_S)
            targets = {k: _snapshot(ports[k], ids[k], issuer, encoder) for k in keys}
            for key, target in targets.items():
                cache.set_snapshot(key, target)
            tracker.expect(targets)
            with xds_fanout.envoy_fleet(count, port, Path(tmp)):
                await tracker.wait(xds_fanout.SYNC_DEADLINE)
                for _ in range(rotations):
                    clock.skip(TTL_S)  # every certificate is due: the next build renews it
                    began = time.perf_counter()
                    targets = {k: _snapshot(ports[k], ids[k], issuer, encoder) for k in keys}
                    row.issuing.append(time.perf_counter() - began)
                    pushed = time.perf_counter()
                    tracker.expect(targets)
                    for key, target in targets.items():
                        cache.set_snapshot(key, target)
                    await tracker.wait(xds_fanout.SYNC_DEADLINE)
                    times = [t - pushed for t in tracker.acked_at.values()]
                    row.all_acked.append(max(times))
                    row.per_envoy_median.append(statistics.median(times))
                    row.per_envoy_p99.append(xds_fanout._p99(times))
                nodes = server.status.nodes().values()
                row.nacks = sum(t.nacks for n in nodes for t in n.types.values())
    finally:
        await server.stop(0)
    return row


class _Clock:
    """Wall time plus the lifetimes skipped, so each rotation renews every certificate."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return system_clock() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


def report(rows: list[Row], rotations: int) -> None:
    print(f"SDS rotation fan-out, real Envoy 1.40, {rotations} rotations per fleet (ms)")
    head = f"{'envoys':>7}{'all ACKed p50':>15}{'all ACKed max':>15}{'per-Envoy p50':>15}"
    head += f"{'per-Envoy p99':>15}{'issue fleet':>13}{'nacks':>7}"
    print(head)
    print("-" * len(head))
    for row in rows:
        print(
            f"{row.envoys:>7}{statistics.median(row.all_acked) * 1000:>15.1f}"
            f"{max(row.all_acked) * 1000:>15.1f}"
            f"{statistics.median(row.per_envoy_median) * 1000:>15.1f}"
            f"{statistics.median(row.per_envoy_p99) * 1000:>15.1f}"
            f"{statistics.median(row.issuing) * 1000:>13.1f}{row.nacks:>7}"
        )


def main(argv: list[str] | None = None) -> None:
    """Run each fleet size and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.sds_rotation")
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rotations", type=int, default=10)
    args = parser.parse_args(argv)
    rows = [asyncio.run(run_fleet(count, args.rotations)) for count in args.clients]
    report(rows, args.rotations)


if __name__ == "__main__":
    main()
