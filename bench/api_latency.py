"""API latency: p50/p99 of describe, list and create with 1, 4 and 16 concurrent boto3 clients.

Against a live ``meshplane serve`` on loopback. Each (operation, clients) cell sends
a bounded number of requests (and stops early past a time bound); each client thread
has its own boto3 client, as separate scripts would. A second part measures where a
create's time goes: the same creates in-process with SQLite's fsync on (FULL, what
the server runs) and off, plus a cProfile of the in-process create path. A third part
puts the cost of authentication side by side: describe p50/p99 against a server with
SigV4 verification on (the default) and one run with ``--auth none``, both in this run,
and the in-process cost of one verification (botocore's canonical request, HMAC chain,
policy decision) per request.

Run: ``python -m bench.api_latency`` (``--auth``: only the authentication comparison).
"""

from __future__ import annotations

import cProfile
import io
import itertools
import pstats
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import serving
from meshplane.kit.clock import system_clock, uuid_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

REQUESTS_PER_CELL = 480
CELL_TIME_BOUND = 40.0
CONCURRENCY = (1, 4, 16)
LIST_SIZE = 50
IN_PROCESS_CREATES = 300


def _node_spec(name: str) -> dict[str, Any]:
    return {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": f"{name}.bench.local"}},
    }


def _run_cell(
    server: serving.Server, clients: int, call: Callable[[Any, int], None]
) -> tuple[list[float], float]:
    """``REQUESTS_PER_CELL`` calls spread over ``clients`` threads; latencies and wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.monotonic() + CELL_TIME_BOUND
    boto_clients = [server.client() for _ in range(clients)]
    # One warm-up call per client: connection set-up is not what we measure.
    for client in boto_clients:
        call(client, -1 - boto_clients.index(client))

    def worker(client: Any) -> None:
        while time.monotonic() < deadline:
            index = next(counter)
            if index >= REQUESTS_PER_CELL:
                return
            start = time.perf_counter()
            call(client, index)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(c,)) for c in boto_clients]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - began


def _api_table(server: serving.Server) -> dict[tuple[str, int], tuple[float, float, float, int]]:
    setup = server.client()
    for mesh in ("read", "write"):
        setup.create_mesh(meshName=mesh)
    for index in range(LIST_SIZE):
        name = f"seed-{index:03d}"
        setup.create_virtual_node(meshName="read", virtualNodeName=name, spec=_node_spec(name))
    created = itertools.count()

    def describe(client: Any, index: int) -> None:
        client.describe_virtual_node(
            meshName="read", virtualNodeName=f"seed-{index % LIST_SIZE:03d}"
        )

    def list_nodes(client: Any, _: int) -> None:
        assert len(client.list_virtual_nodes(meshName="read")["virtualNodes"]) == LIST_SIZE

    def create(client: Any, _: int) -> None:
        name = f"n-{next(created):06d}"
        client.create_virtual_node(meshName="write", virtualNodeName=name, spec=_node_spec(name))

    results: dict[tuple[str, int], tuple[float, float, float, int]] = {}
    for op, call in (("describe", describe), ("list (50 items)", list_nodes), ("create", create)):
        for clients in CONCURRENCY:
            latencies, wall = _run_cell(server, clients, call)
            results[(op, clients)] = (
                serving.median(latencies) * 1000,
                serving.percentile(latencies, 0.99) * 1000,
                len(latencies) / wall,
                len(latencies),
            )
    return results


def _raw_describe_ms(server: serving.Server) -> tuple[float, float]:
    """Median and p99 of a describe over plain urllib: the server without boto3's cost.

    Signed before the clock starts (the client's signing is not the server's time).
    """
    url = f"{server.url}/v20190125/meshes/read/virtualNodes/seed-000"
    signer = server.signer()
    samples = []
    for _ in range(REQUESTS_PER_CELL):
        headers = signer.sign("GET", url, None, {}) if signer else {}
        request = urllib.request.Request(url, headers=headers)
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        samples.append(time.perf_counter() - start)
    return serving.median(samples) * 1000, serving.percentile(samples, 0.99) * 1000


def _in_process_creates(synchronous: str, profile: bool = False) -> tuple[list[float], str]:
    """Per-create seconds through MeshService with SQLite ``synchronous`` set as given."""
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        store = SqliteStore(Path(tmp), system_clock)
        # Benchmark-only: the server always runs FULL; OFF shows what fsync costs.
        store._conn.execute(f"PRAGMA synchronous={synchronous}")
        service = MeshService(
            store,
            Account("us-west-2", "123456789012"),
            Quotas().scaled(100),
            system_clock,
            uuid_ids,
        )
        service.create(kinds.MESH, "m", "m", {})
        profiler = cProfile.Profile() if profile else None
        samples = []
        for index in range(IN_PROCESS_CREATES):
            name = f"n-{index:05d}"
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            service.create(kinds.VIRTUAL_NODE, "m", name, _node_spec(name))
            if profiler:
                profiler.disable()
            samples.append(time.perf_counter() - start)
        store.close()
    report = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
        report = out.getvalue()
    return samples, report


def _raw_commits(synchronous: str) -> list[float]:
    """Seconds per one-row INSERT+COMMIT in WAL mode: SQLite alone, no meshplane."""
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        samples = []
        for index in range(IN_PROCESS_CREATES):
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", (f"row {index}",))
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - start)
        conn.close()
    return samples


def _seed_one(server: serving.Server) -> Callable[[Any, int], None]:
    """Seed one node; the describe call of the auth comparison."""
    setup = server.client()
    setup.create_mesh(meshName="read")
    setup.create_virtual_node(meshName="read", virtualNodeName="seed", spec=_node_spec("seed"))

    def describe(client: Any, _: int) -> None:
        client.describe_virtual_node(meshName="read", virtualNodeName="seed")

    return describe


AUTH_ROUNDS = 3
"""Cells per server, alternating auth/none, so a noisy neighbour hits both sides alike."""


def _verification_us(rounds: int = 2000) -> tuple[float, float, float]:
    """p50 µs of one SigV4 verification, of one policy decision, and of both."""
    from botocore.credentials import Credentials  # noqa: PLC0415

    from meshplane.auth import policies, signatures  # noqa: PLC0415 - bench-only import
    from meshplane.client import Signer  # noqa: PLC0415

    key, secret = "AKIABENCHBENCHBENCH0", "s" * 40
    url = "http://127.0.0.1:9080/v20190125/meshes/read/virtualNodes/seed"
    headers = Signer(Credentials(key, secret), "us-west-2").sign("GET", url, None, {})
    headers["Host"] = "127.0.0.1:9080"
    policy = policies.parse(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "appmesh:Describe*", "Resource": "*"},
                {"Effect": "Deny", "Action": "appmesh:Delete*", "Resource": "arn:*:mesh/prod*"},
            ],
        }
    )
    arn = "arn:aws:appmesh:us-west-2:123456789012:mesh/read/virtualNode/seed"
    now = time.time()
    verify, decide = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        signatures.verify(
            method="GET",
            url=url,
            headers=headers.items(),
            body=b"",
            region="us-west-2",
            now=now,
            secret_for={key: secret}.get,
        )
        middle = time.perf_counter()
        policy.decide("appmesh:DescribeVirtualNode", arn)
        verify.append(middle - start)
        decide.append(time.perf_counter() - middle)
    both = [a + b for a, b in zip(verify, decide, strict=True)]
    return (
        serving.median(verify) * 1e6,
        serving.median(decide) * 1e6,
        serving.median(both) * 1e6,
    )


def _auth_cost() -> None:
    """Describe latency with and without authentication, side by side, in one run.

    Both servers run at once and their cells alternate, so load from elsewhere on the
    machine falls on both columns alike.
    """
    samples: dict[tuple[str, int], list[float]] = {}
    with serving.running() as signed, serving.running({"MESHPLANE_AUTH": "none"}) as open_:
        calls = {"auth": (signed, _seed_one(signed)), "none": (open_, _seed_one(open_))}
        for _ in range(AUTH_ROUNDS):
            for clients in (1, 4):
                for mode, (server, call) in calls.items():
                    latencies, _wall = _run_cell(server, clients, call)
                    samples.setdefault((mode, clients), []).extend(latencies)
    verify, decide, both = _verification_us()
    print()
    print(
        f"Cost of authentication: describe via boto3 (which signs either way), "
        f"{AUTH_ROUNDS} alternating cells of {REQUESTS_PER_CELL} per column"
    )
    columns = ("auth p50", "none p50", "auth p99", "none p99")
    print(f"{'clients':>8}" + "".join(f"{c:>10}" for c in columns) + f"{'Δp50 ms':>9}")
    for clients in (1, 4):
        a50, a99 = _summary(samples[("auth", clients)])
        n50, n99 = _summary(samples[("none", clients)])
        print(f"{clients:>8}{a50:>10.2f}{n50:>10.2f}{a99:>10.2f}{n99:>10.2f}{a50 - n50:>9.2f}")
    print(
        f"in-process, p50 of 2000 rounds: SigV4 verification {verify:.0f} µs, "
        f"policy decision {decide:.1f} µs, both {both:.0f} µs per request"
    )


def _summary(samples: list[float]) -> tuple[float, float]:
    return serving.median(samples) * 1000, serving.percentile(samples, 0.99) * 1000


def main() -> None:
    """Print the latency table, then the create-time breakdown."""
    env = {"MESHPLANE_QUOTA_VIRTUAL_NODES": "100000"}
    with serving.running(env) as server:
        results = _api_table(server)
        raw = _raw_describe_ms(server)
        rss = server.rss_mib()
    print(f"API latency, boto3 against meshplane serve on loopback ({REQUESTS_PER_CELL} req/cell)")
    print(f"{'operation':<16}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p50 vs 1':>10}")
    for (op, clients), (p50, p99, rate, _count) in results.items():
        base = results[(op, 1)][0]
        print(f"{op:<16}{clients:>8}{p50:>9.2f}{p99:>9.2f}{rate:>9.0f}{p50 / base:>9.1f}x")
    describe_1 = results[("describe", 1)][0]
    print(f"{'describe (urllib, signed)':<16}{1:>7}{raw[0]:>9.2f}{raw[1]:>9.2f}")
    print(
        f"create/describe p50 at 1 client: {results[('create', 1)][0] / describe_1:.1f}x; "
        f"boto3 share of a describe: {(describe_1 - raw[0]) / describe_1:.0%}; "
        f"server RSS after: {rss:.0f} MiB"
    )

    full, _ = _in_process_creates("FULL")
    off, _ = _in_process_creates("OFF")
    profiled, report = _in_process_creates("FULL", profile=True)
    raw_full, raw_off = _raw_commits("FULL"), _raw_commits("OFF")
    print()
    print(f"Where a create's time goes (in-process, {IN_PROCESS_CREATES} creates each)")
    print(f"{'path':<44}{'p50 ms':>9}{'p99 ms':>9}")
    rows = [
        ("MeshService.create, synchronous=FULL (served)", full),
        ("MeshService.create, synchronous=OFF", off),
        ("bare SQLite insert+commit, FULL", raw_full),
        ("bare SQLite insert+commit, OFF", raw_off),
    ]
    for label, samples in rows:
        p50, p99 = _summary(samples)
        print(f"{label:<44}{p50:>9.2f}{p99:>9.2f}")
    full_p50, off_p50 = _summary(full)[0], _summary(off)[0]
    print(
        f"fsync share of an in-process create: {(full_p50 - off_p50) / full_p50:.0%}; "
        f"in-process share of a served create at 1 client: "
        f"{full_p50 / results[('create', 1)][0]:.0%}"
    )
    print(f"cProfile of {len(profiled)} in-process creates (FULL), top functions by own time:")
    print("\n".join(line for line in report.splitlines() if line.strip())[-1400:])
    _auth_cost()


if __name__ == "__main__":
    if sys.argv[1:] == ["--auth"]:  # only the with/without-authentication comparison
        _auth_cost()
    else:
        main()
