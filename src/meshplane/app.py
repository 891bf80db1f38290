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
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from meshplane.api import metering, operations, server
from meshplane.kit.clock import Clock, IdFactory, system_clock, uuid_ids
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.service.tagging import Tagging
from meshplane.settings import Settings
from meshplane.store.protocols import Store
from meshplane.store.sqlite import SqliteStore
from meshplane.sync.metering import SyncMetrics
from meshplane.sync.proxyviews import ProxyViews
from meshplane.sync.syncing import Sync
from meshplane.xds.cache import SnapshotCache
from meshplane.xds.server import AdsServer
from meshplane.xds.status import StatusBoard


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
    api_port: int = 0
    xds_port: int = 0

    def proxies(self) -> list[dict[str, Any]]:
        """Every proxy the xDS server has seen: sync state, NACKs, translation warnings."""
        return self.views.proxies()


def build(
    settings: Settings, clock: Clock = system_clock, ids: IdFactory = uuid_ids
) -> ControlPlane:
    """Open the store and wire the services (nothing listens yet)."""
    store = SqliteStore(settings.data_dir, clock)
    account = Account(settings.region, settings.account_id)
    services = operations.Services(
        resources=MeshService(
            store,
            account,
            settings.quotas,
            clock,
            ids,
            client_token_ttl=settings.client_token_ttl,
        ),
        tagging=Tagging(store, account),
        discovery=Discovery(store, settings.account_id),
    )
    cache = SnapshotCache()
    board = StatusBoard(clock)
    sync = Sync(store, cache, board, debounce=settings.sync_debounce_ms / 1000)
    views = ProxyViews(sync, cache, board, store.revision)
    registry = CollectorRegistry(auto_describe=True)
    sync_metrics = SyncMetrics(registry, sync, board, cache, views, store.revision, clock)
    ads = AdsServer(cache, callbacks=board, ack_timeout=settings.xds_ack_timeout_s)
    return ControlPlane(
        settings,
        store,
        services,
        FrontDoor(services.resources, clock, ids),
        ads,
        cache,
        sync,
        views,
        registry,
        sync_metrics,
        metering.ApiMetrics(registry),
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
        syncing = asyncio.create_task(plane.sync.run(), name="meshplane-sync")
        stack.push_async_callback(_cancelled, syncing)
        api = server.build_app(
            plane.services,
            plane.front_door,
            plane.views,
            plane.api_metrics,
            [functools.partial(_mount, mount, plane) for mount in mounts],
        )
        runner = web.AppRunner(api, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.api_port, reuse_port=False)
        await site.start()
        plane.api_port = _bound_port(runner, settings.api_port)
        yield plane


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


async def serve(
    settings: Settings,
    on_ready: Callable[[ControlPlane], None],
    mounts: Sequence[Mount] = (),
) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(build(settings), mounts) as plane:
        on_ready(plane)
        await stop.wait()
