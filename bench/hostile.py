"""Hostile input against a live server: what one attacker costs everyone else.

1. **Heavy requests.** Describe p50/p99 of one boto3 client alone, then while
   another client sends 3 MB requests back to back (an App Mesh body the
   validator must walk, and a 3 MB manifest the YAML parser must read). The
   budget: the heavy client adds < 5 ms to the other client's describe p99.
2. **Worst /healthz stall** while each hostile input runs: slowloris clients
   dripping one byte a second, the billion-laughs manifest, request lines over
   the limit, a flood of idle connections past the cap.

Run: ``python -m bench.hostile``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from bench import serving

DESCRIBES = 600
PROBE_SECONDS = 6.0
PROBE_EVERY = 0.02
SLOWLORIS_CLIENTS = 50
IDLE_FLOOD = 1200

BILLION_LAUGHS = "\n".join(
    [
        "apiVersion: appmesh.k8s.aws/v1beta2",
        "kind: Mesh",
        "metadata: {name: lol}",
        'spec: {a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"],',
        *(f"  l{i}: &a{i} [{','.join(f'*a{i - 1}' for _ in range(9))}]," for i in range(1, 10)),
        "  end: 1}",
    ]
)


def _send(url: str, method: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def _api_body() -> bytes:
    """A 3 MB CreateVirtualRouter body: 57,000 listeners for the validator to walk."""
    listeners = [
        {"portMapping": {"port": 8000 + i % 1000, "protocol": "http"}} for i in range(57000)
    ]
    return json.dumps({"virtualRouterName": "big", "spec": {"listeners": listeners}}).encode()


def _manifest_body() -> bytes:
    """A 3 MB manifest: virtual nodes, one document each, for the YAML parser to read."""
    docs = []
    for i in range(10700):
        docs.append(
            "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
            f"metadata: {{name: vn-{i}, namespace: bench}}\n"
            "spec:\n  podSelector: {matchLabels: {app: x}}\n"
            "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
            f"  serviceDiscovery: {{dns: {{hostname: vn-{i}.bench.svc.cluster.local}}}}\n"
        )
    text = "---\n".join(docs)
    return json.dumps({"sources": [{"name": "big.yaml", "text": text}]}).encode()


def _describes(client: Any) -> list[float]:
    latencies = []
    for _ in range(DESCRIBES):
        start = time.perf_counter()
        client.describe_mesh(meshName="bench")
        latencies.append(time.perf_counter() - start)
    return latencies


@contextlib.contextmanager
def _background(work: Callable[[], object]) -> Iterator[list[int]]:
    """Run ``work`` in a loop on a thread until the block ends; yields the run count."""
    stop = threading.Event()
    runs = [0]

    def loop() -> None:
        while not stop.is_set():
            work()
            runs[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield runs
    finally:
        stop.set()
        thread.join(timeout=300)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def heavy_requests(server: serving.Server) -> None:
    """Describe latency alone and beside a client sending 3 MB requests."""
    client = server.client()
    client.create_mesh(meshName="bench")
    _describes(client)  # warm-up
    api_body, manifest_body = _api_body(), _manifest_body()
    print(
        f"bodies: App Mesh {len(api_body) / 1e6:.1f} MB, manifest {len(manifest_body) / 1e6:.1f} MB"
    )
    base = _describes(client)
    api_url = f"{server.url}/v20190125/meshes/bench/virtualRouters"
    with _background(lambda: _send(api_url, "PUT", api_body)) as api_runs:
        with_api = _describes(client)
    manifest_url = f"{server.url}/meshplane/v1/manifests/apply"
    with _background(lambda: _send(manifest_url, "POST", manifest_body)) as manifest_runs:
        with_manifest = _describes(client)
    print(f"{'describe_mesh':34} {'p50':>10} {'p99':>10} {'added p99':>10}")
    p99 = serving.percentile(base, 0.99)
    for label, samples, runs in (
        ("alone", base, None),
        ("beside 3 MB App Mesh bodies", with_api, api_runs[0]),
        ("beside 3 MB manifests", with_manifest, manifest_runs[0]),
    ):
        extra = serving.percentile(samples, 0.99) - p99
        note = f"  ({runs} heavy requests meanwhile)" if runs is not None else ""
        print(
            f"{label:34} {_ms(serving.median(samples))} {_ms(serving.percentile(samples, 0.99))} "
            f"{_ms(extra)}{note}"
        )


def _probe(server: serving.Server, seconds: float) -> tuple[float, int]:
    """The worst /healthz latency over ``seconds`` of probes, and how many failed."""
    worst, failures = 0.0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            server.revision()
        except OSError:
            failures += 1
        worst = max(worst, time.perf_counter() - start)
        time.sleep(PROBE_EVERY)
    return worst, failures


def _address(server: serving.Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _slowloris(server: serving.Server, stop: threading.Event) -> None:
    """One client dripping a request head at one byte a second until cut off or stopped."""
    with socket.create_connection(_address(server), timeout=5) as sock:
        head = b"GET /v20190125/meshes HTTP/1.1\r\nHost: x\r\n" + b"X-Drip: " + b"a" * 1000
        for byte in head:
            if stop.wait(1.0):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return  # cut off by the server


def healthz_stalls(server: serving.Server) -> None:
    """The worst /healthz latency while each hostile input runs."""
    print(f"{'hostile input':48} {'worst /healthz':>14} {'failed':>7}")
    worst, failed = _probe(server, 2.0)
    print(f"{'none':48} {_ms(worst):>14} {failed:7d}")

    stop = threading.Event()
    drips = [
        threading.Thread(target=_slowloris, args=(server, stop), daemon=True)
        for _ in range(SLOWLORIS_CLIENTS)
    ]
    for drip in drips:
        drip.start()
    worst, failed = _probe(server, PROBE_SECONDS)
    stop.set()
    for drip in drips:
        drip.join()
    print(f"{f'{SLOWLORIS_CLIENTS} slowloris clients, 1 byte/s':48} {_ms(worst):>14} {failed:7d}")

    bomb = json.dumps({"sources": [{"name": "lol.yaml", "text": BILLION_LAUGHS}]}).encode()
    url = f"{server.url}/meshplane/v1/manifests/apply"
    with _background(lambda: _send(url, "POST", bomb)) as runs:
        worst, failed = _probe(server, PROBE_SECONDS)
    label = f"billion laughs ({len(BILLION_LAUGHS)} B), {runs[0]} posts"
    print(f"{label:48} {_ms(worst):>14} {failed:7d}")

    def long_line() -> None:
        with socket.create_connection(_address(server), timeout=5) as sock:
            sock.sendall(b"GET /v20190125/meshes/" + b"a" * 40000 + b" HTTP/1.1\r\n\r\n")
            while sock.recv(65536):
                pass

    with _background(long_line) as runs:
        worst, failed = _probe(server, PROBE_SECONDS)
    label = f"40 kB request lines, {runs[0]} sent"
    print(f"{label:48} {_ms(worst):>14} {failed:7d}")

    flood: list[socket.socket] = []
    with contextlib.ExitStack() as stack:
        for _ in range(IDLE_FLOOD):
            try:
                flood.append(stack.enter_context(socket.create_connection(_address(server))))
            except OSError:
                break
        worst, failed = _probe(server, PROBE_SECONDS)
    label = f"{len(flood)} idle connections (cap below the fd limit)"
    print(f"{label:48} {_ms(worst):>14} {failed:7d}")


def main() -> None:
    """Both parts against one fresh server."""
    with serving.running() as server:
        print("== heavy requests beside a describe loop")
        heavy_requests(server)
        print()
        print("== worst /healthz stall under hostile input")
        healthz_stalls(server)


if __name__ == "__main__":
    main()
