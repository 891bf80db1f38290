"""The walkthrough's traffic and the control plane's view of it, for end-to-end tests.

* :class:`Plane` — what the control plane reports (``/healthz``,
  ``/meshplane/v1/proxies``) and the convergence rule: every expected proxy is
  connected, built from the current store revision, has ACKed every type it
  was sent, and runs all of its published snapshot (``synced``);
* :func:`sample` — a burst of requests through the published frontend, every
  one of which must succeed, counted by backend version;
* :class:`Load` — a bounded keep-alive client loop through the published port
  that counts answers, non-200s and connection errors.

Every wait polls a condition with a deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import collections
import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from meshplane.client import Signer

MESH, ROUTER, ROUTE = "demos", "vr-echo-backend", "vrr-echo-backend"
BLUE, GREEN = "vn-echo-backend-blue", "vn-echo-backend-green"
PROXIES = (
    "mesh/demos/virtualNode/vn-echo-backend-blue#echo-backend-blue-0",
    "mesh/demos/virtualNode/vn-echo-backend-green#echo-backend-green-0",
    "mesh/demos/virtualNode/vn-echo-frontend-blue#echo-frontend-blue-0",
)
"""The node keys (node id ``#`` replica) of the walkthrough's three sidecars."""
FRONTEND = PROXIES[2]
FRONTEND_NODE = FRONTEND.split("#", 1)[0]
CONVERGE = 30.0
"""Seconds a config change gets to reach every Envoy (milliseconds when healthy)."""
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


def poll(condition: Callable[[], T | None], deadline: float, what: str) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.02)


class Plane:
    """The control plane's operator view: revision, proxies, convergence."""

    def __init__(self, url: str, data_dir: Path) -> None:
        """Read from the API at ``url``, signed as the administrator of ``data_dir``."""
        self.url = url
        self.data_dir = data_dir

    def _get(self, path: str) -> Any:
        headers = {}
        if path != "/healthz":  # the one open route; the rest are signed like any client's
            signer = Signer.from_file(self.data_dir / "credentials", "us-west-2")
            headers = signer.sign("GET", self.url + path, None, {})
        request = urllib.request.Request(self.url + path, headers=headers)
        with DIRECT.open(request, timeout=10) as answer:
            return json.loads(answer.read())

    def reachable(self) -> bool:
        """Whether ``/healthz`` answers ok now."""
        try:
            return bool(self._get("/healthz")["status"] == "ok")
        except (OSError, ValueError):
            return False

    def revision(self) -> int:
        """The store revision."""
        return int(self._get("/healthz")["revision"])

    def proxies(self) -> dict[str, dict[str, Any]]:
        """``GET /meshplane/v1/proxies`` keyed by proxy key."""
        return {p["key"]: p for p in self._get("/meshplane/v1/proxies")["proxies"]}

    def lagging(self, rejected: str | None = None) -> list[str]:
        """Why the mesh has not converged (empty once it has).

        Converged: every walkthrough proxy is connected, built from the current
        store revision or later, has ACKed what it was sent for every type and
        runs all of its published snapshot (``synced``) — except ``rejected``
        (a ``key`` whose RouteConfiguration is expected to stay NACKed, so it
        cannot be synced).
        """
        revision = self.revision()
        proxies = self.proxies()
        reasons = []
        for key in PROXIES:
            proxy = proxies.get(key)
            if proxy is None or not proxy["connected"]:
                reasons.append(f"{key}: not connected")
                continue
            if proxy["revision"] is None or proxy["revision"] < revision:
                reasons.append(f"{key}: revision {proxy['revision']} < {revision}")
            if key != rejected and proxy["synced"] is not True:
                reasons.append(f"{key}: not synced")
            for type_name, state in proxy["types"].items():
                if key == rejected and type_name == "RouteConfiguration":
                    continue
                if state["sent"] is None or state["acked"] != state["sent"]:
                    reasons.append(
                        f"{key}: {type_name} sent {state['sent']} acked {state['acked']}"
                    )
        return reasons

    def wait_converged(self, rejected: str | None = None) -> None:
        """Poll until :meth:`lagging` is empty; fail with the last reasons after the deadline."""
        reasons: list[str] = []

        def settled() -> bool:
            reasons[:] = self.lagging(rejected)
            return not reasons

        try:
            poll(settled, CONVERGE, "every proxy to ACK the current revision")
        except AssertionError as error:
            raise AssertionError(f"{error}: {reasons}") from None


def appmesh(url: str, data_dir: Path) -> Any:
    """A boto3 App Mesh client for ``url``, signed as ``data_dir``'s administrator, no retries."""
    keys = Signer.from_file(data_dir / "credentials", "us-west-2").credentials
    return boto3.client(
        "appmesh",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def route_spec(weights: dict[str, int], headers: list[dict[str, Any]] | None = None) -> Any:
    """An httpRoute on prefix ``/`` (plus ``headers``) sending to ``weights`` (node → weight)."""
    match: dict[str, Any] = {"prefix": "/"}
    if headers:
        match["headers"] = headers
    targets = [{"virtualNode": node, "weight": weight} for node, weight in weights.items()]
    return {"httpRoute": {"match": match, "action": {"weightedTargets": targets}}}


def update_route(client: Any, spec: Any) -> None:
    """``update_route`` on the walkthrough's route."""
    client.update_route(meshName=MESH, virtualRouterName=ROUTER, routeName=ROUTE, spec=spec)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the unix socket a sidecar's admin interface listens on."""

    def __init__(self, path: Path) -> None:
        super().__init__("envoy-admin", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(self._path))


def envoy_counters(admin: Path, suffix: str) -> dict[str, int]:
    """An Envoy's counters whose names end with ``suffix``, read from its admin socket."""
    connection = _UnixConnection(admin)
    try:
        connection.request("GET", f"/stats?filter={suffix}$")
        lines = connection.getresponse().read().decode().splitlines()
    finally:
        connection.close()
    return {name: int(value) for name, value in (line.split(": ", 1) for line in lines)}


def get(connection: http.client.HTTPConnection) -> tuple[int, dict[str, Any]]:
    """One GET / on a keep-alive connection: (status, JSON body)."""
    connection.request("GET", "/")
    response = connection.getresponse()
    body = response.read()
    return response.status, json.loads(body) if body else {}


def sample(port: int, requests: int) -> collections.Counter[str]:
    """Send ``requests`` GETs through the published port; count the backend versions.

    Every answer must be a 200: a failure here is a failure of the data plane.
    """
    seen: collections.Counter[str] = collections.Counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(requests):
            status, body = get(connection)
            assert status == 200, body
            seen[str(body["backend"])] += 1
    finally:
        connection.close()
    return seen


class Load:
    """A bounded keep-alive client loop: ``threads`` clients until stopped or time runs out."""

    def __init__(self, port: int, threads: int = 2, limit: float = 120.0) -> None:
        """Nothing runs until :meth:`running`; ``limit`` caps the loop's wall time."""
        self.port = port
        self.threads = threads
        self.limit = limit
        self.ok = 0
        self.versions: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        """``status <n>: <error>`` or the connection error's type → count."""
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def answered(self) -> int:
        """Requests finished so far, ok or not."""
        with self._lock:
            return self.ok + sum(self.failures.values())

    def _client(self) -> None:
        end = time.monotonic() + self.limit
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                try:
                    status, body = get(connection)
                except (OSError, http.client.HTTPException, ValueError) as error:
                    connection.close()  # the next request opens a new connection
                    with self._lock:
                        self.failures[type(error).__name__] += 1
                    continue
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        self.versions[str(body["backend"])] += 1
                    else:
                        self.failures[f"status {status}: {body.get('error')}"] += 1
        finally:
            connection.close()

    def wait_for_more(self, requests: int) -> None:
        """Block until ``requests`` more requests have finished (traffic on the current config)."""
        target = self.answered + requests
        poll(lambda: self.answered >= target, CONVERGE, f"{requests} more requests")

    def running(self) -> _Running:
        """Context manager: the clients run inside the ``with`` block."""
        return _Running(self)

    def summary(self) -> str:
        """One line for the test log."""
        return f"{self.ok} ok {dict(self.versions)}, failures {dict(self.failures)}"


class _Running:
    def __init__(self, load: Load) -> None:
        self.load = load
        self.workers = [threading.Thread(target=load._client) for _ in range(load.threads)]

    def __enter__(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self.load

    def __exit__(self, *_: object) -> None:
        self.load._stop.set()
        for worker in self.workers:
            worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in self.workers), "a load client hung"
