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

A gateway workload (no command) has no app: each replica is an Envoy with node
id ``mesh/<mesh>/virtualGateway/<vg>`` binding a free port per gateway
listener, and its ``publish`` address forwards to the first listener, as the
ingress walkthroughs' LoadBalancer Service did. Nothing routes to a gateway
through EDS, so its replicas register no endpoints.

Once the app accepts connections and the sidecar reports ``/ready``, the
replica's ingress port is registered with the control plane as an endpoint of
its virtual node (so EDS sends other sidecars there); on shutdown it is
withdrawn. A workload with ``publish`` gets a :class:`~publishing.Forwarder`
to its ready replicas. Workloads no VirtualNode selects run without a sidecar,
as pods outside the mesh did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp

from meshplane.runtime import admin, processes, publishing, selecting, sidecars
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
        self.waiting: dict[str, str] = {}
        """Workload name → why it has not started yet."""
        self.forwarders: dict[str, publishing.Forwarder] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Bind the published addresses, then launch every workload in the background."""
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
            self._start_replica(workload, index, binding)

    def _start_replica(
        self, workload: Workload, index: int, binding: selecting.Binding | None
    ) -> None:
        name = workload.replica_name(index)
        app_port = 0 if workload.is_gateway else self.ports.allocate()
        env = {**self.environ, **workload.env, "PORT": str(app_port), "HOSTNAME": name}
        ports = None
        if binding is not None:
            ports = sidecars.SidecarPorts(
                admin=self.ports.allocate(),
                egress=self.ports.allocate(),
                ingress={listener: self.ports.allocate() for listener in binding.listener_ports},
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
        replica = Replica(workload, index, app_port, app, binding, ports)
        if binding is not None and ports is not None:
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
                await asyncio.gather(*(self._probe(r, session) for r in list(self.replicas)))
                await asyncio.sleep(self.options.poll_interval)

    async def _probe(self, replica: Replica, session: aiohttp.ClientSession) -> None:
        app = replica.app
        replica.app_up = app is None or (
            app.pid is not None and await _accepts(LOOPBACK, replica.app_port)
        )
        if replica.sidecar is not None and replica.ports is not None:
            replica.health = await admin.probe(session, LOOPBACK, replica.ports.admin)
        if replica.ready and not replica.registered:
            await self._register(replica)
        elif replica.registered and replica.exited:
            # A crashed app (or sidecar) must not receive traffic during its restart backoff:
            # withdraw it now; it registers again once it is ready. (Only an exit counts: a
            # probe that times out on a busy machine is no reason to drop a live replica.)
            await self._withdraw(replica)
            if not replica.registered:
                self.sink(replica.name, "exited: endpoints withdrawn until it is ready again")

    async def _register(self, replica: Replica) -> None:
        if replica.binding is None or self.control_plane is None or replica.binding.is_gateway:
            return
        try:
            await self.control_plane.register_endpoints(
                replica.binding.mesh,
                replica.binding.virtual_node,
                replica.name,
                replica.endpoints(),
            )
        except ControlPlaneError as error:
            self.sink(replica.name, f"endpoint registration failed (will retry): {error}")
            return
        replica.registered = True
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

    async def _withdraw(self, replica: Replica) -> None:
        if replica.binding is None or self.control_plane is None:
            return
        with contextlib.suppress(ControlPlaneError):
            await self.control_plane.register_endpoints(
                replica.binding.mesh, replica.binding.virtual_node, replica.name, []
            )
            replica.registered = False


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
