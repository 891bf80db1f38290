"""The composition root: builds every component from :class:`Settings` and runs them.

Layer 4, the only module that knows every part: the store, the domain service,
the REST API, the manifest front door, the sync stage and the xDS server. Clock and id
factory are chosen here, so everything below can take them as parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from meshplane.api import auth, operations, server
from meshplane.auth import hosts
from meshplane.auth.principals import Principals
from meshplane.kit.clock import Clock, IdFactory, system_clock, uuid_ids
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.pki import authority as pki_authority
from meshplane.pki.issuing import Issuer
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.service.tagging import Tagging
from meshplane.settings import AUTH_MODES, Settings
from meshplane.store.protocols import Store
from meshplane.store.sqlite import SqliteStore
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
    principals: Principals | None = None
    """Who may call the API (None with ``--auth none``)."""
    clock: Clock = system_clock
    api_port: int = 0
    xds_port: int = 0

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
    issuer = Issuer(
        pki_authority.load_or_create(
            settings.data_dir / "ca",
            clock,
            certificate_path=Path(settings.ca_cert) if settings.ca_cert else None,
            key_path=Path(settings.ca_key) if settings.ca_key else None,
        ),
        clock,
        settings.cert_ttl,
    )
    board = StatusBoard(clock)
    ads = AdsServer(cache, callbacks=board, ack_timeout=settings.xds_ack_timeout_s)
    sync = Sync(store, cache, board, debounce=settings.sync_debounce_ms / 1000, issuer=issuer)
    return ControlPlane(
        settings,
        store,
        services,
        FrontDoor(services.resources, clock, ids),
        ads,
        cache,
        sync,
        ProxyViews(sync, cache, board, store.revision),
        principals,
        clock,
    )


@contextlib.asynccontextmanager
async def running(plane: ControlPlane) -> AsyncIterator[ControlPlane]:
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
        runner = web.AppRunner(
            server.build_app(plane.services, plane.front_door, plane.views, plane.gate()),
            access_log=None,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.api_port, reuse_port=False)
        await site.start()
        plane.api_port = _bound_port(runner, settings.api_port)
        yield plane


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


async def serve(settings: Settings, on_ready: Callable[[ControlPlane], None]) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(build(settings)) as plane:
        on_ready(plane)
        await stop.wait()
