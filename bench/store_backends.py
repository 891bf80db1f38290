"""Store backends side by side: SQLite vs PostgreSQL writes, and replica-to-replica propagation.

In process, through the domain service (what every API write runs), each update
carrying a clientToken as boto3 sends one. Both backends are durable: SQLite with
``synchronous=FULL`` (as ``meshplane serve`` runs it), PostgreSQL with ``fsync=on``
and ``synchronous_commit=on`` (its defaults), on a throwaway local server started
from Debian's packages (``make postgres-tools``) on the same disk.

- writes: one writer updating one virtual node ``WRITES`` times: writes/s, p50, p99.
- 8 writers: 8 threads each updating its own node; with PostgreSQL each thread has
  its own store (as 8 replicas would), all serialised by the write lock.
- propagation: two PostgreSQL stores on one database (replicas A and B); the time
  from a write on A starting to B's feed waking (``LISTEN``/``NOTIFY``), p50/p99.
- proxy propagation: two whole control planes (API service, sync, xDS server) in this
  process on one database; a proxy (:class:`~meshplane.testing.FakeAdsClient`, ACKing as
  Envoy does) follows replica B; the time from a write starting to the proxy having the
  changed cluster and sending its ACK to B, p50/p99 — writes through A (the other
  replica) and, interleaved with them, through B itself, side by side.

Run: ``python -m bench.store_backends [WRITES]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from meshplane import app, settings
from meshplane.envoy import CLUSTER
from meshplane.kit.clock import system_clock, uuid_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.store.postgres import PostgresStore
from meshplane.store.protocols import Store
from meshplane.store.sqlite import SqliteStore
from meshplane.testing import FakeAdsClient, names_of
from meshplane.testing.postgres import TempPostgres

WRITES = 2000
WRITERS = 8
MESH = "demos"


def _spec(port: int) -> dict[str, object]:
    return {
        "listeners": [{"portMapping": {"port": port, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "echo"}},
    }


def _service(store: Store) -> MeshService:
    config = settings.load(environ={})
    return MeshService(
        store,
        Account(config.region, config.account_id),
        config.quotas.scaled(10),
        system_clock,
        uuid_ids,
    )


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def _one_writer(store: Store, writes: int) -> tuple[float, float, float]:
    """(writes/s, p50 ms, p99 ms) of ``writes`` updates of one node."""
    service = _service(store)
    service.create(kinds.MESH, MESH, MESH, {})
    service.create(kinds.VIRTUAL_NODE, MESH, "vn", _spec(80))
    latencies = []
    started = time.perf_counter()
    for index in range(writes):
        began = time.perf_counter()
        service.update(
            kinds.VIRTUAL_NODE, MESH, "vn", _spec(80 + index % 2), client_token=f"t{index}"
        )
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - started
    return (writes / elapsed, *_percentiles(latencies))


def _many_writers(stores: list[Store], writes: int) -> tuple[float, float, float]:
    """(writes/s, p50 ms, p99 ms) of ``len(stores)`` threads sharing ``writes`` updates."""
    each = writes // len(stores)
    for index, store in enumerate(stores):
        _service(store).create(kinds.VIRTUAL_NODE, MESH, f"w{index}", _spec(80))
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores))

    def write(index: int) -> None:
        service = _service(stores[index])
        start.wait()
        for n in range(each):
            began = time.perf_counter()
            service.update(kinds.VIRTUAL_NODE, MESH, f"w{index}", _spec(80 + n % 2))
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return (each * len(stores) / elapsed, *_percentiles(latencies))


def _propagation(url: str, writes: int) -> tuple[float, float]:
    """p50/p99 ms from a write starting on replica A to replica B's feed waking."""
    a, b = PostgresStore(url, system_clock), PostgresStore(url, system_clock)
    service = _service(a)
    service.create(kinds.MESH, "prop", "prop", {})
    service.create(kinds.VIRTUAL_NODE, "prop", "vn", _spec(80))

    async def run() -> list[float]:
        latencies = []
        for index in range(writes):
            seen = b.revision()
            waiting = asyncio.ensure_future(b.feed.wait(seen))
            await asyncio.sleep(0)
            began = time.perf_counter()
            await asyncio.to_thread(
                service.update, kinds.VIRTUAL_NODE, "prop", "vn", _spec(81 + index % 2)
            )
            await waiting
            latencies.append(time.perf_counter() - began)
        return latencies

    try:
        return _percentiles(asyncio.run(run()))
    finally:
        a.close()
        b.close()


def _proxy_propagation(url: str, root: Path, writes: int) -> dict[str, tuple[float, float]]:
    """p50/p99 ms from a write starting to a proxy on B ACKing its effect, by the replica
    written through: ``"A"`` (the other one) or ``"B"`` (its own), interleaved."""
    node_id = "mesh/prop/virtualNode/vn"

    def replica(name: str) -> app.ControlPlane:
        config = settings.load(
            environ={}, data_dir=root / name, store=url, api_port=0, xds_port=0, host="127.0.0.1"
        )
        return app.build(config, clock=system_clock)

    async def following(proxy: FakeAdsClient, port: int) -> None:
        """Receive until the proxy has the ingress cluster of ``port``, then ACK that."""
        wanted = f"cds_ingress_prop_vn_http_{port}"
        while True:
            response = await proxy.receive()
            await proxy.ack(response)
            if wanted in names_of(response):
                return

    async def run() -> dict[str, list[float]]:
        async with app.running(replica("a")) as a, app.running(replica("b")) as b:
            services = {"A": a.services.resources, "B": b.services.resources}
            service = services["A"]
            await asyncio.to_thread(service.create, kinds.MESH, "prop", "prop", {})
            await asyncio.to_thread(service.create, kinds.VIRTUAL_NODE, "prop", "vn", _spec(80))
            credentials = b.services.credentials
            assert credentials is not None  # xDS auth is on (the default)
            credential = credentials.issue(node_id, "").token
            async with FakeAdsClient(b.xds_port, node_id, credential=credential) as proxy:
                await proxy.request(CLUSTER)
                await following(proxy, 80)
                latencies: dict[str, list[float]] = {"A": [], "B": []}
                for index in range(writes):
                    port = 81 + index % 2
                    through = "A" if index % 4 < 2 else "B"
                    began = time.perf_counter()
                    await asyncio.to_thread(
                        services[through].update, kinds.VIRTUAL_NODE, "prop", "vn", _spec(port)
                    )
                    await following(proxy, port)
                    latencies[through].append(time.perf_counter() - began)
                return latencies

    return {through: _percentiles(times) for through, times in asyncio.run(run()).items()}


def _line(name: str, result: tuple[float, float, float]) -> str:
    rate, p50, p99 = result
    return f"  {name:<28} {rate:7.0f} writes/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"


def main(argv: list[str] | None = None) -> None:
    """Print both backends' write numbers and PostgreSQL replica-to-replica propagation."""
    args = sys.argv[1:] if argv is None else argv
    writes = int(args[0]) if args else WRITES
    server = TempPostgres(durable=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results: list[tuple[str, Callable[[], tuple[float, float, float]]]] = []
            sqlite = SqliteStore(Path(tmp) / "one", system_clock)
            results.append(("SQLite, 1 writer", lambda: _one_writer(sqlite, writes)))
            pg_url = server.database()
            pg = PostgresStore(pg_url, system_clock)
            results.append(("PostgreSQL, 1 writer", lambda: _one_writer(pg, writes)))
            sqlite8 = SqliteStore(Path(tmp) / "many", system_clock)
            results.append(
                (f"SQLite, {WRITERS} threads", lambda: _many(sqlite8, [sqlite8] * WRITERS, writes))
            )
            pg8_url = server.database()
            pg8 = [PostgresStore(pg8_url, system_clock) for _ in range(WRITERS)]
            results.append(
                (f"PostgreSQL, {WRITERS} replicas", lambda: _many(pg8[0], list(pg8), writes))
            )
            print(f"Store backends, {writes} updates each (clientToken on the 1-writer runs)")
            print("  fsync on both: SQLite synchronous=FULL, PostgreSQL fsync=on, same disk")
            for name, run in results:
                print(_line(name, run()))
            opened: list[Store] = [sqlite, pg, sqlite8, *pg8]
            for store in opened:
                store.close()
        p50, p99 = _propagation(server.database(), max(100, writes // 4))
        print(
            "  replica A write -> replica B feed woken (NOTIFY): "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )
        with tempfile.TemporaryDirectory() as tmp:
            acked = _proxy_propagation(server.database(), Path(tmp), max(100, writes // 5))
        for through, (p50, p99) in sorted(acked.items()):
            print(
                f"  replica {through} write -> proxy on replica B ACKed (xDS): "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
    finally:
        server.stop()


def _many(first: Store, stores: list[Store], writes: int) -> tuple[float, float, float]:
    _service(first).create(kinds.MESH, MESH, MESH, {})
    return _many_writers(stores, writes)


if __name__ == "__main__":
    main()
