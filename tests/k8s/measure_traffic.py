"""A kubectl weight change on the test cluster → intercepted traffic follows (a script, not a test).

Run from ``tests/`` as root: ``../.venv/bin/python -m k8s.measure_traffic [ROUNDS]`` (after
``make k8s-tools``). It starts its own etcd + kube-apiserver + kube-controller-manager, one
``meshplane k8s``, and the walkthrough's three injected pods on the fake kubelet (``traffic.py``).
A thread inside the frontend's pod sends requests back to back to the frontend app (which calls
``vs-echo-backend`` through iptables and two Envoys) and stamps each answer. ROUNDS times
(default 20) a ``kubectl apply`` flips the router between 100/0 and 0/100; for each flip it
reports the time from starting ``kubectl apply`` until

* the frontend Envoy's config dump shows the new weights (polled every 0.1 s),
* the first request answered by the new colour (traffic starts following), and
* the last request answered by the old one (traffic has followed entirely),

as p50/p99 over the rounds, and the failed requests over the whole run.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from interception.namespaces import Namespaces, skip_without_net_admin

from . import cluster as k8s
from . import netns_sockets, replicas, traffic

ROUNDS = 20
SETTLE = 60.0
"""How long a flip may take before the round counts as lost (then the script fails)."""


class Load:
    """Back-to-back GETs of the frontend from inside its pod: (monotonic time, version | None)."""

    def __init__(self, frontend_netns: str) -> None:
        self.answers: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=netns_sockets.call, args=(frontend_netns, self._loop), daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while not self._stop.is_set():
            version: str | None
            try:
                with opener.open(traffic.FRONTEND_URL, timeout=10) as answer:
                    version = str(json.loads(answer.read())["backend"])
            except (OSError, ValueError, KeyError):
                version = None
            self.answers.append((time.monotonic(), version))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


def main(rounds: int) -> None:
    """Run the flips and print the numbers."""
    skip_without_net_admin()
    tools = k8s.tools_dir()
    if missing := k8s.missing_tools(tools):
        raise SystemExit(f"missing {missing} in {tools}: run `make k8s-tools`")
    with tempfile.TemporaryDirectory(prefix="meshplane-measure-") as temp:
        workdir = Path(temp)
        namespaces = Namespaces()
        with k8s.running(tools, workdir / "k8s") as cluster:
            replicas.install_crds(cluster)
            replica = replicas.Replica(cluster, workdir / "replica")
            seed = None
            try:
                replicas.wait_for_webhooks(cluster)
                seed = traffic.Seed(cluster, replica, namespaces, workdir / "pods", "10.217")
                frontend = seed.frontend
                k8s.poll(
                    lambda: traffic.tally(frontend, 1)["versions"] == {"1.0": 1},
                    SETTLE,
                    "the first call through blue",
                )
                _flips(cluster, seed, rounds)
            finally:
                if seed is not None:
                    seed.stop()
                replica.stop()
                namespaces.cleanup()


def _flips(cluster: k8s.Cluster, seed: traffic.Seed, rounds: int) -> None:
    load = Load(seed.frontend.netns.name)
    first: list[float] = []
    complete: list[float] = []
    configured: list[float] = []
    old, new = "1.0", "2.0"
    try:
        for number in range(rounds):
            blue, green = (0, 100) if new == "2.0" else (100, 0)
            mark = len(load.answers)
            started = time.monotonic()
            cluster.kubectl("apply", "-f", "-", stdin=traffic.router(blue, green))
            k8s.poll(
                lambda b=blue, g=green: traffic.weights(seed.frontend) == traffic.split(b, g),
                SETTLE,
                f"flip {number}: the frontend Envoy's weights",
            )
            configured.append(time.monotonic() - started)

            def followed(mark: int = mark, started: float = started) -> bool:
                answered = [(t, v) for t, v in load.answers[mark:] if t >= started]
                tail = [v for _, v in answered[-10:]]
                return len(tail) == 10 and set(tail) == {new}  # noqa: B023 - polled at once

            k8s.poll(followed, SETTLE, f"flip {number}: traffic to follow")
            answered = [(t, v) for t, v in load.answers[mark:] if t >= started]
            first.append(next(t for t, v in answered if v == new) - started)
            olds = [t for t, v in answered if v == old]
            complete.append((olds[-1] if olds else answered[0][0]) - started)
            old, new = new, old
    finally:
        load.stop()
    failed = sum(1 for _, version in load.answers if version is None)
    print(f"kubectl apply → traffic follows, {rounds} flips 100/0 ⇄ 0/100 on the test cluster:")
    print(f"  frontend Envoy's config dump shows the weights (polled): {_percentiles(configured)}")
    print(f"  first request on the new target: {_percentiles(first)}")
    print(f"  last request on the old target:  {_percentiles(complete)}")
    print(f"  requests: {len(load.answers)}, failed: {failed}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)
