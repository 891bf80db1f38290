"""The composition root: builds every component from :class:`Settings` and runs them.

Layer 4, the only module that knows every part: the store, the domain service,
the REST API, the manifest front door, the sync stage and the xDS server. Clock and id
factory are chosen here, so everything below can take them as parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from meshplane.api import auth, limits, metering, operations, server
from meshplane.auth import hosts
from meshplane.auth.principals import Principals
from meshplane.kit.clock import Clock, IdFactory, system_clock, uuid_ids
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.model import errors
from meshplane.pki import authorities as pki_authorities
from meshplane.pki import authority as pki_authority
from meshplane.pki.issuing import Issuer
from meshplane.service import pagination, proxycredentials
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.service.tagging import Tagging
from meshplane.settings import AUTH_MODES, Settings
from meshplane.store import keys, locking, refusals
from meshplane.store.protocols import Store
from meshplane.store.sqlite import SqliteStore
from meshplane.sync.admission import SigV4Admission, TokenAdmission
from meshplane.sync.metering import SyncMetrics
from meshplane.sync.proxyviews import ProxyViews
from meshplane.sync.syncing import Sync
from meshplane.xds.cache import SnapshotCache
from meshplane.xds.server import AdsServer
from meshplane.xds.status import StatusBoard

if TYPE_CHECKING:  # imported only when `meshplane k8s` runs / a PostgreSQL store is named
    from meshplane.k8s import operating
    from meshplane.store.postgres import PostgresStore

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ControlPlane:
    """A built control plane: its store and services, and the API once started."""

    settings: Settings
    store: Store
    services: operations.Services
    front_door: FrontDoor
    ads: AdsServer
    cache: SnapshotCache
    """What every proxy should run: the sync stage writes it, the ADS server serves it."""
    sync: Sync
    views: ProxyViews
    """The per-proxy read model that ``/meshplane/v1/proxies`` serves."""
    registry: CollectorRegistry
    """This plane's Prometheus metrics (``GET /metrics``); never the global registry."""
    sync_metrics: SyncMetrics
    api_metrics: metering.ApiMetrics
    principals: Principals | None = None
    """Who may call the API (None with ``--auth none``)."""
    clock: Clock = system_clock
    maintain: Callable[[], Any] = lambda: None
    """One store maintenance pass (compaction, pruning, vacuum); blocking, run in a thread."""
    api_port: int = 0
    xds_port: int = 0
    read_only: str = ""
    """Kubernetes mode: the API refuses writes with this message (and serves no manifests)."""

    def gate(self) -> auth.Gate:
        """The API's front gate: bound names, allowed origins, principals."""
        settings = self.settings
        return auth.Gate(
            principals=self.principals,
            region=settings.region,
            account=settings.account_id,
            clock=self.clock,
            allowed_hosts=hosts.bound_names(settings.host, settings.allow_hosts),
            allowed_origins=frozenset(settings.allow_origins),
        )

    def proxies(self) -> list[dict[str, Any]]:
        """Every proxy the xDS server has seen: sync state, NACKs, translation warnings."""
        return self.views.proxies()


def build(
    settings: Settings, clock: Clock = system_clock, ids: IdFactory = uuid_ids
) -> ControlPlane:
    """Open the store and wire the services (nothing listens yet).

    The principals (and at first start ``D/credentials``) are created before the store,
    so the data dir is made 0700 before anything is written into it.
    """
    if settings.auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {settings.auth!r}")
    principals = Principals(settings.data_dir, clock) if settings.auth == "sigv4" else None
    store = _open_store(settings, clock)

    def maintain() -> Any:
        return store.maintain(
            keep_revisions=settings.feed_keep_revisions,
            max_tokens=settings.max_client_tokens,
            tokens_older_than=clock() - settings.client_token_ttl,
        )

    account = Account(settings.region, settings.account_id)
    credentials = proxycredentials.ProxyCredentials(
        proxycredentials.load_key(settings.data_dir),
        clock,
        settings.proxy_credential_ttl,
        required=settings.xds_auth,
    )
    tokens = pagination.Tokens(keys.load_or_create(settings.data_dir, "pagination"))
    services = operations.Services(
        resources=MeshService(
            store,
            account,
            settings.quotas,
            clock,
            ids,
            client_token_ttl=settings.client_token_ttl,
            tokens_per_principal=settings.client_tokens_per_principal,
            tokens=tokens,
        ),
        tagging=Tagging(store, account, tokens),
        discovery=Discovery(store, settings.account_id, clock, settings.endpoint_lease_ttl),
        credentials=credentials,
    )
    cache = SnapshotCache()
    builtin = pki_authority.load_or_create(
        settings.data_dir / "ca",
        clock,
        certificate_path=Path(settings.ca_cert) if settings.ca_cert else None,
        key_path=Path(settings.ca_key) if settings.ca_key else None,
    )
    issuer = Issuer(
        builtin,
        clock,
        settings.cert_ttl,
        authorities=pki_authorities.load(settings.data_dir / "ca", builtin, clock),
    )
    board = StatusBoard(clock)
    # Checked even with xds_auth off when a token is shown; required only with it on.
    # SigV4-signed streams (the aws-appmesh-envoy image) by principal and policy.
    admission = SigV4Admission(
        principals,
        board,
        TokenAdmission(credentials, board),
        region=settings.region,
        account=settings.account_id,
        clock=clock,
    )
    ads = AdsServer(
        cache,
        callbacks=board,
        ack_timeout=settings.xds_ack_timeout_s,
        authenticator=admission,
        max_streams=settings.xds_max_streams,
    )
    if settings.xds_tls_port and settings.xds_tls_names:
        names = settings.xds_tls_names
        served = builtin.issue(names[0], 365 * 24 * 3600, names[1:])  # re-issued at every start
        ads.serve_tls(settings.host, settings.xds_tls_port, served.chain_pem, served.key_pem)
        admission.hosts = tuple(f"{n}:{settings.xds_tls_port}" for n in names)
    sync = Sync(
        store,
        cache,
        board,
        debounce=settings.sync_debounce_ms / 1000,
        issuer=issuer,
        trust_domain=settings.trust_domain,
        file_sans=pki_authority.leaf_sans,
        endpoint_grace=settings.endpoint_lease_ttl,
    )
    views = ProxyViews(sync, cache, board, store.revision)
    registry = CollectorRegistry(auto_describe=True)
    sync_metrics = SyncMetrics(registry, sync, board, cache, views, store.revision, clock)
    return ControlPlane(
        settings,
        store,
        services,
        FrontDoor(services.resources, clock, ids, trust_domain=settings.trust_domain),
        ads,
        cache,
        sync,
        views,
        registry,
        sync_metrics,
        metering.ApiMetrics(registry),
        principals,
        clock,
        maintain,
    )


Mount = Callable[[web.Application, ControlPlane], None]
"""Adds a higher layer's routes (the console) to the API application of a plane."""


@contextlib.asynccontextmanager
async def running(plane: ControlPlane, mounts: Sequence[Mount] = ()) -> AsyncIterator[ControlPlane]:
    """Serve xDS and the API on the configured host and ports until the block exits."""
    settings = plane.settings
    # Each part is torn down even if a later one fails to start (a taken API port must
    # not leave the xDS server listening, the sync task running or the store open).
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(plane.store.close)
        plane.xds_port = await plane.ads.start(settings.host, settings.xds_port)
        stack.push_async_callback(plane.ads.stop, 0)
        stack.callback(gc.unfreeze)
        stack.callback(gc.set_threshold, *gc.get_threshold())  # freeze_heap raises it
        stack.callback(plane.sync.subscribe(_freeze_after_first_publish(plane.sync)))
        syncing = asyncio.create_task(plane.sync.run(), name="meshplane-sync")
        stack.push_async_callback(_cancelled, syncing)
        expiring = asyncio.create_task(_expire_leases(plane), name="meshplane-leases")
        stack.push_async_callback(_cancelled, expiring)
        if settings.store_maintenance_s > 0:
            upkeep = asyncio.create_task(_maintaining(plane), name="meshplane-store-upkeep")
            stack.push_async_callback(_cancelled, upkeep)
        bounds = http_limits(settings)
        api = server.build_app(
            plane.services,
            None if plane.read_only else plane.front_door,
            plane.views,
            gate=plane.gate(),
            http_limits=bounds,
            read_only=plane.read_only,
            metrics=plane.api_metrics,
            mounts=[functools.partial(_mount, mount, plane) for mount in mounts],
            xds_port=plane.xds_port,
        )
        runner = limits.LimitedRunner(api, bounds, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.api_port, reuse_port=False)
        await site.start()
        plane.api_port = _bound_port(runner, settings.api_port)
        log.debug("froze %d start-up objects out of the cyclic collector", freeze_start_up())
        yield plane


YOUNG_COLLECTION_THRESHOLD = 50_000
"""Allocations (net) between two young-generation collections once the heap is frozen.

CPython's default, 700, suits programs whose objects die young. A push to 1,000 ADS
streams allocates ~50 tracked objects per stream (coroutines, futures, status values)
that live until that stream's ACK, so at 700 the collector ran ~70 times per push,
walking and promoting them, and they then fed the full collections:
``bench.ack_streams --streams 1000 --freeze`` measured collections at 1,269 ms over
10 changes (700), 421 ms (5,000), 221 ms (20,000) and 0-16 ms (50,000), server CPU
per stream 286 → 154-193 µs. A young generation this size is a few MiB.
"""


def freeze_heap() -> int:
    """Move every object alive now out of the cyclic collector's reach; how many it moved.

    Also raises the young generation's threshold to :data:`YOUNG_COLLECTION_THRESHOLD`:
    from here on the allocations are mostly per-push xDS objects that die within a push.

    Called once, after start-up (:func:`_freeze_after_first_publish`): the heap then
    is mostly long-lived (modules, the store, parsed mesh specs, snapshots), and every
    full collection walked all of it again (6-15 % of server CPU in xDS fan-out, by
    profile). ``python -m bench.ack_streams --streams 1000 --flips 10 --freeze`` prints
    the A/B: over 10 changes to 1,000 streams, full collections took 275-1,552 ms as is
    and 28-163 ms frozen (all collections: 636-2,579 ms vs 449-816 ms).

    Safe: frozen objects are still freed by reference counting when the last
    reference goes (a replaced snapshot, a removed mesh); only a *cycle* among frozen
    objects that becomes garbage is not collected (until :func:`gc.unfreeze`, which
    :func:`running` calls on exit). The collection first keeps garbage that is already
    cyclic out of the frozen set, so what can be kept is bounded by the start-up heap
    and happens twice (here and in :func:`freeze_start_up`). Objects created later (new
    meshes, reloads) are collected as before: not re-freezing after a big reload keeps
    that bound — a re-freeze would each time pin whatever of the old state died in
    cycles — at the price of later collections walking the reloaded heap (they did so
    before this change too).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    return gc.get_freeze_count()


def freeze_start_up() -> int:
    """Freeze the heap of a plane that is serving but has built no snapshot yet.

    Modules, settings, the store and the API application are alive for the whole run.
    Until the first publish (:func:`_freeze_after_first_publish`) a plane with no proxy
    connected kept them in the cyclic collector's reach, and each full collection, on
    the event loop, walked them all: 55-87 ms stalls of every request in flight
    (``python -m bench.hostile --heavy-only``, loop stall columns). The young
    generation keeps its threshold until proxies connect.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _freeze_after_first_publish(sync: Sync) -> Callable[[], None]:
    """A sync observer that calls :func:`freeze_heap` after the first pass that published.

    That pass read its meshes whole and built their proxies' snapshots: the long-lived
    heap exists. Passes that published nothing (writes before any proxy connected) do
    not count. The collection runs inside that pass, once, before its pushes are sent.
    """
    frozen = False

    def observe() -> None:
        nonlocal frozen
        if frozen or not sync.last_pass.published:
            return
        frozen = True
        log.info("froze %d start-up objects out of the cyclic collector", freeze_heap())

    return observe


async def _expire_leases(plane: ControlPlane) -> None:
    """Withdraw unrenewed endpoint registrations, checking a few times per lease."""
    discovery = plane.services.discovery
    interval = min(1.0, max(0.1, discovery.lease_ttl / 5))
    while True:
        # A single pass is one short write per expired lease; it stays on the loop.
        discovery.expire()
        await asyncio.sleep(interval)


async def _maintaining(plane: ControlPlane) -> None:
    """Run a store maintenance pass every ``store_maintenance_s`` seconds, off the loop."""
    while True:
        await asyncio.sleep(plane.settings.store_maintenance_s)
        try:
            done = await asyncio.to_thread(plane.maintain)
        except errors.AppMeshError as error:  # a full disk: say so, try again next time
            log.warning("store maintenance: %s", error.message)
        else:
            log.info("store maintenance: %s", done)


def http_limits(settings: Settings) -> limits.HttpLimits:
    """The API's connection and request limits from the settings."""
    return limits.HttpLimits(
        header_timeout=settings.http_header_timeout,
        idle_timeout=settings.http_idle_timeout,
        body_timeout=settings.http_body_timeout,
        max_connections=settings.http_max_connections,
    )


def _mount(mount: Mount, plane: ControlPlane, api: web.Application) -> None:
    mount(api, plane)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    """The port actually bound (differs from ``asked`` when that was 0)."""
    for address in runner.addresses:
        return int(address[1])
    return asked


def _open_store(settings: Settings, clock: Clock) -> SqliteStore | PostgresStore:
    """The SQLite file in the data dir, or the PostgreSQL database ``settings.store`` names."""
    if not settings.store:
        return SqliteStore(settings.data_dir, clock)
    if not settings.store.startswith(("postgresql://", "postgres://")):
        raise refusals.StoreRefused(
            f"--store must be empty (SQLite in the data dir) or a postgresql:// URL, "
            f"not {settings.store!r}"
        )
    try:
        from meshplane.store import postgres  # noqa: PLC0415 - psycopg is an optional extra
    except ImportError as error:
        raise refusals.StoreRefused(
            "--store postgresql://... needs psycopg: pip install 'meshplane[postgres]'"
        ) from error
    return postgres.PostgresStore(settings.store, clock)


async def serve(
    settings: Settings,
    on_ready: Callable[[ControlPlane], None],
    mounts: Sequence[Mount] = (),
) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly.

    The data dir's lock is taken first, before the store is even opened: a second
    process on the same data dir raises :class:`~meshplane.store.locking.DataDirLocked`
    and touches nothing, while the first keeps serving.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with locking.acquire(settings.data_dir):
        async with running(build(settings), mounts) as plane:
            on_ready(plane)
            await stop.wait()


async def serve_k8s(
    settings: Settings,
    options: operating.Options,
    on_ready: Callable[[ControlPlane, operating.Replica], None],
) -> None:
    """``meshplane k8s``: the control plane as ``serve`` runs it, fed from Kubernetes.

    The replica's store is scratch: emptied at start (under the data dir's lock) and
    rebuilt from the API server, which stays the source of truth.
    """
    from meshplane.k8s import (  # noqa: PLC0415 - lightkube only in k8s mode
        operating,
        principalsecret,
        securing,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with locking.acquire(settings.data_dir):
        operating.prepare_data_dir(settings.data_dir)
        if not settings.ca_cert:  # one CA for every replica (sidecars reconnect to any)
            shared = await securing.share_ca(
                options.kubeconfig, options.namespace, settings.data_dir / "ca", system_clock
            )
            logging.getLogger(__name__).info("xds: %s", shared)
        plane = build(settings)
        plane.read_only = operating.READ_ONLY
        if isinstance(plane.ads.authenticator, SigV4Admission):  # before secure() wraps it
            plane.ads.authenticator.hosts = securing.signed_hosts(options)
        options = securing.secure(
            plane.ads,
            options,
            settings.host,
            settings.data_dir / "ca",
            system_clock,
            ca_cert=Path(settings.ca_cert) if settings.ca_cert else None,
            ca_key=Path(settings.ca_key) if settings.ca_key else None,
        )
        async with (
            principalsecret.shared(
                options.kubeconfig, options.namespace, plane.principals
            ) as principals_shared,
            running(plane) as plane,
            operating.started(
                plane.services.resources,
                system_clock,
                options,
                settings.data_dir / "webhook-certs",
                plane.ads,
                plane.services.discovery,
            ) as replica,
        ):
            logging.getLogger(__name__).info("auth: %s", principals_shared)
            on_ready(plane, replica)
            await stop.wait()
