"""The local runtime: every workload replica with its sidecar, registered, published, watched.

For each workload the supervisor finds its VirtualNode (the podSelector rule
of :mod:`meshplane.runtime.selecting`), then per replica picks free ports and
starts two managed processes:

* the **app**, with ``PORT`` (its real port), ``HOSTNAME`` (the replica name)
  and ``HTTP_PROXY=http://127.0.0.1:<egress>``: outbound HTTP goes to the
  sidecar's egress listener, as App Mesh's iptables rules sent it to 15001.
  ``NO_PROXY=localhost,127.0.0.1,::1`` keeps loopback calls direct, as those
  rules only redirected non-local destinations (and the control plane is local);
* the **sidecar**, Envoy with node id ``mesh/<mesh>/virtualNode/<vn>``.

Each sidecar carries its replica's proxy credential (issued by the control plane
over the API) on its ADS stream, keeps its admin interface on a 0600 unix socket
in the supervisor's private directory (mode 0700) and is probed through it.

A gateway workload (no command) has no app: each replica is an Envoy with node
id ``mesh/<mesh>/virtualGateway/<vg>`` binding a free port per gateway
listener, and its ``publish`` address forwards to the first listener, as the
ingress walkthroughs' LoadBalancer Service did. Nothing routes to a gateway
through EDS, so its replicas register no endpoints.

Once the app accepts connections and the sidecar reports ``/ready``, the
replica's ingress port is registered with the control plane as an endpoint of
its virtual node (so EDS sends other sidecars there), with the replica's
credential; the registration is a lease, renewed every third of its length, so
a supervisor killed outright stops receiving traffic when it runs out. On
shutdown it is withdrawn. A workload with ``publish`` gets a :class:`~publishing.Forwarder`
to its ready replicas. Workloads no VirtualNode selects run without a sidecar,
as pods outside the mesh did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import aiohttp

from meshplane.runtime import admin, processes, publishing, scraping, selecting, sidecars
from meshplane.runtime.controlplane import (
    ControlPlaneClient,
    ControlPlaneError,
    EndpointRegistration,
)
from meshplane.runtime.ports import LOOPBACK, PortAllocator
from meshplane.runtime.workloads import Workload

NodeSource = Callable[[], Awaitable[Sequence[selecting.VirtualNodeView]]]
"""Returns the VirtualNode objects known now."""

NO_PROXY = "localhost,127.0.0.1,::1"


@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """How the supervisor runs things; defaults suit ``meshplane up``."""

    xds: tuple[str, int] = (LOOPBACK, 9090)
    sidecars: bool = True
    """False runs every workload bare (no Envoy, nothing registered)."""
    envoy_log_level: str = "warning"
    grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL on shutdown."""
    backoff: processes.Backoff = dataclasses.field(default_factory=processes.Backoff)
    poll_interval: float = 0.5
    """How often sidecars and apps are probed (status, readiness, registration)."""
    python: str = sys.executable
    private_dir: Path | None = None
    """Where sidecars' admin sockets and bootstraps go (None: a fresh 0700 temp dir)."""
    prometheus_targets: Path | None = None
    """A Prometheus ``file_sd`` file kept listing every sidecar's stats port (scraping.py)."""


@dataclasses.dataclass
class Replica:
    """One running copy of a workload: its ports, processes and last observed state."""

    workload: Workload
    index: int
    app_port: int
    app: processes.ManagedProcess | None
    """None for a gateway replica: its Envoy is all there is."""
    binding: selecting.Binding | None = None
    ports: sidecars.SidecarPorts | None = None
    sidecar: processes.ManagedProcess | None = None
    app_up: bool = False
    health: admin.SidecarHealth = dataclasses.field(default_factory=admin.SidecarHealth)
    registered: bool = False
    credential: str | None = None
    """The replica's proxy credential: on its ADS stream and its registrations."""
    files: sidecars.SidecarFiles | None = None
    renew_at: float | None = None
    """Loop time at which its endpoint lease is renewed (None: no lease to renew)."""
    failed: str = ""
    """The last registration error, so a retry every probe logs it once."""

    @property
    def name(self) -> str:
        """``<workload>-<index>``."""
        return self.workload.replica_name(self.index)

    @property
    def ready(self) -> bool:
        """The app accepts connections and its sidecar (if any) is live."""
        return self.app_up and (self.sidecar is None or self.health.ready)

    @property
    def exited(self) -> bool:
        """Its app or its sidecar is not running (crashed, waiting for its restart)."""
        app_gone = self.app is not None and self.app.pid is None
        return app_gone or (self.sidecar is not None and self.sidecar.pid is None)

    @property
    def entry(self) -> tuple[str, int]:
        """Where traffic for this replica enters: its sidecar's ingress, else the app."""
        if self.ports is not None and self.ports.ingress:
            return (LOOPBACK, next(iter(self.ports.ingress.values())))
        return (LOOPBACK, self.app_port)

    def endpoints(self) -> list[EndpointRegistration]:
        """The replica's endpoints for its virtual node, one per listener."""
        if self.ports is None:
            return []
        return [
            EndpointRegistration(listener, LOOPBACK, bound)
            for listener, bound in sorted(self.ports.ingress.items())
        ]


REREGISTER_INTERVAL = 0.01
"""Seconds between registration retries after the control plane lost its store: short, since
from the moment a re-apply brings a virtual node back until its endpoints are registered again,
callers' Envoys have none for it and answer 503 (a few loopback calls per replica per retry)."""


class Supervisor:
    """Starts, watches and stops the replicas of a set of workloads."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        options: RuntimeOptions,
        sink: processes.LogSink,
        control_plane: ControlPlaneClient | None = None,
        nodes: NodeSource | None = None,
        ports: PortAllocator | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``control_plane`` and ``nodes`` are needed only when sidecars are on."""
        self.workloads = list(workloads)
        self.options = options
        self.sink = sink
        self.control_plane = control_plane
        self.nodes = nodes
        self.ports = ports or PortAllocator()
        self.environ = dict(os.environ if environ is None else environ)
        self.replicas: list[Replica] = []
        self._revision: int | None = None
        """The control plane's store revision at the last probe round."""
        self._reregistering = False
        """The store went back and some replica is not registered with the new one yet."""
        self.waiting: dict[str, str] = {}
        """Workload name → why it has not started yet."""
        self.forwarders: dict[str, publishing.Forwarder] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: list[asyncio.Task[None]] = []
        self._private: Path | None = options.private_dir
        self._own_private = False
        self._admin_sessions: dict[Path, aiohttp.ClientSession] = {}
        self._targets_failed = ""

    async def start(self) -> None:
        """Bind the published addresses, then launch every workload in the background."""
        if self._private is None:
            self._private = Path(tempfile.mkdtemp(prefix="meshplane-"))  # mode 0700
            self._own_private = True
        for workload in self.workloads:
            if workload.publish is not None:
                forwarder = publishing.Forwarder(
                    workload.publish.host,
                    workload.publish.port,
                    functools.partial(self._entries, workload.name),
                )
                await forwarder.start()
                self.forwarders[workload.name] = forwarder
        self._tasks += [asyncio.create_task(self._launch(w)) for w in self.workloads]
        self._tasks.append(asyncio.create_task(self._watch()))

    def _entries(self, workload: str) -> list[tuple[str, int]]:
        return [r.entry for r in self.replicas if r.workload.name == workload and r.ready]

    async def _launch(self, workload: Workload) -> None:
        """Find the workload's VirtualNode (waiting for it if need be), then start its replicas."""
        binding: selecting.Binding | None = None
        if workload.is_gateway and not (self.options.sidecars and self.nodes is not None):
            self.sink(workload.name, "a gateway workload runs only with sidecars: not started")
            return
        if self.options.sidecars and self.nodes is not None:
            while True:
                try:
                    binding = selecting.bind(workload, await self.nodes())
                    break
                except (selecting.SelectionError, ControlPlaneError) as reason:
                    if self.waiting.get(workload.name) != str(reason):
                        self.sink(workload.name, f"waiting: {reason}")
                    self.waiting[workload.name] = str(reason)
                await asyncio.sleep(max(self.options.poll_interval, 1.0))
            self.waiting.pop(workload.name, None)
            if binding is None:
                self.sink(workload.name, "no VirtualNode selects it: running without a sidecar")
        for index in range(workload.replicas):
            credential = None
            if binding is not None:
                credential = await self._credential(binding, workload.replica_name(index))
            self._start_replica(workload, index, binding, credential)

    async def _credential(self, binding: selecting.Binding, replica: str) -> str | None:
        """The replica's proxy credential, retried until the control plane answers."""
        if self.control_plane is None:
            return None
        while True:
            try:
                return await self.control_plane.proxy_credential(binding.node_id, replica)
            except ControlPlaneError as error:
                self.sink(replica, f"waiting for a proxy credential: {error}")
            await asyncio.sleep(max(self.options.poll_interval, 1.0))

    def _start_replica(
        self,
        workload: Workload,
        index: int,
        binding: selecting.Binding | None,
        credential: str | None = None,
    ) -> None:
        name = workload.replica_name(index)
        app_port = 0 if workload.is_gateway else self.ports.allocate()
        env = {**self.environ, **workload.env, "PORT": str(app_port), "HOSTNAME": name}
        ports = None
        if binding is not None:
            ports = sidecars.SidecarPorts(
                admin=0,  # a unix socket in the private directory
                egress=self.ports.allocate(),
                ingress={listener: self.ports.allocate() for listener in binding.listener_ports},
                stats=self.ports.allocate(),
            )
            proxy = f"http://{LOOPBACK}:{ports.egress}"
            env.update(HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY=NO_PROXY, no_proxy=NO_PROXY)
        app = None
        if not workload.is_gateway:
            app = processes.ManagedProcess(
                processes.ProcessSpec(
                    name, workload.argv(self.options.python), env, workload.workdir
                ),
                self.sink,
                self.options.backoff,
            )
        replica = Replica(workload, index, app_port, app, binding, ports, credential=credential)
        if binding is not None and ports is not None:
            assert self._private is not None  # start() made it
            replica.files = sidecars.SidecarFiles.in_directory(self._private, len(self.replicas))
            # v1alpha1 workloads have one port: every listener of the node reaches it.
            app_ports = {} if app is None else dict.fromkeys(binding.listener_ports, app_port)
            spec = sidecars.process_spec(
                f"{name} envoy",
                name,
                binding,
                ports,
                app_ports,
                self.options.xds,
                self.environ,
                self.options.envoy_log_level,
                credential=credential,
                private=replica.files,
            )
            replica.sidecar = processes.ManagedProcess(spec, self.sink, self.options.backoff)
            self._runs.append(asyncio.create_task(replica.sidecar.run()))
        if app is not None:
            self._runs.append(asyncio.create_task(app.run()))
        self.replicas.append(replica)

    async def _watch(self) -> None:
        """Probe every replica on a fixed interval; register endpoints once ready."""
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            while True:
                await self._check_store()
                await asyncio.gather(*(self._probe(r, session) for r in list(self.replicas)))
                if self.options.prometheus_targets is not None:
                    self._write_targets(self.options.prometheus_targets)
                if self._reregistering and all(r.registered for r in self.replicas if r.ready):
                    self._reregistering = False
                # After a store loss the endpoints are retried often: the moment a re-apply
                # brings their virtual nodes back, proxies need them or they answer 503.
                fast = self._reregistering and self.options.poll_interval > REREGISTER_INTERVAL
                await asyncio.sleep(REREGISTER_INTERVAL if fast else self.options.poll_interval)

    def _write_targets(self, path: Path) -> None:
        """Keep the Prometheus targets file current; a failure is logged once per new error."""
        try:
            scraping.write(path, scraping.targets(self.replicas))
        except OSError as error:
            message = f"cannot write the Prometheus targets file {path}: {error.strerror or error}"
            if message != self._targets_failed:
                self.sink("runtime", message)
            self._targets_failed = message
        else:
            self._targets_failed = ""

    async def _check_store(self) -> None:
        """Register every replica again if the control plane's revision went back.

        A store's revision only grows, so a lower one means the control plane now
        serves another store (restored, or started empty after a loss): the
        endpoints registered with the old one are not in it.
        """
        if self.control_plane is None:
            return
        revision = await self.control_plane.revision()
        if revision is None:
            return
        if self._revision is not None and revision < self._revision:
            self.sink(
                "runtime",
                f"the control plane's store went back from revision {self._revision} to "
                f"{revision}: registering every replica again",
            )
            for replica in self.replicas:
                replica.registered = False
            self._reregistering = True
        self._revision = revision

    async def _probe(self, replica: Replica, session: aiohttp.ClientSession) -> None:
        app = replica.app
        replica.app_up = app is None or (
            app.pid is not None and await _accepts(LOOPBACK, replica.app_port)
        )
        if replica.sidecar is not None and replica.files is not None:
            replica.health = await admin.probe(self._admin_session(replica.files.admin, session))
        renew = (
            replica.renew_at is not None and asyncio.get_running_loop().time() >= replica.renew_at
        )
        if replica.ready and (not replica.registered or renew):
            await self._register(replica)
        elif replica.registered and replica.exited:
            # A crashed app (or sidecar) must not receive traffic during its restart backoff:
            # withdraw it now; it registers again once it is ready. (Only an exit counts: a
            # probe that times out on a busy machine is no reason to drop a live replica.)
            await self._withdraw(replica)
            if not replica.registered:
                self.sink(replica.name, "exited: endpoints withdrawn until it is ready again")

    def _admin_session(self, path: Path, tcp: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """The session that reaches the admin socket at ``path`` (one per sidecar, kept)."""
        session = self._admin_sessions.get(path)
        if session is None:
            session = admin.socket_session(path, tcp.timeout)
            self._admin_sessions[path] = session
        return session

    async def _register(self, replica: Replica) -> None:
        if replica.binding is None or self.control_plane is None or replica.binding.is_gateway:
            return
        renewing = replica.registered
        try:
            lease = await self.control_plane.register_endpoints(
                replica.binding.mesh,
                replica.binding.virtual_node,
                replica.name,
                replica.endpoints(),
                replica.credential,
            )
        except ControlPlaneError as error:
            if str(error) != replica.failed:
                self.sink(replica.name, f"endpoint registration failed (will retry): {error}")
            replica.failed = str(error)
            return
        # Renew at a third of the lease: two renewals may be lost before it runs out.
        now = asyncio.get_running_loop().time()
        replica.renew_at = now + lease / 3 if lease > 0 else None
        replica.registered = True
        if renewing:
            return
        replica.failed = ""
        where = ", ".join(f"{e.address}:{e.port}" for e in replica.endpoints())
        self.sink(replica.name, f"registered with {replica.binding.node_id} at {where}")

    async def stop(self) -> None:
        """Withdraw endpoints, close published ports, stop every process; nothing is left behind."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(self._withdraw(r) for r in self.replicas if r.registered))
        for forwarder in self.forwarders.values():
            await forwarder.stop()
        managed = [r.app for r in self.replicas if r.app is not None] + [
            r.sidecar for r in self.replicas if r.sidecar is not None
        ]
        await asyncio.gather(*(process.stop(self.options.grace) for process in managed))
        await asyncio.gather(*self._runs)
        for session in self._admin_sessions.values():
            await session.close()
        if self._own_private and self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)

    async def _withdraw(self, replica: Replica) -> None:
        if replica.binding is None or self.control_plane is None:
            return
        with contextlib.suppress(ControlPlaneError):
            await self.control_plane.register_endpoints(
                replica.binding.mesh,
                replica.binding.virtual_node,
                replica.name,
                [],
                replica.credential,
            )
            replica.registered = False
            replica.renew_at = None


async def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port now."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
