"""The walkthrough as a user runs it, for end-to-end tests: real processes, real ports.

* :class:`Serve` — ``meshplane serve`` on fixed free ports and a data dir, so it
  can be SIGKILLed and restarted exactly where it was;
* :class:`Up` — ``meshplane up -f <copy of examples/echo> --server URL``: the
  walkthrough's workloads with their Envoy sidecars, the frontend published on
  a free port of its own (``publish:`` rewritten in the copy);
* :class:`Plane` — what the control plane reports (``/healthz``,
  ``/meshplane/v1/proxies``) and the convergence rule: every expected proxy is
  connected, built from the current store revision, and has ACKed every type
  it was sent;
* :class:`Load` — a bounded keep-alive client loop through the published port
  that counts answers, non-200s and connection errors.

Every wait polls a condition with a deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo"
MESH, ROUTER, ROUTE = "demos", "vr-echo-backend", "vrr-echo-backend"
BLUE, GREEN = "vn-echo-backend-blue", "vn-echo-backend-green"
PROXIES = (
    "mesh/demos/virtualNode/vn-echo-backend-blue#echo-backend-blue-0",
    "mesh/demos/virtualNode/vn-echo-backend-green#echo-backend-green-0",
    "mesh/demos/virtualNode/vn-echo-frontend-blue#echo-frontend-blue-0",
)
FRONTEND = PROXIES[2]
STARTUP = 90.0
"""Seconds a process gets to come up on a loaded 2-core box (generous on purpose)."""
CONVERGE = 30.0
"""Seconds a config change gets to reach every Envoy (milliseconds when healthy)."""
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


def free_port() -> int:
    """A loopback port free right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def _meshplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshplane.cli.main", *args]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` in the process tree."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and _alive(child):
                found.add(child)
                todo.append(child)
    return found


def running_in(directory: Path) -> set[int]:
    """Live processes whose working directory or command line is inside ``directory``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if (str(directory) in cmdline or cwd.startswith(str(directory))) and _alive(
                int(entry.name)
            ):
                found.add(int(entry.name))
    return found


def _stop(process: subprocess.Popen[bytes], grace: float = 30.0) -> int:
    """SIGTERM, wait ``grace`` seconds, then SIGKILL; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=grace)


class Serve:
    """``meshplane serve`` on fixed ports and a data dir, restartable in place."""

    def __init__(self, workdir: Path) -> None:
        """Pick the ports now so a restart binds the same ones."""
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.api_port, self.xds_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The App Mesh API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log(self) -> Path:
        """This start's combined stdout/stderr."""
        return self.workdir / f"serve-{self.starts}.log"

    def start(self) -> Serve:
        """Start and wait until ``/healthz`` answers."""
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _meshplane(
                    "serve",
                    "--api-port",
                    str(self.api_port),
                    "--xds-port",
                    str(self.xds_port),
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll(self._healthy, STARTUP, f"meshplane serve on {self.url}")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane serve exited early:\n{self.log.read_text()}")
        return Plane(self.url).reachable()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is closed politely."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        return _stop(self.process)


class Up:
    """``meshplane up -f <copy of examples/echo> --server URL``, published on a free port."""

    def __init__(self, workdir: Path, serve: Serve) -> None:
        """Copy the example into ``workdir/echo`` with ``publish:`` on a free port."""
        self.directory = workdir / "echo"
        shutil.copytree(EXAMPLE, self.directory)
        self.port = free_port()
        workloads = self.directory / "workloads.yaml"
        text = workloads.read_text()
        assert text.count("publish: 127.0.0.1:8080") == 1, "the example's publish line moved"
        workloads.write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}"))
        self.serve = serve
        self.log = workdir / "up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()
        """Every process ever observed below ``up`` (apps and Envoys)."""

    def start(self) -> Up:
        """Start ``up`` in the example directory and wait until the frontend answers."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _meshplane(
                    "up",
                    "-f",
                    str(self.directory),
                    "--server",
                    self.serve.url,
                    "--xds-port",
                    str(self.serve.xds_port),
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        poll(self._answering, STARTUP, f"the published frontend on port {self.port}")
        return self

    def _answering(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"meshplane up exited early:\n{self.log.read_text()}")
        try:
            with DIRECT.open(f"http://127.0.0.1:{self.port}/", timeout=10) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def processes(self) -> dict[int, str]:
        """The apps and Envoys running below ``up`` now (pid → command name)."""
        assert self.process is not None
        found = descendants(self.process.pid)
        self.seen |= found
        return {pid: _comm(pid) for pid in found}

    def stop(self) -> int:
        """SIGTERM ``up`` (it stops its workloads and sidecars) and wait; returns the exit code."""
        assert self.process is not None
        self.processes()
        return _stop(self.process, grace=60.0)

    def leftovers(self) -> set[int]:
        """Processes of this session still alive: every one ``up`` ran, or one in its directory."""
        return {pid for pid in self.seen if _alive(pid)} | running_in(self.directory)


class Plane:
    """The control plane's operator view: revision, proxies, convergence."""

    def __init__(self, url: str) -> None:
        """Read from the API at ``url``."""
        self.url = url

    def _get(self, path: str) -> Any:
        with DIRECT.open(self.url + path, timeout=10) as answer:
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


def appmesh(url: str) -> Any:
    """A boto3 App Mesh client for ``url`` (dummy credentials, no retries)."""
    return boto3.client(
        "appmesh",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
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


def apply_weights(directory: Path, server: str, blue: int, green: int) -> str:
    """Edit the copy's vr-echo-backend.yaml to ``blue``/``green`` and ``meshplane apply`` it."""
    manifest = directory / "vr-echo-backend.yaml"
    lines = manifest.read_text().splitlines(keepends=True)
    weights = [i for i, line in enumerate(lines) if line.strip().startswith("weight:")]
    assert len(weights) == 2, "vr-echo-backend.yaml should weight exactly blue then green"
    for index, weight in zip(weights, (blue, green), strict=True):
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index] = f"{indent}weight: {weight}\n"
    manifest.write_text("".join(lines))
    done = subprocess.run(
        _meshplane("apply", "-f", str(manifest), "--server", server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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


def session(workdir: Path) -> Iterator[tuple[Serve, Up]]:
    """A control plane and ``up`` running the walkthrough; both stopped, nothing left behind."""
    serve = Serve(workdir).start()
    up: Up | None = None
    try:
        up = Up(workdir, serve).start()
        running = up.processes()
        # One app and one Envoy sidecar per workload, all below ``up``.
        assert len(running) == 6, running
        assert list(running.values()).count("envoy") == 3, running
        Plane(serve.url).wait_converged()
        yield serve, up
    finally:
        up_code = up.stop() if up is not None and up.process is not None else 0
        if serve.process is not None and serve.process.poll() is None:
            serve.stop()
    assert up_code == 0, up.log.read_text() if up is not None else ""
    assert up is not None
    assert up.leftovers() == set(), f"processes left behind: {up.leftovers()}"
