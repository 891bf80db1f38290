"""The walkthrough's mesh, running for benchmarks: control plane in-process, workloads real.

The control plane (store, API, sync, ADS) runs in this process on its own thread and
event loop, so a benchmark can read the xDS status board directly and time ACKs
without polling. Everything else is what users run: ``meshplane up --server URL -f
<copy of examples/echo>`` as a child process starts the echo apps, each with a real
Envoy sidecar, and publishes the frontend on a free port. Extra bare Envoys can join
as further replicas of the frontend's virtual node (distinct ``replica`` metadata).

Leaving the ``with`` block stops the extra Envoys, SIGTERMs ``meshplane up`` (which
stops its apps and sidecars), kills its process group if anything was left, and stops
the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format

from meshplane import app, client, envoy, settings
from meshplane.runtime.ports import PortAllocator
from meshplane.xds.snapshot import Snapshot
from meshplane.xds.status import NodeStatus

T = TypeVar("T")

MESH = "demos"
FRONTEND = f"mesh/{MESH}/virtualNode/vn-echo-frontend-blue"
BACKEND_BLUE = f"mesh/{MESH}/virtualNode/vn-echo-backend-blue"
BACKEND_GREEN = f"mesh/{MESH}/virtualNode/vn-echo-backend-green"
ROUTE_PATH = f"/v20190125/meshes/{MESH}/virtualRouter/vr-echo-backend/routes/vrr-echo-backend"
STARTUP_SECONDS = 90.0
_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "echo"


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(condition: Callable[[], T], deadline: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; RuntimeError after ``deadline`` s."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclasses.dataclass(frozen=True)
class Proxy:
    """One connected Envoy: its status-board key, node id and the ports it announced."""

    key: str
    node_id: str
    replica: str
    egress: int
    ingress: int | None
    app: int | None


def _proxy(status: NodeStatus) -> Proxy:
    meta = json_format.MessageToDict(status.node.metadata).get("meshplane", {})
    ingress = [int(p) for p in meta.get("ingress", {}).values()]
    apps = [int(p) for p in meta.get("app", {}).values()]
    return Proxy(
        status.key,
        status.node.id,
        str(meta.get("replica", "")),
        int(meta.get("egress", 0)),
        ingress[0] if ingress else None,
        apps[0] if apps else None,
    )


class PlaneThread:
    """An in-process control plane on its own thread and event loop."""

    def __init__(self, data_dir: Path) -> None:
        """Serve a fresh store in ``data_dir`` on free API and xDS ports once entered."""
        self._config = settings.load(environ={}, data_dir=data_dir, api_port=0, xds_port=0)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.plane: app.ControlPlane | None = None
        self.published_at: list[float] = []
        """``perf_counter`` of every snapshot the sync stage published, in order."""
        self._thread = threading.Thread(target=self._main, name="meshplane-bench-plane")

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with app.running(app.build(self._config)) as plane:
                self.plane = plane
                self._time_publishes(plane)
                self._ready.set()
                await self._stop.wait()
        except BaseException as error:
            self._error = error
            raise
        finally:
            self._ready.set()

    def _time_publishes(self, plane: app.ControlPlane) -> None:
        """Record when the sync stage hands each snapshot to the xDS cache (benchmark probe)."""
        cache = plane.cache
        publish = cache.set_snapshot

        def timed(key: str, snapshot: Snapshot) -> None:
            self.published_at.append(time.perf_counter())
            publish(key, snapshot)

        cache.set_snapshot = timed  # type: ignore[method-assign]

    def __enter__(self) -> PlaneThread:
        self._thread.start()
        self._ready.wait(60)
        if self.plane is None:
            self.__exit__()
            raise RuntimeError(f"control plane did not start: {self._error!r}")
        return self

    def __exit__(self, *_: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the plane's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Start ``coro`` on the plane's loop; returns a concurrent future."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    @property
    def api_url(self) -> str:
        """The REST API's base URL."""
        assert self.plane is not None
        return f"http://127.0.0.1:{self.plane.api_port}"

    @property
    def api_port(self) -> int:
        """The REST API's port."""
        assert self.plane is not None
        return self.plane.api_port

    def set_debounce(self, seconds: float) -> None:
        """Benchmark what-if: change the sync stage's debounce."""

        async def change() -> None:
            assert self.plane is not None
            self.plane.sync.debounce = seconds

        self.call(change())

    def proxies(self) -> list[Proxy]:
        """Every connected proxy, read on the plane's loop."""

        async def read() -> list[Proxy]:
            assert self.plane is not None
            nodes = self.plane.ads.status.nodes().values()
            return [_proxy(s) for s in nodes if s.connected]

        return self.call(read())

    def revision(self) -> int:
        """The store's revision, read on the plane's loop (the store's own thread)."""

        async def read() -> int:
            assert self.plane is not None
            return self.plane.store.revision()

        return self.call(read())

    def connected_keys(self) -> list[str]:
        """Keys of every connected proxy. Call on the plane's loop only."""
        assert self.plane is not None
        return [k for k, s in self.plane.ads.status.nodes().items() if s.connected]

    def synced(self, key: str, after_revision: int) -> bool:
        """Whether ``key`` runs the snapshot built from a revision newer than ``after_revision``.

        Call on the plane's loop only.
        """
        assert self.plane is not None
        published = self.plane.sync.published.get(key)
        snapshot = self.plane.ads.cache.snapshot(key)
        status = self.plane.ads.status.node(key)
        return (
            published is not None
            and published.revision > after_revision
            and snapshot is not None
            and status is not None
            and status.connected
            and status.has_acked(snapshot)
        )

    def describe(self, keys: list[str], after_revision: int) -> str:
        """Why ``keys`` are not synced: one line per unsynced key (for error messages)."""

        async def read() -> str:
            assert self.plane is not None
            lines = []
            for key in keys:
                if self.synced(key, after_revision):
                    continue
                status = self.plane.ads.status.node(key)
                published = self.plane.sync.published.get(key)
                types = {
                    t.rsplit(".", 1)[-1]: (s.sent_version, s.acked_version, s.nacks)
                    for t, s in (status.types.items() if status else ())
                }
                lines.append(
                    f"{key}: connected={status.connected if status else None} "
                    f"published={published} after={after_revision} types={types}"
                )
            return "\n".join(lines)

        return self.call(read())

    async def synced_at(self, keys: list[str], after_revision: int, timeout: float) -> list[float]:
        """Per key, the ``perf_counter`` time it first ran a snapshot newer than ``after_revision``.

        Woken by every status-board change (ACKs included), so each time is taken
        on the loop iteration right after the ACK that completed the key's sync.
        """
        assert self.plane is not None
        board = self.plane.ads.status

        async def one(key: str) -> float:
            await board.wait_for(key, lambda _s: self.synced(key, after_revision), timeout)
            return time.perf_counter()

        return list(await asyncio.gather(*(one(key) for key in keys)))


def _copy_example(into: Path, publish_port: int) -> Path:
    """The walkthrough's directory, with ``publish:`` moved to a free port."""
    target = into / "echo"
    shutil.copytree(_EXAMPLE, target)
    workloads = target / "workloads.yaml"
    text = re.sub(
        r"publish: 127\.0\.0\.1:\d+", f"publish: 127.0.0.1:{publish_port}", (workloads.read_text())
    )
    workloads.write_text(text)
    return target


def _frontend_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return b'"backend": "1.0"' in response.read()
    except OSError:
        return False


@dataclasses.dataclass
class EchoMesh:
    """The running walkthrough: control plane, ``meshplane up`` and any extra Envoys."""

    plane: PlaneThread
    publish_port: int
    work_dir: Path
    extras: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    ports: PortAllocator = dataclasses.field(default_factory=PortAllocator)

    def proxy(self, node_id: str, replica_prefix: str = "") -> Proxy:
        """The one connected proxy of ``node_id`` whose replica starts with ``replica_prefix``."""
        found = [
            p
            for p in self.plane.proxies()
            if p.node_id == node_id and p.replica.startswith(replica_prefix)
        ]
        if len(found) != 1:
            raise RuntimeError(f"expected one proxy of {node_id}, found {found}")
        return found[0]

    def all_synced(self, after_revision: int = -1) -> bool:
        """Whether every connected proxy runs its current snapshot."""

        async def check() -> bool:
            keys = self.plane.connected_keys()
            return bool(keys) and all(self.plane.synced(k, after_revision) for k in keys)

        return self.plane.call(check())

    def add_frontend_replicas(self, count: int, attempts: int = 3) -> None:
        """Start ``count`` bare Envoys as more replicas of the frontend's node; wait for sync.

        They announce an egress port only (no ingress: nothing calls them). A port
        handed out here can be taken by another process before Envoy binds it; an
        Envoy whose listener was NACKed for that reason is replaced with fresh ports.
        """
        extras: dict[str, subprocess.Popen[bytes]] = {}
        missing = [f"bench-extra-{index}" for index in range(count)]
        for attempt in range(attempts):
            for replica in missing:
                name = f"{replica}-{attempt}"
                extras[name] = self._start_extra(name)
            names = set(extras)
            wait(functools.partial(self._connected, names), 60, "extra Envoys to connect")
            with contextlib.suppress(RuntimeError):
                wait(self.all_synced, 20, "extra Envoys to sync")
            stuck = [p.replica for p in self.plane.proxies() if p.replica in names]
            stuck = [r for r in stuck if not self._replica_synced(r)]
            for name in stuck:
                process = extras.pop(name)
                process.kill()
                process.wait()
            self.extras = [*self.extras, *(extras[n] for n in names - set(stuck))]
            extras = {}
            missing = [name.rsplit("-", 1)[0] for name in stuck]
            if not missing:
                return
        raise RuntimeError(f"extra Envoys never synced: {missing}")

    def _start_extra(self, replica: str) -> subprocess.Popen[bytes]:
        meta = {"meshplane": {"replica": replica, "egress": self.ports.allocate()}}
        # Each extra sidecar shows its own replica's credential, as the runtime's do.
        credential = client.connect(self.plane.api_url, trust_env=False).issue_proxy_credential(
            FRONTEND, replica
        )
        config = envoy.bootstrap(
            FRONTEND,
            FRONTEND,
            "127.0.0.1",
            self._xds_port,
            "127.0.0.1",
            0,
            meta,
            credential=credential.token,
        )
        argv = envoy.command(config, admin_address_path=self.work_dir / f"{replica}.admin")
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _connected(self, replicas: set[str]) -> bool:
        return replicas <= {p.replica for p in self.plane.proxies()}

    def _replica_synced(self, replica: str) -> bool:
        async def check() -> bool:
            keys = [k for k in self.plane.connected_keys() if k.endswith(f"#{replica}")]
            return all(self.plane.synced(k, -1) for k in keys)

        return self.plane.call(check())

    @property
    def _xds_port(self) -> int:
        assert self.plane.plane is not None
        return self.plane.plane.xds_port

    def stop_extras(self, wait_gone: bool = True) -> None:
        """Kill the extra Envoys (no state worth draining); wait until the plane saw them go."""
        if not self.extras:
            return
        for process in self.extras:
            process.kill()
        for process in self.extras:
            process.wait()
        self.extras.clear()
        if wait_gone:
            wait(
                lambda: not any(p.replica.startswith("bench-extra") for p in self.plane.proxies()),
                30,
                "extras to disconnect",
            )


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; the runtime gives each child its own group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop_up(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``meshplane up`` and wait; if it outlives 30 s, SIGKILL it and its descendants."""
    family = _descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in family:  # normally already gone: up stops its children itself
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def running() -> Iterator[EchoMesh]:
    """The walkthrough running, every proxy synced and the frontend answering ``1.0``.

    SIGTERM is turned into SystemExit meanwhile, so a killed benchmark still stops
    everything it started.
    """
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with _running() as mesh:
            yield mesh
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _running() -> Iterator[EchoMesh]:
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        work = Path(tmp)
        publish = free_port()
        example = _copy_example(work, publish)
        with PlaneThread(work / "data") as plane:
            assert plane.plane is not None
            argv = [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(example)]
            argv += ["--server", plane.api_url, "--xds-port", str(plane.plane.xds_port)]
            argv += ["--data-dir", str(work / "up-data")]
            with (work / "up.log").open("wb") as log:
                # `up --server` signs as the in-process plane's administrator.
                env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
                env["AWS_SHARED_CREDENTIALS_FILE"] = str(work / "data" / "credentials")
                env["AWS_PROFILE"] = "meshplane"
                up = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=work,
                    start_new_session=True,
                    env=env,
                )
            mesh = EchoMesh(plane, publish, work)
            try:
                wait(lambda: len(plane.proxies()) >= 3, STARTUP_SECONDS, "three sidecars")
                wait(mesh.all_synced, STARTUP_SECONDS, "sidecars to sync")
                wait(lambda: _frontend_answers(publish), STARTUP_SECONDS, "the frontend")
                yield mesh
            except RuntimeError:
                sys.stderr.write((work / "up.log").read_text(errors="replace")[-4000:])
                raise
            finally:
                try:
                    mesh.stop_extras(wait_gone=False)
                finally:
                    _stop_up(up)
