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
import multiprocessing
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from bench import serving
from meshplane.client import Signer

DESCRIBES = 600
WINDOWS = 6
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


def _send(url: str, method: str, body: bytes, signer: Signer | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers = signer.sign(method, url, body, headers)
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
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


HEAVY = {
    "App Mesh": ("PUT", "/v20190125/meshes/bench/virtualRouters", _api_body),
    "manifest": ("POST", "/meshplane/v1/manifests/apply", _manifest_body),
}


def _heavy_sender(
    base_url: str,
    kind: str,
    credentials: str | None,
    running: EventType,
    stop: EventType,
    sent: Any,
    inflight: Any,
    codes: Any,
) -> None:
    """A separate process (its own GIL) sending one kind of 3 MB request while ``running``."""
    method, path, make_body = HEAVY[kind]
    body = make_body()
    signer = Signer.from_file(Path(credentials), "us-west-2") if credentials else None
    while not stop.is_set():
        if not running.wait(0.05):
            continue
        inflight.value = 1
        code = _send(base_url + path, method, body, signer)
        with sent.get_lock():
            sent.value += 1
        inflight.value = 0
        codes.put(code)


def _describes(client: Any, count: int = DESCRIBES) -> list[float]:
    latencies = []
    for _ in range(count):
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


def _beside(
    server: serving.Server, kind: str, signed: bool
) -> tuple[list[float], list[float], int, set[int]]:
    """Describe latencies alone and beside a sender process, in alternating windows.

    Alternating (alone, beside, alone, ...) puts the machine's drift into both
    columns alike, so the added p99 is the heavy client's doing, not a neighbour's. An
    alone window starts once the last heavy request has been answered; a beside window
    once the next one is on its way (one takes about a second: each is refused only
    after its 57,000 listeners or 10,700 documents were read).
    The sender runs in its own process: in this process it would contend for this
    process's GIL with the describing client and blame the server for it.
    """
    context = multiprocessing.get_context("spawn")
    running, stop = context.Event(), context.Event()
    sent, inflight, codes = context.Value("i", 0), context.Value("i", 0), context.Queue()
    credentials = str(server.data_dir / "credentials") if signed else None
    sender = context.Process(
        target=_heavy_sender,
        args=(server.url, kind, credentials, running, stop, sent, inflight, codes),
        daemon=True,
    )
    sender.start()
    client = server.client()
    alone: list[float] = []
    beside: list[float] = []
    try:
        for _ in range(WINDOWS):
            while inflight.value:  # alone means alone: the last heavy request has finished
                time.sleep(0.005)
            alone += _describes(client, DESCRIBES // WINDOWS)
            running.set()
            while not inflight.value:  # a heavy request is on its way
                time.sleep(0.005)
            beside += _describes(client, DESCRIBES // WINDOWS)
            running.clear()
    finally:
        stop.set()
        sender.join(timeout=300)
    seen = set()
    while not codes.empty():
        seen.add(codes.get())
    return alone, beside, sent.value, seen


def heavy_requests(server: serving.Server) -> None:
    """Describe latency alone and beside a client sending 3 MB requests."""
    client = server.client()
    client.create_mesh(meshName="bench")
    _describes(client)  # warm-up
    print(
        f"bodies: App Mesh {len(_api_body()) / 1e6:.1f} MB, "
        f"manifest {len(_manifest_body()) / 1e6:.1f} MB; {WINDOWS} alternating windows"
    )
    header = f"{'describe_mesh beside 3 MB':36} {'alone p50':>10} {'p99':>10} "
    print(header + f"{'beside p50':>10} {'p99':>10} {'added p99':>10}")
    for kind in HEAVY:
        for signed in (True, False):
            alone, beside, sent, codes = _beside(server, kind, signed)
            label = f"{kind} bodies, {'signed' if signed else 'unsigned'}"
            added = serving.percentile(beside, 0.99) - serving.percentile(alone, 0.99)
            print(
                f"{label:36} {_ms(serving.median(alone))} "
                f"{_ms(serving.percentile(alone, 0.99))} {_ms(serving.median(beside))} "
                f"{_ms(serving.percentile(beside, 0.99))} {_ms(added)}"
                f"  ({sent} sent, answered {sorted(codes)})"
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
