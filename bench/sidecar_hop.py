"""The sidecar hop: what one and two Envoys add to a request, vs calling the app directly.

On the running walkthrough (:mod:`bench.echo_mesh`, route at 100/0), three paths to
the same echo-backend 1.0 process, measured side by side in one run:

* **direct**: the client → the backend app's own port;
* **one Envoy**: the client → the backend's sidecar (ingress listener) → the app;
* **two Envoys**: the client → the frontend's sidecar (egress listener, ``Host:
  vs-echo-backend:80``, the call the frontend app makes) → the backend's sidecar →
  the app. This is the full mesh path App Mesh users pay for on every call.

Closed-loop load, 1 and 10 keep-alive connections; each cell is 5 one-second rounds,
interleaved with the other paths' rounds, and reports the median of the rounds' p50 and p99.
The client is ``wrk`` (one thread, a Lua ``done`` hook reports exact p50/p99) when it
is on PATH; otherwise a Python client with one thread per connection, whose own
overhead is in every path alike and shows in the direct row.

Run: ``python -m bench.sidecar_hop [--rounds 5] [--client wrk|python]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench import serving
from bench.echo_mesh import BACKEND_BLUE, FRONTEND, running

CONNECTIONS = (1, 10)
ROUND_SECONDS = 1.0
_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("MESHPLANE %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
# Spike, xds-envoy-notes §3.3: wrk, 8 s, one Envoy in front of a fast backend.
SPIKE_ADDED_P50_MS = (0.18, 0.20)
# peers.md §2.1: Istio 1.9-1.16, two sidecars with mTLS, 1000 RPS, 16 connections.
ISTIO_ADDED_P90_MS = 2.65


@dataclasses.dataclass(frozen=True)
class Target:
    """One way to reach the backend: a port and the Host header to send."""

    name: str
    port: int
    host: str


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (path, connections) measurement."""

    requests: int
    seconds: float
    failures: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def _wrk(path: Target, connections: int, seconds: float, script: Path) -> Cell:
    whole = max(1, round(seconds))  # wrk takes whole seconds
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{whole}s", "--timeout", "5s"]
    argv += ["-s", str(script), "-H", f"Host: {path.host}", f"http://127.0.0.1:{path.port}/"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=whole + 30, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("MESHPLANE "))
    requests, micros, status, socket_errors, p50, p99 = (int(v) for v in line.split()[1:])
    return Cell(requests, micros / 1e6, status + socket_errors, p50 / 1000, p99 / 1000)


def _python(path: Target, connections: int, seconds: float) -> Cell:
    """Closed loop: one thread and keep-alive connection per ``connections``, ``seconds`` long."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    end = time.perf_counter() + seconds

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", path.port, timeout=5)
        mine = latencies[index]
        headers = {"Host": path.host}
        while (start := time.perf_counter()) < end:
            try:
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", path.port, timeout=5)
                ok = False
            mine.append(time.perf_counter() - start)
            failures[index] += not ok
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    samples = [s for per in latencies for s in per]
    return Cell(
        len(samples),
        wall,
        sum(failures),
        serving.median(samples) * 1000,
        serving.percentile(samples, 0.99) * 1000,
    )


def _check(path: Target) -> None:
    """One request must reach echo-backend 1.0 through ``path``."""
    conn = http.client.HTTPConnection("127.0.0.1", path.port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": path.host})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or b'"1.0"' not in body:
        raise RuntimeError(f"{path.name}: {response.status} {body[:200]!r}")


def _measure(paths: list[Target], rounds: int, client: str) -> dict[tuple[str, int], Cell]:
    """Per (path, connections): ``rounds`` interleaved 1 s runs, median of their percentiles.

    Interleaving the paths round by round spreads the machine's noise (other
    processes on 2 cores) over all of them instead of one path's whole cell.
    """
    runs: dict[tuple[str, int], list[Cell]] = {}
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        script = Path(tmp) / "done.lua"
        script.write_text(_WRK_DONE)

        def run(path: Target, connections: int) -> Cell:
            if client == "wrk":
                return _wrk(path, connections, ROUND_SECONDS, script)
            return _python(path, connections, ROUND_SECONDS)

        for connections in CONNECTIONS:
            for path in paths:  # warm-up: connections, Envoy's upstream pools, the app's threads
                run(path, connections)
            for _ in range(rounds):
                for path in paths:
                    runs.setdefault((path.name, connections), []).append(run(path, connections))
    return {key: _combine(cells) for key, cells in runs.items()}


def _combine(cells: list[Cell]) -> Cell:
    return Cell(
        sum(c.requests for c in cells),
        sum(c.seconds for c in cells),
        sum(c.failures for c in cells),
        serving.median([c.p50_ms for c in cells]),
        serving.median([c.p99_ms for c in cells]),
    )


def _print(results: dict[tuple[str, int], Cell], client: str, rounds: int) -> None:
    tool = "wrk -t1 (compiled)" if client == "wrk" else "Python http.client threads"
    print(
        f"Sidecar hop: echo-backend 1.0, closed loop, client: {tool}; per cell the median "
        f"p50/p99 of {rounds} interleaved {ROUND_SECONDS:g} s rounds"
    )
    head = (
        f"{'path':<14}{'conns':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'fail':>6}"
        f"{'added p50':>11}{'added p99':>11}"
    )
    print(head)
    print("-" * len(head))
    for (name, connections), cell in results.items():
        direct = results[("direct", connections)]
        added = ""
        if name != "direct":
            added = f"{cell.p50_ms - direct.p50_ms:>+11.3f}{cell.p99_ms - direct.p99_ms:>+11.3f}"
        print(
            f"{name:<14}{connections:>6}{cell.p50_ms:>9.3f}{cell.p99_ms:>9.3f}"
            f"{cell.rate:>9.0f}{cell.failures:>6}{added}"
        )
    one = results[("one Envoy", 1)].p50_ms - results[("direct", 1)].p50_ms
    two = results[("two Envoys", 1)].p50_ms - results[("direct", 1)].p50_ms
    print(
        f"per Envoy at 1 connection, p50: {one:.3f} ms (one hop), {two / 2:.3f} ms (two hops / 2)"
    )
    print()
    print("For comparison (not measured here):")
    low, high = SPIKE_ADDED_P50_MS
    print(f"  spike (xds-envoy-notes §3.3), one Envoy, wrk, 1 connection: +{low}-{high} ms at p50")
    print(
        f"  Istio 1.9-1.16 (peers.md §2.1), client+server sidecars, mTLS, 1000 RPS: "
        f"+{ISTIO_ADDED_P90_MS} ms at p90"
    )
    print("  AWS App Mesh: no published latency figure")


def main(argv: list[str] | None = None) -> None:
    """Start the walkthrough, measure the three paths, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.sidecar_hop")
    parser.add_argument("--rounds", type=int, default=5, help="1 s rounds per cell")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load client (default: wrk when on PATH)",
    )
    args = parser.parse_args(argv)
    with running() as mesh:
        backend = mesh.proxy(BACKEND_BLUE)
        frontend = mesh.proxy(FRONTEND, "echo-frontend")
        assert backend.app is not None
        assert backend.ingress is not None
        paths = [
            Target("direct", backend.app, "echo-backend-blue"),
            Target("one Envoy", backend.ingress, "echo-backend-blue"),
            Target("two Envoys", frontend.egress, "vs-echo-backend:80"),
        ]
        for path in paths:
            _check(path)
        results = _measure(paths, args.rounds, args.client)
    _print(results, args.client, args.rounds)


if __name__ == "__main__":
    main()
