"""One ``meshplane k8s`` replica at work: watches, the reconcile loop, the Lease, the webhooks.

:func:`started` runs every part as a task beside the control plane that
:mod:`meshplane.app` built (store, API, sync, xDS):

* a watcher per kind (:mod:`meshplane.k8s.watching`), and one of Pods for the Cloud
  Map VirtualNodes' endpoints (:mod:`meshplane.k8s.cloudmapping`), registered after
  every pass;
* the reconcile loop: once every kind has been listed, each batch of changes
  runs one :meth:`Controller.converge` pass, and the leader writes its plan
  (:mod:`meshplane.k8s.writing`); a failed write, a change of leader and a
  periodic resync (the controller's ``PendingMembersDeletion`` requeue) run the
  pass again;
* the Lease (:mod:`meshplane.k8s.leading`);
* the HTTPS webhook server (:mod:`meshplane.k8s.webhooks`), and out of cluster
  its registration with the CA generated at start (:mod:`meshplane.k8s.registering`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from meshplane.k8s import (
    apiserver,
    certificates,
    cloudmapping,
    leading,
    registering,
    watching,
    webhooks,
)
from meshplane.k8s.controlling import Controller
from meshplane.k8s.identities import PodIdentities, Reviewer
from meshplane.k8s.injecting import InjectorConfig
from meshplane.k8s.writing import Outbox, Writer
from meshplane.kit.clock import Clock
from meshplane.service.discovery import Discovery
from meshplane.service.resources import MeshService
from meshplane.xds.roles import StreamAuthenticator
from meshplane.xds.server import AdsServer

log = logging.getLogger(__name__)

READ_ONLY = (
    "meshplane k8s: the mesh is managed through Kubernetes; "
    "use kubectl to change appmesh.k8s.aws resources"
)
"""What the App Mesh API answers to writes in Kubernetes mode (BadRequestException)."""

NATIVE_SIDECARS_SINCE = (1, 29)
"""The first Kubernetes release with native sidecars on by default (beta, then GA in 1.33)."""
LAYOUTS = ("auto", "native", "classic")

MARKER = ".meshplane-k8s"
BUDGET = 100
"""Objects reconciled per turn of the loop: the event loop also serves the API, xDS, the
webhooks and the Lease, and a start-up sync of thousands of objects must not starve them."""


@dataclasses.dataclass(frozen=True)
class Options:
    """``meshplane k8s``'s flags."""

    kubeconfig: Path | None = None
    namespace: str = "appmesh-system"
    """Where the Lease and (in cluster) meshplane's own objects live."""
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 9443
    register_webhooks: bool = False
    """Out of cluster: register the webhook configurations at ``https://webhook_host:port``."""
    webhook_cert_dir: Path | None = None
    """In cluster: serve ``tls.crt``/``tls.key`` from here (the chart's Secret) instead of a
    certificate made at start."""
    lease_duration: float = 15.0
    lease_retry: float = 2.0
    resync: float = 60.0
    identity: str = ""
    injector: InjectorConfig = dataclasses.field(default_factory=InjectorConfig)
    xds_identity: bool = True
    """Admit ADS streams only with their pod's service-account token (``identities``)."""
    xds_tls_port: int | None = None
    """Serve ADS over TLS here too (0: a free port); needed by token-carrying sidecars."""
    signed_streams: StreamAuthenticator | None = None
    """Judges SigV4-signed streams (aws-appmesh-envoy) when pod-token identity is on."""
    sidecar_layout: str = "auto"
    """``native`` (Envoy an init container, restartPolicy Always), ``classic``, or ``auto``
    (native when the API server is at least :data:`NATIVE_SIDECARS_SINCE`)."""


@dataclasses.dataclass
class Replica:
    """A running replica, for the CLI's banner and for tests."""

    controller: Controller
    leader: leading.Leader
    webhook_port: int
    synced: asyncio.Event
    sync_seconds: float = 0.0
    """From start to the first pass over every listed object."""
    passes: int = 0
    identities: PodIdentities | None = None
    """The stream authenticator, when xDS identity is on."""
    injector: InjectorConfig = dataclasses.field(default_factory=InjectorConfig)
    """The injector's configuration as resolved at start (layout, CA)."""
    pods: cloudmapping.Pods = dataclasses.field(default_factory=cloudmapping.Pods)
    registrar: cloudmapping.Registrar | None = None
    """Registers Cloud Map nodes' Ready pods (None: no Discovery was given)."""


def prepare_data_dir(data_dir: Path) -> None:
    """Start the replica's store empty: the twins are rebuilt from the API server.

    Refuses a directory that holds a store ``meshplane k8s`` did not make (for
    example a ``meshplane serve`` data dir) rather than deleting it.
    """
    store = data_dir / "meshplane.db"
    if store.exists() and not (data_dir / MARKER).exists():
        raise OSError(
            f"{data_dir} holds a meshplane store that meshplane k8s did not make; "
            "give --data-dir a directory of its own"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob("meshplane.db*"):
        stale.unlink()
    (data_dir / MARKER).write_text("the store here is rebuilt from Kubernetes at every start\n")


async def _reconcile(
    replica: Replica, outbox: Outbox, changed: asyncio.Event, started_at: float, clock: Clock
) -> None:
    controller, leader = replica.controller, replica.leader
    loop = asyncio.get_running_loop()
    while True:
        due = controller.next_due()  # the earliest requeue (a dependency, a member to go)
        wait = None if due is None else max(0.0, due - clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), wait)
        changed.clear()
        if controller.synced != set(apiserver.WATCHED):
            continue  # a pass over half the kinds would report objects waiting for nothing
        try:
            plan = controller.converge(budget=BUDGET)
        except Exception:  # a bug must not stop the controller: log it, try again later
            log.exception("reconcile pass failed; retrying")
            loop.call_later(5.0, changed.set)
            continue
        replica.passes += 1
        if replica.registrar is not None:
            replica.registrar.sync(controller.catalog, replica.pods)
        if leader.leading and plan:
            outbox.put(plan)
        if controller.pending:
            changed.set()  # more queued: go on after the API, xDS and webhooks had their turn
            await asyncio.sleep(0)
            continue
        if not replica.synced.is_set():
            replica.sync_seconds = time.monotonic() - started_at
            log.info(
                "first sync: %d objects in %.3f s",
                len(controller.catalog.all()),
                replica.sync_seconds,
            )
            replica.synced.set()


async def _write(
    outbox: Outbox,
    writer: Writer,
    leader: leading.Leader,
    controller: Controller,
    changed: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await outbox.ready.wait()
        plan = outbox.take()
        if plan is None or not leader.leading:
            continue
        if not await writer.write(plan):
            loop.call_later(1.0, _replan, controller, changed)  # from what the watches say now


def _replan(controller: Controller, changed: asyncio.Event) -> None:
    """Have the next pass plan every object's writes (not only those that changed)."""
    controller.replan()
    changed.set()


async def _resync(controller: Controller, changed: asyncio.Event, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        _replan(controller, changed)


async def _register(client: AsyncClient, base_url: str, ca_pem: bytes) -> None:
    try:
        await client.get(apiserver.MUTATING, registering.OLD_MUTATING)
    except ApiError:
        pass
    else:
        log.warning(
            "%s exists: uninstall appmesh-controller, or both injectors run",
            registering.OLD_MUTATING,
        )
    mutating, validating = registering.configurations(base_url, ca_pem)
    for resource, body in ((apiserver.MUTATING, mutating), (apiserver.VALIDATING, validating)):
        await client.patch(
            resource,
            body["metadata"]["name"],
            body,
            patch_type=PatchType.APPLY,
            field_manager=apiserver.FIELD_MANAGER,
            force=True,
        )


async def _deregister(client: AsyncClient) -> None:
    for resource, name in (
        (apiserver.MUTATING, registering.MUTATING),
        (apiserver.VALIDATING, registering.VALIDATING),
    ):
        with contextlib.suppress(ApiError):
            await client.delete(resource, name)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _layout(client: AsyncClient, options: Options) -> InjectorConfig:
    """The injector's configuration with the sidecar layout decided (``auto``: by version)."""
    native = options.sidecar_layout == "native"
    if options.sidecar_layout == "auto":
        version = await apiserver.server_version(client)
        native = version is not None and version >= NATIVE_SIDECARS_SINCE
        log.info(
            "sidecar layout: %s (API server %s)",
            "native" if native else "classic",
            ".".join(map(str, version)) if version else "version unknown",
        )
    return dataclasses.replace(options.injector, native_sidecars=native)


@contextlib.asynccontextmanager
async def started(
    service: MeshService,
    clock: Clock,
    options: Options,
    cert_dir: Path,
    ads: AdsServer | None = None,
    discovery: Discovery | None = None,
) -> AsyncIterator[Replica]:
    """Run a replica reconciling into ``service``'s store until the block exits.

    With ``options.xds_identity``, ``ads`` admits streams by pod token from now on. With
    ``discovery``, Cloud Map VirtualNodes get their selected Ready pods as endpoints.
    """
    started_at = time.monotonic()
    identity = options.identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    client = apiserver.connect(options.kubeconfig)
    changed = asyncio.Event()
    controller = Controller(service, clock)
    leader = leading.Leader(
        client,
        options.namespace,
        identity,
        duration=options.lease_duration,
        retry=options.lease_retry,
        on_change=lambda _leading: _replan(controller, changed),
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(client.close)
        pair = certificates.issue(
            [options.webhook_host], datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)
        )
        if options.webhook_cert_dir is not None:
            context = certificates.load_context(options.webhook_cert_dir)
        else:
            context = pair.server_context(cert_dir)
        injector = await _layout(client, options)
        identities = None
        if options.xds_identity and ads is not None:
            # Signed streams (aws-appmesh-envoy sidecars) still go to the plane's own check.
            identities = PodIdentities(client, Reviewer(client), ads.status, options.signed_streams)
            ads.authenticator = identities
        app = webhooks.build_app(lambda: controller.catalog, injector)
        runner, port = await webhooks.start(
            app, options.webhook_host, options.webhook_port, context
        )
        stack.push_async_callback(runner.cleanup)
        replica = Replica(
            controller, leader, port, asyncio.Event(), identities=identities, injector=injector
        )
        writer = Writer(client, identity, clock)
        tasks = [
            asyncio.create_task(watching.watch(client, kind, controller, changed), name=kind)
            for kind in apiserver.WATCHED
        ]
        if discovery is not None:
            replica.registrar = cloudmapping.Registrar(discovery)
            pods = watching.watch(client, "Pod", replica.pods, changed, resource=apiserver.POD)
            tasks.append(asyncio.create_task(pods, name="Pod"))
        tasks.append(asyncio.create_task(leader.run(), name="lease"))
        outbox = Outbox()
        tasks.append(asyncio.create_task(_reconcile(replica, outbox, changed, started_at, clock)))
        tasks.append(asyncio.create_task(_write(outbox, writer, leader, controller, changed)))
        tasks.append(asyncio.create_task(_resync(controller, changed, options.resync)))
        if identities is not None:
            # Within one resync of a token expiring or its pod going, its stream ends.
            tasks.append(asyncio.create_task(identities.run(options.resync), name="identities"))
        for task in tasks:
            stack.push_async_callback(_cancelled, task)
        stack.push_async_callback(leader.release)
        if options.register_webhooks:
            await replica.synced.wait()  # the mutating webhook designates from a full catalog
            await _register(client, f"https://{options.webhook_host}:{port}", pair.ca_pem)
            stack.push_async_callback(_deregister, client)
        yield replica
