"""``meshplane up -f PATH``: a control plane, the manifests in PATH, and their workloads, running.

One command for the whole local mesh: start ``meshplane serve`` as a child
process (unless ``--server URL`` names one already running), wait for its
``/healthz``, apply the manifests in PATH through the control plane's
manifest front door, then supervise the workloads of ``PATH/workloads.yaml``
with their Envoy sidecars until Ctrl-C or SIGTERM — and leave no process behind.
While it runs, ``PATH/workloads.yaml`` is followed: a Workload added, changed or
removed there is started, restarted or stopped, and only that one
(:mod:`meshplane.runtime.watching`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich import markup
from rich.console import Console
from rich.live import Live
from rich.table import Table

from meshplane import settings
from meshplane.cli import signing
from meshplane.client import Signer
from meshplane.runtime import (
    controlplane,
    isolation,
    processes,
    selecting,
    status,
    supervising,
    virtualnodes,
    watching,
    workloads,
)
from meshplane.runtime.ports import LOOPBACK, PortAllocator, check_bindable
from meshplane.store import locking, refusals

_STARTUP_SECONDS = 30.0
_SERVER_SECONDS = 3.0
"""How long ``--server URL`` may take to answer: a running server answers at once."""
DEFAULT_XDS_PORT = 9090
"""Our own control plane's xDS port unless ``--xds-port`` says (``--server``: it tells us)."""
SIDECAR_ADS_VARIABLE = "MESHPLANE_SIDECAR_ADS"
"""``delta`` makes the sidecars ``up`` starts use incremental ADS (default ``sotw``)."""


def _serve_spec(
    api_port: int, xds_port: int, data_dir: Path, lock: locking.DataDirLock
) -> processes.ProcessSpec:
    """``meshplane serve`` as a child that inherits ``up``'s lock on the data dir."""
    argv = [sys.executable, "-m", "meshplane.cli.main", "serve"]
    argv += ["--api-port", str(api_port), "--xds-port", str(xds_port)]
    argv += ["--data-dir", str(data_dir), "--host", LOOPBACK]
    env = {**os.environ, locking.INHERITED_ENV: str(lock.fd)}
    return processes.ProcessSpec("control-plane", argv, env, pass_fds=(lock.fd,))


def _signer(own_plane: bool, data_dir: Path) -> Signer | None:
    """The credentials ``up`` signs with.

    Its own control plane's administrator, or for ``--server URL`` the user's (the AWS
    chain, then ``<data dir>/credentials``).
    """
    config = settings.load()
    credentials = signing.credentials_file(data_dir)
    if own_plane:  # no file: that control plane runs with --auth none
        return Signer.from_file(credentials, config.region) if credentials.exists() else None
    return Signer.from_environment(config.region, fallback=credentials)


async def _node_source(
    client: controlplane.ControlPlaneClient, path: Path, namespace: str | None, console: Console
) -> supervising.NodeSource:
    """Apply PATH's manifests; VirtualNodes then come from the control plane (or the files)."""
    applied = await client.apply(path, namespace)
    if applied is not None:
        for line in applied:
            console.print(f"apply | {line}", markup=False, highlight=False, soft_wrap=True)

        async def from_server() -> list[selecting.VirtualNodeView]:
            return await client.virtual_nodes() or []

        return from_server
    console.print(
        "[yellow]this control plane serves no manifest front door yet: manifests not "
        "applied; VirtualNodes are read from the files[/]",
        soft_wrap=True,
    )

    async def from_files() -> list[selecting.VirtualNodeView]:
        return virtualnodes.read_directory(path, namespace or "default")

    return from_files


async def _supervise(
    supervisor: supervising.Supervisor, path: Path, publish: Sequence[str], console: Console
) -> None:
    """Follow the workloads file and show the status table (on a terminal) until cancelled."""
    follow = watching.follow(
        path / workloads.FILE_NAME,
        lambda: workloads.republish(workloads.load(path), publish),
        supervisor.update,
        supervisor.sink,
    )
    if not console.is_terminal:  # logs only: a redrawn table would garble a log file
        await follow
    watcher = asyncio.create_task(follow)
    try:

        def current() -> Table:
            return status.table(supervisor, console.width)  # the terminal's width, as it is now

        with Live(current(), console=console, refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(0.5)
                live.update(current())
    finally:
        watcher.cancel()


def _stop_on_signals() -> asyncio.Event:
    """An event Ctrl-C or SIGTERM sets (in place of their default of ending the process)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _ports_free(ports: Sequence[int], console: Console) -> bool:
    """Whether our own control plane can listen on ``ports``; if not, one error line."""
    try:
        for port in ports:
            check_bindable(LOOPBACK, port)
    except OSError as error:
        console.print(f"[red]error:[/] {error.strerror}", soft_wrap=True)
        return False
    return True


async def _answers(url: str) -> None:
    """Return once ``url`` answers ``/healthz``; ControlPlaneError within seconds if not."""
    probe = controlplane.ControlPlaneClient(url, timeout=_SERVER_SECONDS)
    await probe.wait_healthy(time.monotonic() + _SERVER_SECONDS)


async def _learn_xds_port(client: controlplane.ControlPlaneClient, console: Console) -> int:
    """The xDS port the ``--server`` control plane reports (an older one: the default)."""
    port = await client.xds_port()
    if port is not None:
        console.print(f"xds | sidecars connect to port {port}, as {client.base_url} reports")
        return port
    console.print(
        f"[yellow]{client.base_url} does not report its xDS port: assuming "
        f"{DEFAULT_XDS_PORT} (pass --xds-port)[/]",
        soft_wrap=True,
    )
    return DEFAULT_XDS_PORT


async def _options(
    client: controlplane.ControlPlaneClient,
    xds_port: int,
    mode: str,
    prometheus_targets: Path | None = None,
    data_dir: Path | None = None,
) -> supervising.RuntimeOptions:
    """How the supervisor runs: netns mode also needs the virtual services' names.

    Each process's output is kept under ``<data_dir>/logs`` for ``meshplane logs``.
    """
    names = await client.virtual_service_names() if mode == isolation.NETNS else []
    return supervising.RuntimeOptions(
        xds=(LOOPBACK, xds_port),
        isolation=mode,
        service_names=tuple(names),
        prometheus_targets=prometheus_targets,
        # Opt-in, read here so no flag threads through every caller: see the README.
        delta_xds=os.environ.get(SIDECAR_ADS_VARIABLE, "sotw") == "delta",
        data_dir=data_dir,
    )


async def _run(
    path: Path,
    found: list[workloads.Workload],
    namespace: str | None,
    server: str | None,
    api_port: int,
    xds_port: int | None,
    data_dir: Path,
    console: Console,
    lock: locking.DataDirLock | None,
    publish: Sequence[str] = (),
    mode: str = isolation.PROCESS,
    prometheus_targets: Path | None = None,
) -> int:
    """The body of ``up``; returns the exit code. Ctrl-C/SIGTERM at any point stops everything.

    ``lock`` is the data dir's, held when ``up`` runs its own control plane (no ``server``).
    ``xds_port`` None: 9090 for our own control plane, what ``server`` reports for one running.
    """
    ports = PortAllocator()
    # Port 0 means any free port; xds_port None, the default.
    api_port = api_port or ports.allocate()
    own_xds = (DEFAULT_XDS_PORT if xds_port is None else xds_port) or ports.allocate()
    # Refuse a taken port rather than apply to whatever listens there.
    if server is None and not _ports_free((api_port, own_xds), console):
        return 1
    sink = status.console_sink(console)
    stop = _stop_on_signals()

    plane: processes.ManagedProcess | None = None
    plane_task: asyncio.Task[None] | None = None
    if server is None:  # no --server: run our own control plane on the data dir `up` locked
        assert lock is not None
        plane = processes.ManagedProcess(
            _serve_spec(api_port, own_xds, data_dir, lock), sink, processes.Backoff(1.0, 10.0)
        )
        plane_task = asyncio.create_task(plane.run())
        server = f"http://{LOOPBACK}:{api_port}"
    client = controlplane.ControlPlaneClient(server)
    supervisor: supervising.Supervisor | None = None

    async def session() -> None:
        nonlocal supervisor
        if plane is None:  # a running control plane answers now, or `up` says so and exits
            await _answers(client.base_url)
        await client.wait_healthy(
            time.monotonic() + _STARTUP_SECONDS,
            still_starting=lambda: plane is None or plane.restarts == 0,
        )
        # The started control plane writes its administrator's credentials at first start;
        # they exist once it is healthy. Everything this command runs signs with them.
        client.sign_with(_signer(plane is not None, data_dir))
        source = await _node_source(client, path, namespace, console)
        told = plane is None and xds_port is None  # --server says where its xDS listens
        xds = await _learn_xds_port(client, console) if told else own_xds
        options = await _options(client, xds, mode, prometheus_targets, data_dir)
        supervisor = supervising.Supervisor(found, options, sink, client, source, ports)
        await supervisor.start()
        await _supervise(supervisor, path, publish, console)

    work = asyncio.create_task(session())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            work.result()  # only errors end the session on its own
        return 0
    except (controlplane.ControlPlaneError, isolation.IsolationError, OSError) as error:
        # An OSError's strerror is the sentence; its "[Errno 98]" prefix is noise to a user.
        message = error.strerror if isinstance(error, OSError) and error.strerror else error
        console.print(f"[red]error:[/] {message}", soft_wrap=True)
        return 1
    finally:
        for task in (work, stopped):
            task.cancel()
        await asyncio.gather(work, stopped, return_exceptions=True)  # already reported
        if supervisor is not None or plane is not None:
            console.print("stopping: workloads, sidecars, control plane…")
        if supervisor is not None:
            await supervisor.stop()
        await client.close()
        if plane is not None and plane_task is not None:
            await plane.stop(10.0)
            await plane_task


def run(
    file: Path,
    namespace: str | None,
    server: str | None,
    api_port: int,
    xds_port: int | None,
    data_dir: Path,
    publish: Sequence[str] = (),
    mode: str = isolation.PROCESS,
    prometheus_targets: Path | None = None,
) -> int:
    """Bring the mesh in ``file`` up and supervise it; the process exit code.

    ``publish`` holds ``--publish WORKLOAD=ADDR`` flags: they move a workload's published
    address without editing the example's files.
    """
    console = Console()
    if mode not in isolation.MODES:
        console.print(f"[red]error:[/] --isolation must be process or netns, got {mode!r}")
        return 2
    if mode == isolation.NETNS and (problem := isolation.unavailable()):
        console.print(f"[red]error:[/] {problem}", soft_wrap=True)
        return 2
    if not file.is_dir():
        console.print(f"[red]error:[/] {file}: not a directory of manifests")
        return 2
    try:
        found = workloads.republish(workloads.load(file), publish)
    except workloads.WorkloadError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    lock = None
    if server is None:
        # `up` holds the data dir's lock for its whole life (its control plane may restart).
        try:
            lock = locking.acquire(data_dir)
        except refusals.StoreRefused as error:
            console.print(f"[red]error:[/] {markup.escape(str(error))}", soft_wrap=True)
            return 1
    try:
        return asyncio.run(
            _run(
                file,
                found,
                namespace,
                server,
                api_port,
                xds_port,
                data_dir,
                console,
                lock,
                publish,
                mode,
                prometheus_targets,
            )
        )
    except UnicodeDecodeError as error:
        console.print(
            f"[red]error:[/] a manifest in {file} is not UTF-8 text: {error}", soft_wrap=True
        )
        return 1
    finally:
        if lock is not None:
            lock.release()
