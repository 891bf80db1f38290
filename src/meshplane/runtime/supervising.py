"""The local runtime: every workload replica with its sidecar, registered, published, watched.

For each workload the supervisor finds its VirtualNode (the podSelector rule
of :mod:`meshplane.runtime.selecting`), then per replica picks free ports and
starts two managed processes:

* the **app**, with ``PORT`` (its real port), ``HOSTNAME`` (the replica name)
  and ``HTTP_PROXY=http://127.0.0.1:<egress>``: outbound HTTP goes to the
  sidecar's egress listener, as App Mesh's iptables rules sent it to 15001.
  ``NO_PROXY=localhost,127.0.0.1,::1`` keeps loopback calls direct, as those
  rules only redirected non-local destinations (and the control plane is local);
  and ``MESHPLANE_BACKEND_<NAME>_ADDR=127.0.0.1:<port>`` per TCP backend, a port
  of the sidecar's own for that backend (chosen when the replica starts);
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
credential and the workload's labels as its Cloud Map instance attributes (a Cloud
Map node's callers get the replicas of its service whose labels match its
attributes, :mod:`meshplane.translate.cloudmap`); the registration is a lease,
renewed every third of its length, so
a supervisor killed outright stops receiving traffic when it runs out. On
shutdown it is withdrawn. A workload with ``publish`` gets a :class:`~publishing.Forwarder`
to its ready replicas. Workloads no VirtualNode selects run without a sidecar,
as pods outside the mesh did.

With ``isolation="netns"`` (``meshplane up --isolation netns``) each meshed replica runs in
a network namespace of its own behind proxy-init's iptables rules instead
(:mod:`meshplane.runtime.isolation`): no ``HTTP_PROXY``, the app on its declared port, its
Envoy as uid 1337 in App Mesh's intercepted layout, its endpoints registered at its pod
address. A gateway replica gets a namespace too but no proxy-init rules (App Mesh injected
none into gateway pods): its Envoy binds the listener ports at its pod address, where the
published address forwards over the bridge, and reaches the replicas through their registered
endpoints. Workloads no VirtualNode selects still run on the host. The hosts files follow the
store: at each new store revision the virtual services' names are read again, so one applied
while ``up`` runs is reachable by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import aiohttp

from meshplane.runtime import (
    admin,
    isolation,
    logfiles,
    processes,
    publishing,
    scraping,
    selecting,
    sidecars,
)
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
    delta_xds: bool = False
    """Sidecars' bootstraps ask for incremental ADS (``DELTA_GRPC``) instead of SotW."""
    grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL on shutdown."""
    backoff: processes.Backoff = dataclasses.field(default_factory=processes.Backoff)
    poll_interval: float = 0.5
    """How often sidecars and apps are probed (status, readiness, registration)."""
    python: str = sys.executable
    private_dir: Path | None = None
    """Where sidecars' admin sockets and bootstraps go (None: a fresh 0700 temp dir)."""
    isolation: str = isolation.PROCESS
    """``process`` (shared host network, ``HTTP_PROXY``) or ``netns`` (a namespace per replica)."""
    service_names: tuple[str, ...] = ()
    """Virtual-service names replicas resolve to virtual IPs in ``netns`` mode."""
    prometheus_targets: Path | None = None
    """A Prometheus ``file_sd`` file kept listing every sidecar's stats port (scraping.py)."""
    data_dir: Path | None = None
    """Also keep each process's output under ``<data_dir>/logs`` (logfiles.py; None: not)."""


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
    runs: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    """The tasks running its app and sidecar (done once both have stopped)."""
    stopping: bool = False
    """Its workload was removed or changed: no more probes or registrations."""
    pod: isolation.Pod | None = None
    """Its network namespace in ``netns`` mode (None: the host's network)."""
    logs: list[logfiles.LogFile] = dataclasses.field(default_factory=list)
    """Its containers' log files (closed once its processes have stopped)."""

    @property
    def name(self) -> str:
        """``<workload>-<index>``."""
        return self.workload.replica_name(self.index)

    @property
    def proxy_key(self) -> str | None:
        """Its sidecar's key at the control plane (``node id#replica``); None without one."""
        return None if self.binding is None else f"{self.binding.node_id}#{self.name}"

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
        host = LOOPBACK if self.pod is None else self.pod.address
        if self.ports is not None and self.ports.ingress:
            return (host, next(iter(self.ports.ingress.values())))
        return (host, self.app_port)

    def endpoints(self) -> list[EndpointRegistration]:
        """The replica's endpoints for its virtual node, one per listener.

        Each carries the workload's labels (and, as the appmesh-controller added for a pod,
        ``k8s.io/namespace`` and ``k8s.io/pod``) as its Cloud Map instance attributes.
        """
        if self.ports is None:
            return []
        host = LOOPBACK if self.pod is None else self.pod.address
        attributes = {
            **self.workload.labels,
            "k8s.io/namespace": self.workload.namespace,
            "k8s.io/pod": self.name,
        }
        return [
            EndpointRegistration(listener, host, bound, tuple(sorted(attributes.items())))
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
        self._launches: dict[str, asyncio.Task[None]] = {}
        """Workload name → the task finding its node and starting its replicas."""
        self._runs: list[asyncio.Task[None]] = []
        self._files = itertools.count()
        """Numbers of sidecars' private files: never reused, so a restarted replica's differ."""
        self._private: Path | None = options.private_dir
        self._own_private = False
        self._admin_sessions: dict[Path, aiohttp.ClientSession] = {}
        self.network: isolation.Network | None = None
        """The replicas' namespaces in ``netns`` mode."""
        self._targets_failed = ""
        self.proxy_states: dict[str, tuple[str, int | None]] = {}
        """Proxy key → (state, revision) as the control plane judged it at the last round."""
        self._named: int | None = None
        """The store revision whose virtual services the hosts files name (netns mode)."""
        self._naming_failed = ""

    async def start(self) -> None:
        """Bind the published addresses, then launch every workload in the background."""
        if self._private is None:
            self._private = Path(tempfile.mkdtemp(prefix="meshplane-"))  # mode 0700
            self._own_private = True
        if self.options.isolation == isolation.NETNS and self.options.sidecars:
            self.network = isolation.Network()
            await self.network.create()
            # Sidecars in namespaces reach the loopback xDS server through the bridge.
            await self.network.relay(self.options.xds[1], self.options.xds)
            self.network.name_services(self.options.service_names)
        for workload in self.workloads:
            await self._publish(workload)
        for workload in self.workloads:
            self._launches[workload.name] = asyncio.create_task(self._launch(workload))
        self._tasks.append(asyncio.create_task(self._watch()))

    async def _publish(self, workload: Workload) -> None:
        if workload.publish is not None:
            forwarder = publishing.Forwarder(
                workload.publish.host,
                workload.publish.port,
                functools.partial(self._entries, workload.name),
                self._connect,
            )
            await forwarder.start()
            self.forwarders[workload.name] = forwarder

    async def update(self, workloads: Sequence[Workload]) -> list[str]:
        """Run ``workloads`` from now on, touching only the workloads that differ.

        A removed workload is stopped (endpoints withdrawn first), a changed one
        stopped and started again, an added one started; every other replica keeps
        its processes. Returns one line per workload touched, for the log.
        """
        current = {w.name: w for w in self.workloads}
        wanted = {w.name: w for w in workloads}
        lines = []
        for name, workload in current.items():
            if wanted.get(name) != workload:
                await self._stop_workload(name)
                if name not in wanted:
                    lines.append(f"{name}: removed from the workloads file: stopped")
        self.workloads = list(workloads)
        for workload in workloads:
            before = current.get(workload.name)
            if before == workload:
                continue
            await self._publish(workload)
            self._launches[workload.name] = asyncio.create_task(self._launch(workload))
            changed = "changed: restarted" if before is not None else "added: started"
            lines.append(f"{workload.name}: {changed}")
        return lines

    async def _stop_workload(self, name: str) -> None:
        """Stop one workload's replicas and published port; the others are not touched."""
        launch = self._launches.pop(name, None)
        if launch is not None:
            launch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await launch
        self.waiting.pop(name, None)
        forwarder = self.forwarders.pop(name, None)
        if forwarder is not None:
            await forwarder.stop()
        leaving = [r for r in self.replicas if r.workload.name == name]
        for replica in leaving:
            replica.stopping = True
        await asyncio.gather(*(self._withdraw(r) for r in leaving if r.registered))
        managed = [p for r in leaving for p in (r.app, r.sidecar) if p is not None]
        await asyncio.gather(*(process.stop(self.options.grace) for process in managed))
        await asyncio.gather(*(task for r in leaving for task in r.runs))
        for log in (log for r in leaving for log in r.logs):
            log.close()
        self.replicas = [r for r in self.replicas if r.workload.name != name]
        for replica in leaving:
            if replica.files is not None:
                await self._forget_admin(replica.files.admin)

    def _entries(self, workload: str) -> list[tuple[str, int]]:
        return [r.entry for r in self.replicas if r.workload.name == workload and r.ready]

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """To a replica's entry: over the bridge for a pod address, else on the host."""
        if self.network is not None and any(p.address == host for p in self.network.pods):
            return await self.network.open_connection(host, port)
        return await asyncio.open_connection(host, port)

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
            pod = None
            if self.network is not None and binding is not None:
                try:
                    pod = await self._place(workload, index, binding)
                except isolation.IsolationError as error:
                    self.sink(workload.replica_name(index), f"not started: {error}")
                    continue
            self._start_replica(workload, index, binding, credential, pod)

    async def _place(
        self, workload: Workload, index: int, binding: selecting.Binding
    ) -> isolation.Pod:
        """A namespace for the replica, with proxy-init's rules unless it is a gateway.

        Its node's DNS hostname resolves to it in every hosts file.
        """
        assert self.network is not None
        pod = await self.network.add(workload.replica_name(index))
        if not binding.is_gateway:  # App Mesh's injector put no proxyinit in gateway pods
            await self.network.proxy_init(pod, binding.listener_ports, self.options.python)
        if binding.dns_hostname:
            self.network.resolve(binding.dns_hostname, pod.address)
        return pod

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
        pod: isolation.Pod | None = None,
    ) -> None:
        name = workload.replica_name(index)
        app_port = 0 if workload.is_gateway else self.ports.allocate()
        if pod is not None:
            app_port = workload.port  # the app has its namespace's ports to itself
        env = {**self.environ, **workload.env, "PORT": str(app_port), "HOSTNAME": name}
        ports = None
        if binding is not None and pod is not None:
            # iptables sends each listener port to 15000; callers dial <pod address>:<port>.
            # (A gateway has no rules: its Envoy binds each listener port itself.)
            listeners = binding.listener_ports
            ports = sidecars.SidecarPorts(admin=0, egress=15001, ingress={p: p for p in listeners})
        elif binding is not None:
            ports = sidecars.SidecarPorts(
                admin=0,  # a unix socket in the private directory
                egress=self.ports.allocate(),
                ingress={listener: self.ports.allocate() for listener in binding.listener_ports},
                tcp={service: self.ports.allocate() for service in binding.tcp_backends},
                stats=self.ports.allocate(),
            )
            proxy = f"http://{LOOPBACK}:{ports.egress}"
            env.update(HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY=NO_PROXY, no_proxy=NO_PROXY)
            env.update(sidecars.backend_environment(ports))
        logs: list[logfiles.LogFile] = []
        app = None
        if not workload.is_gateway:
            argv = workload.argv(self.options.python)
            sink, log = self._sink(workload, index, logfiles.APP, logs)
            app = processes.ManagedProcess(
                processes.ProcessSpec(
                    name, argv if pod is None else pod.wrap(argv), env, workload.workdir
                ),
                sink,
                self.options.backoff,
                on_restart=log.restarted if log is not None else None,
            )
        replica = Replica(
            workload, index, app_port, app, binding, ports, credential=credential, pod=pod
        )
        replica.logs = logs
        if binding is not None and ports is not None:
            assert self._private is not None  # start() made it
            private = self._private
            if pod is not None:  # Envoy runs as uid 1337 there: its own 0700 directory
                private = isolation.private_dir_for_envoy(self._private)
            replica.files = sidecars.SidecarFiles.in_directory(private, next(self._files))
            # v1alpha1 workloads have one port: every listener of the node reaches it.
            app_ports = {} if app is None else dict.fromkeys(binding.listener_ports, app_port)
            spec = sidecars.process_spec(
                f"{name} envoy",
                name,
                binding,
                ports,
                app_ports,
                self.options.xds if pod is None else (isolation.GATEWAY, self.options.xds[1]),
                self.environ,
                self.options.envoy_log_level,
                credential=credential,
                private=replica.files,
                intercepted=pod is not None and not binding.is_gateway,
                bind=pod.address if pod is not None and binding.is_gateway else None,
                delta=self.options.delta_xds,
            )
            if pod is not None:
                os.chown(replica.files.bootstrap, isolation.ENVOY_UID, isolation.ENVOY_UID)
                spec = dataclasses.replace(
                    spec,
                    argv=pod.wrap(spec.argv, uid=isolation.ENVOY_UID),
                    output_owner=isolation.ENVOY_UID,  # so its access logs may open /dev/stdout
                )
            sink, log = self._sink(workload, index, logfiles.ENVOY, logs)
            replica.sidecar = processes.ManagedProcess(
                spec,
                sink,
                self.options.backoff,
                on_restart=log.restarted if log is not None else None,
            )
            replica.runs.append(asyncio.create_task(replica.sidecar.run()))
        if app is not None:
            replica.runs.append(asyncio.create_task(app.run()))
        self._runs += replica.runs
        self.replicas.append(replica)

    def _sink(
        self, workload: Workload, index: int, container: str, logs: list[logfiles.LogFile]
    ) -> tuple[processes.LogSink, logfiles.LogFile | None]:
        """The terminal's sink, and the container's log file when there is a data dir."""
        if self.options.data_dir is None:
            return self.sink, None
        try:
            log = logfiles.LogFile(
                logfiles.path(self.options.data_dir, workload.name, index, container)
            )
        except OSError as error:
            name = workload.replica_name(index)
            self.sink(name, f"cannot keep {container} logs: {error.strerror or error}")
            return self.sink, None
        logs.append(log)
        return logfiles.tee(self.sink, log), log

    async def _watch(self) -> None:
        """Probe every replica on a fixed interval; register endpoints once ready."""
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            while True:
                await self._check_store()
                await self._read_proxy_states()
                await self._name_services()
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

    async def _read_proxy_states(self) -> None:
        """The control plane's sync verdict per sidecar, for the status table."""
        if self.control_plane is None or not self.options.sidecars:
            return
        states = await self.control_plane.proxy_states()
        if states is not None:
            self.proxy_states = states

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

    async def _name_services(self) -> None:
        """In netns mode, once per new store revision: name the virtual services held now.

        A virtual service applied while ``up`` runs gets its virtual IP in every hosts file,
        a deleted one loses it; a failed read is logged once and retried next round.
        """
        if self.network is None or self.control_plane is None or self._revision is None:
            return
        if self._revision == self._named:
            return
        revision = self._revision
        try:
            names = await self.control_plane.virtual_service_names()
        except ControlPlaneError as error:
            message = f"cannot read the virtual services' names (will retry): {error}"
            if message != self._naming_failed:
                self.sink("runtime", message)
            self._naming_failed = message
            return
        self._naming_failed = ""
        self._named = revision
        if self.network.name_services(names):
            self.sink("runtime", f"hosts files: {len(names)} virtual-service names")

    async def _probe(self, replica: Replica, session: aiohttp.ClientSession) -> None:
        if replica.stopping:
            return
        app = replica.app
        if app is None or app.pid is None:
            replica.app_up = app is None
        elif replica.pod is not None and self.network is not None:
            replica.app_up = await self.network.accepts(replica.pod, replica.app_port)
        else:
            replica.app_up = await _accepts(LOOPBACK, replica.app_port)
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
        if replica.stopping:  # its workload went away while this call was on the wire
            await self._withdraw(replica)
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

    async def _forget_admin(self, path: Path) -> None:
        session = self._admin_sessions.pop(path, None)
        if session is not None:
            await session.close()

    async def stop(self) -> None:
        """Withdraw endpoints, close published ports, stop every process; nothing is left behind."""
        try:
            await self._stop()
        finally:
            if self.network is not None:  # namespaces, rules and hosts files go in any case
                await self.network.delete()

    async def _stop(self) -> None:
        tasks = [*self._tasks, *self._launches.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
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
        for log in (log for r in self.replicas for log in r.logs):
            log.close()
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
