"""Propagation: an App Mesh API write → every Envoy ACKed, and → traffic follows.

The walkthrough runs for real (:mod:`bench.echo_mesh`: ``meshplane up`` with the echo
apps, each with an Envoy sidecar). Each flip is one raw-HTTP ``UpdateRoute`` (the
request boto3 sends, without boto3's own client cost) moving ``vrr-echo-backend``
between 100/0 and 0/100. Per flip, measured from just before the PUT is sent:

* **API call**: until its 200 response is read;
* **sync published**: until the sync stage hands the first rebuilt snapshot to the
  xDS cache (after its debounce; a probe wrapped around the cache's ``set_snapshot``);
* **(a) frontend ACKed**: until the frontend's sidecar has ACKed the snapshot built
  from the write's revision (read from the in-process xDS status board, woken by
  each ACK, no polling);
* **(a) every Envoy ACKed**: until every connected proxy of the mesh runs the
  snapshot of that revision (backends' snapshots do not change, so they have
  nothing to ACK, but they must have been rebuilt at the new revision);
* **(b) traffic follows**: until the first answer from the new version through the
  frontend's egress listener (the path the frontend app's own calls take), requests
  sent back to back on one keep-alive connection after the PUT returns.

Phases, side by side in one run: the walkthrough's 3 sidecars; the same plus 20 bare
Envoys joining as more replicas of the frontend's virtual node (23 proxies, 21
affected); and a what-if with the sync stage's debounce set to 0.

Run: ``python -m bench.propagation [--flips 100] [--extra 20]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import time
from typing import Any

from bench import serving
from bench.echo_mesh import FRONTEND, ROUTE_PATH, EchoMesh, running
from meshplane.client import Signer

WARMUP_FLIPS = 3
PHASE_TIME_BOUND = 40.0
FLIP_TIMEOUT = 30.0
SPIKE_TRAFFIC_MS = 2.48  # xds-envoy-notes §3.1: POST → first request served by the new colour
SPIKE_ACK_MS = 1.75  # same flips: model change → RDS ACK received by the server


@dataclasses.dataclass(frozen=True)
class Flip:
    """One flip's times in seconds, all from just before the PUT was sent."""

    api: float
    published: float
    frontend_acked: float
    all_acked: float
    traffic: float


def _route_body(blue: int, green: int) -> bytes:
    targets = [
        {"virtualNode": "vn-echo-backend-blue", "weight": blue},
        {"virtualNode": "vn-echo-backend-green", "weight": green},
    ]
    spec = {"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}}}
    return json.dumps({"spec": spec}).encode()


class _Client:
    """A keep-alive HTTP/1.1 connection that reconnects once if the server closed it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        for attempt in (1, 2):
            try:
                self._conn.request(method, path, body, headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self._conn.close()
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()


def _flip(mesh: EchoMesh, api: _Client, egress: _Client, to_green: bool) -> Flip:
    plane = mesh.plane
    keys = [p.key for p in plane.proxies()]
    frontend_key = mesh.proxy(FRONTEND, "echo-frontend").key
    revision = plane.revision()
    acked = plane.submit(plane.synced_at(keys, revision, FLIP_TIMEOUT))
    body = _route_body(0, 100) if to_green else _route_body(100, 0)
    expected = "2.0" if to_green else "1.0"
    # Signed before the clock starts, as a client would (boto3 signs before it sends).
    signer = Signer.from_file(mesh.work_dir / "data" / "credentials", "us-west-2")
    url = f"{plane.api_url}{ROUTE_PATH}"
    headers = signer.sign("PUT", url, body, {"Content-Type": "application/json"})

    publishes = len(plane.published_at)
    start = time.perf_counter()
    status, answer = api.request("PUT", ROUTE_PATH, body, headers)
    api_done = time.perf_counter()
    if status != 200:
        raise RuntimeError(f"UpdateRoute answered {status}: {answer[:200]!r}")
    deadline = api_done + FLIP_TIMEOUT
    while True:
        status, answer = egress.request("GET", "/", None, {"Host": "vs-echo-backend:80"})
        if status == 200 and json.loads(answer)["version"] == expected:
            traffic_done = time.perf_counter()
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"traffic never reached {expected}: {status} {answer[:200]!r}")
    try:
        times = dict(zip(keys, acked.result(FLIP_TIMEOUT), strict=True))
    except TimeoutError:
        raise RuntimeError(f"not synced:\n{plane.describe(keys, revision)}") from None
    return Flip(
        api=api_done - start,
        published=plane.published_at[publishes] - start,
        frontend_acked=times[frontend_key] - start,
        all_acked=max(times.values()) - start,
        traffic=traffic_done - start,
    )


def _phase(mesh: EchoMesh, flips: int) -> list[Flip]:
    """``flips`` flips (after a warm-up), bounded by ``PHASE_TIME_BOUND`` seconds."""
    api = _Client(mesh.plane.api_port)
    egress = _Client(mesh.proxy(FRONTEND, "echo-frontend").egress)
    results: list[Flip] = []
    end = time.monotonic() + PHASE_TIME_BOUND
    to_green = True  # every phase starts (and ends) at 100/0, as the walkthrough does
    try:
        for index in range(WARMUP_FLIPS + flips):
            flip = _flip(mesh, api, egress, to_green)
            to_green = not to_green
            if index >= WARMUP_FLIPS:
                results.append(flip)
            time.sleep(0.01)  # a pause between writes, so each flip is measured on its own
            if time.monotonic() > end:
                break
        if not to_green:
            _flip(mesh, api, egress, to_green=False)
    finally:
        api.close()
        egress.close()
    return results


def _ms(samples: list[float]) -> tuple[float, float]:
    return serving.median(samples) * 1000, serving.percentile(samples, 0.99) * 1000


def _print(phases: dict[str, tuple[int, list[Flip]]]) -> None:
    print("Propagation: raw-HTTP UpdateRoute flipping 100/0 <-> 0/100 on the running walkthrough")
    head = f"{'phase':<28}{'proxies':>8}{'flips':>6}  {'measure':<26}{'median ms':>10}{'p99 ms':>9}"
    print(head)
    print("-" * len(head))
    for name, (proxies, flips) in phases.items():
        rows = (
            ("API call (PUT → 200)", [f.api for f in flips]),
            ("sync published (1st proxy)", [f.published for f in flips]),
            ("(a) frontend Envoy ACKed", [f.frontend_acked for f in flips]),
            ("(a) every Envoy ACKed", [f.all_acked for f in flips]),
            ("(b) traffic follows", [f.traffic for f in flips]),
        )
        for index, (label, samples) in enumerate(rows):
            p50, p99 = _ms(samples)
            first = f"{name:<28}{proxies:>8}{len(flips):>6}" if index == 0 else " " * 42
            print(f"{first}  {label:<26}{p50:>10.2f}{p99:>9.2f}")
        share = serving.median([f.api / f.all_acked for f in flips])
        all_p50 = _ms([f.all_acked for f in flips])[0]
        traffic_p50 = _ms([f.traffic for f in flips])[0]
        print(
            f"{'':<42}  API call's share of (a): {share:.0%} (median per flip); "
            f"vs spike: (a) {all_p50 / SPIKE_ACK_MS:.1f}x, "
            f"(b) {traffic_p50 / SPIKE_TRAFFIC_MS:.1f}x"
        )
    print()
    print("For comparison (not measured here):")
    print(
        f"  spike, one Envoy, in-process model change (xds-envoy-notes §3.1): "
        f"→ RDS ACK {SPIKE_ACK_MS} ms, POST → new colour served {SPIKE_TRAFFIC_MS} ms (medians)"
    )
    print(
        "  AWS App Mesh: no published figure; eventually consistent, users report seconds, "
        "and bugs of > 10 min (roadmap#218) and > 15 min (eks-charts#605)"
    )
    print(
        "  Istio: 100 ms debounce quiet period by default; pilot_proxy_convergence_time p90 "
        "1.5 s (1.11) → 4.5 s (1.12) at Airbnb"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the three phases in one mesh and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.propagation")
    parser.add_argument("--flips", type=int, default=100, help="measured flips per phase")
    parser.add_argument("--extra", type=int, default=20, help="extra frontend Envoys, phase 2")
    args = parser.parse_args(argv)
    phases: dict[str, tuple[int, list[Flip]]] = {}
    with running() as mesh:
        phases["walkthrough"] = (len(mesh.plane.proxies()), _phase(mesh, args.flips))
        mesh.add_frontend_replicas(args.extra)
        phases[f"+{args.extra} frontend Envoys"] = (
            len(mesh.plane.proxies()),
            _phase(mesh, args.flips),
        )
        mesh.stop_extras()
        mesh.plane.set_debounce(0.0)
        phases["walkthrough, debounce 0 *"] = (len(mesh.plane.proxies()), _phase(mesh, args.flips))
    _print(phases)
    print(
        "  * what-if: the sync stage's debounce (MESHPLANE_SYNC_DEBOUNCE_MS, default 1 ms) set to 0"
    )


if __name__ == "__main__":
    main()
