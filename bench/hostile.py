"""Hostile input against a live server: what one attacker costs everyone else.

1. **Heavy requests.** Describe p50/p99 of one boto3 client alone, then while
   another client sends heavy requests back to back (a 3 MB App Mesh body the
   validator must walk, signed, unsigned and with a forged signature, one past the
   body limit, and a 3 MB manifest the YAML parser must read). The budget: the
   heavy client adds < 5 ms to the other client's describe p99.
2. **Worst /healthz stall** while each hostile input runs: slowloris clients
   dripping one byte a second, the billion-laughs manifest, request lines over
   the limit, a flood of idle connections past the cap.

Run: ``python -m bench.hostile`` (``--heavy-only``, ``--kinds 0,4``: part 1, some rows).
The server runs probed (:mod:`bench.loopprobe`): part 1 also reports the longest
event-loop stall during each heavy request, next to the longest in the alone windows.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from bench import loopprobe, serving
from meshplane.client import Signer
from meshplane.client.sigv4 import Keys

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
    """Send one request; its status, or 0 when the server cut the connection instead."""
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
    except (urllib.error.URLError, ConnectionError):
        return 0


def _api_body() -> bytes:
    """A 3 MB CreateVirtualRouter body: 57,000 listeners for the validator to walk."""
    listeners = [
        {"portMapping": {"port": 8000 + i % 1000, "protocol": "http"}} for i in range(57000)
    ]
    return json.dumps({"virtualRouterName": "big", "spec": {"listeners": listeners}}).encode()


def _over_limit_body() -> bytes:
    """A 5 MB CreateVirtualRouter body: past the 4 MiB the server accepts."""
    listeners = [
        {"portMapping": {"port": 8000 + i % 1000, "protocol": "http"}} for i in range(95000)
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


@dataclasses.dataclass(frozen=True)
class Heavy:
    """One kind of heavy request: what is sent, and how it is signed."""

    label: str
    method: str
    path: str
    make_body: Callable[[], bytes]
    signing: str
    """``admin`` (the administrator's keys), ``none``, or ``forged`` (its key id, a wrong
    secret: the signature can only be found wrong after the whole body is read)."""


_ROUTERS = "/v20190125/meshes/bench/virtualRouters"
_APPLY = "/meshplane/v1/manifests/apply"
HEAVY = (
    Heavy("App Mesh 3 MB, signed", "PUT", _ROUTERS, _api_body, "admin"),
    Heavy("App Mesh 3 MB, unsigned", "PUT", _ROUTERS, _api_body, "none"),
    Heavy("App Mesh 3 MB, forged signature", "PUT", _ROUTERS, _api_body, "forged"),
    Heavy("App Mesh 5 MB (over the limit)", "PUT", _ROUTERS, _over_limit_body, "admin"),
    Heavy("manifest 3 MB, signed", "POST", _APPLY, _manifest_body, "admin"),
    Heavy("manifest 3 MB, unsigned", "POST", _APPLY, _manifest_body, "none"),
)


def _signer(signing: str, credentials: Path) -> Signer | None:
    if signing == "none":
        return None
    admin = Signer.from_file(credentials, "us-west-2")
    if signing == "forged":
        return admin._replace(credentials=Keys(admin.credentials.access_key, "not-the-secret"))
    return admin


def _heavy_sender(
    base_url: str,
    which: int,
    credentials: str,
    running: EventType,
    stop: EventType,
    sent: Any,
    inflight: Any,
    answers: Any,
) -> None:
    """A separate process (its own GIL) sending one kind of heavy request while ``running``.

    Puts ``(start, end, status)`` of each request on ``answers``, in ``time.monotonic``
    seconds (the clock the probed server records its stalls with).
    """
    heavy = HEAVY[which]
    body = heavy.make_body()
    signer = _signer(heavy.signing, Path(credentials))
    while not stop.is_set():
        if not running.wait(0.05):
            continue
        inflight.value = 1
        start = time.monotonic()
        code = _send(base_url + heavy.path, heavy.method, body, signer)
        answers.put((start, time.monotonic(), code))
        with sent.get_lock():
            sent.value += 1
        inflight.value = 0


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


@dataclasses.dataclass
class Beside:
    """One kind's alternating windows: describe latencies, heavy requests, loop stalls."""

    alone: list[float] = dataclasses.field(default_factory=list)
    beside: list[float] = dataclasses.field(default_factory=list)
    alone_windows: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    requests: list[tuple[float, float, int]] = dataclasses.field(default_factory=list)
    """``(start, end, status)`` of every heavy request."""

    def added_p99(self) -> float:
        """The describe p99 beside heavy requests less the p99 alone."""
        return serving.percentile(self.beside, 0.99) - serving.percentile(self.alone, 0.99)

    def stalls(
        self, recorded: list[loopprobe.Stall], *, busy: bool
    ) -> tuple[list[float], list[float]]:
        """The longest loop stall in each alone window, and during each heavy request."""
        windows = [(start, end) for start, end, _ in self.requests]
        return (
            [loopprobe.longest(recorded, *window, busy=busy) for window in self.alone_windows],
            [loopprobe.longest(recorded, *window, busy=busy) for window in windows],
        )


def _beside(server: serving.Server, which: int) -> Beside:
    """Describe latencies alone and beside a sender process, in alternating windows.

    Alternating (alone, beside, alone, ...) puts the machine's drift into both
    columns alike, so the added p99 is the heavy client's doing, not a neighbour's. An
    alone window starts once the last heavy request has been answered; a beside window
    once the next one is on its way.
    The sender runs in its own process: in this process it would contend for this
    process's GIL with the describing client and blame the server for it.
    """
    context = multiprocessing.get_context("spawn")
    running, stop = context.Event(), context.Event()
    sent, inflight, answers = context.Value("i", 0), context.Value("i", 0), context.Queue()
    credentials = str(server.data_dir / "credentials")
    sender = context.Process(
        target=_heavy_sender,
        args=(server.url, which, credentials, running, stop, sent, inflight, answers),
        daemon=True,
    )
    sender.start()
    client = server.client()
    result = Beside()
    try:
        for _ in range(WINDOWS):
            while inflight.value:  # alone means alone: the last heavy request has finished
                time.sleep(0.005)
            start = time.monotonic()
            result.alone += _describes(client, DESCRIBES // WINDOWS)
            result.alone_windows.append((start, time.monotonic()))
            running.set()
            while not inflight.value:  # a heavy request is on its way
                time.sleep(0.005)
            result.beside += _describes(client, DESCRIBES // WINDOWS)
            running.clear()
        while inflight.value:
            time.sleep(0.005)
    finally:
        stop.set()
        for _ in range(sent.value):
            result.requests.append(answers.get(timeout=60))
        sender.join(timeout=300)
    return result


def _stall_columns(run: Beside, recorded: list[loopprobe.Stall], *, busy: bool) -> str:
    alone, heavy = run.stalls(recorded, busy=busy)
    return (
        f" {_ms(serving.median(alone))} {_ms(serving.median(heavy))} {_ms(max(heavy))}"
        if heavy
        else ""
    )


def heavy_requests(server: serving.Server, kinds: Sequence[int] | None = None) -> None:
    """Describe latency alone and beside a client sending heavy requests, and loop stalls.

    With a probed server (``serving.running(probed=True)``) each row also shows the
    server's longest event-loop stall: the median over the alone windows of each
    window's longest, and the median and worst over the heavy requests of the longest
    during each. That is the heavy client's cost to everyone else measured where it
    happens, not through one client's sampled latencies. ``wall`` is how late the
    loop ran; ``busy`` counts only the server's CPU time within it (the rest is the
    machine's other load keeping the server from a core).
    """
    client = server.client()
    client.create_mesh(meshName="bench")
    _describes(client)  # warm-up
    print(f"{WINDOWS} alternating windows of {DESCRIBES // WINDOWS} describes each")
    header = f"{'describe_mesh beside':32} {'alone p50':>10} {'p99':>10} "
    header += f"{'beside p50':>10} {'p99':>10} {'added p99':>10}"
    if server.stalls_file is not None:
        stalls = f"{'alone':>10} {'heavy p50':>10} {'max':>10}"
        header += f" | loop stall, wall: {stalls} | busy: {stalls}"
    print(header)
    for which in range(len(HEAVY)) if kinds is None else kinds:
        run = _beside(server, which)
        line = (
            f"{HEAVY[which].label:32} {_ms(serving.median(run.alone))} "
            f"{_ms(serving.percentile(run.alone, 0.99))} {_ms(serving.median(run.beside))} "
            f"{_ms(serving.percentile(run.beside, 0.99))} {_ms(run.added_p99())}"
        )
        if server.stalls_file is not None:
            time.sleep(2 * loopprobe.FLUSH_EVERY)  # the probe's last lines reach the file
            recorded = loopprobe.read_stalls(server.stalls_file)
            line += f" | {'':17}" + _stall_columns(run, recorded, busy=False)
            line += f" | {'':5}" + _stall_columns(run, recorded, busy=True)
        codes = sorted({code for _, _, code in run.requests})
        print(f"{line}  ({len(run.requests)} sent, answered {codes})")


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


def main(argv: Sequence[str] | None = None) -> None:
    """Both parts against one fresh, probed server (``--heavy-only``: the first part)."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile")
    parser.add_argument("--heavy-only", action="store_true", help="skip the /healthz part")
    parser.add_argument(
        "--kinds", help="comma-separated row numbers of the heavy part (0-based), default all"
    )
    options = parser.parse_args(argv)
    kinds = [int(k) for k in options.kinds.split(",")] if options.kinds else None
    with serving.running(probed=True) as server:
        print("== heavy requests beside a describe loop")
        heavy_requests(server, kinds)
        if options.heavy_only:
            return
        print()
        print("== worst /healthz stall under hostile input")
        healthz_stalls(server)


if __name__ == "__main__":
    main()
