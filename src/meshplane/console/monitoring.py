"""Live traffic for the console: every sidecar's Envoy stats read once a second, while watched.

The console's topology labels and its event stream need current requests/s, success %
and p50/p99 per node and per target (:mod:`meshplane.sync.traffic`). The control plane
reads each connected proxy's read-only stats listener (the loopback address its node
metadata announces, as ``/meshplane/v1/proxies/stats`` does), keeps the previous reading,
and publishes the interval's rows. It reads only while at least one console event
stream is open, so an unwatched control plane makes no requests at all; all proxies are
read concurrently and a slow or gone one is skipped for that tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import aiohttp

from meshplane.console import caching, topology
from meshplane.sync import traffic

INTERVAL = 1.0
READ_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


class Proxies(Protocol):
    """The read model's part the monitor uses (``ProxyViews``): no whole view is built."""

    def changed(self) -> asyncio.Event:
        """An event set at the next change of any proxy (connects included)."""

    def node_ids(self) -> dict[str, str]:
        """Every proxy's node key → its node id."""

    def stats_address(self, key: str) -> str | None:
        """``host:port`` of the stats listener of the connected proxy ``key``, if it has one."""


Reader = Callable[[str], Awaitable[str]]
"""Reads ``/stats/prometheus`` from a ``host:port``."""


class TrafficMonitor:
    """The latest interval's traffic rows, refreshed every :data:`INTERVAL` while watched."""

    def __init__(
        self,
        views: Proxies,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read the proxies in ``views``; ``clock`` times the intervals."""
        self._views = views
        self._interval = interval
        self._clock = clock
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self._ticked = asyncio.Event()
        # Who has a stats listener changes only when proxies do, not every second.
        self._targets: caching.Generation[list[tuple[str, str, str]]] = caching.Generation(
            views.changed
        )
        self.rows: dict[str, dict[str, Any]] = {}
        """The last interval's rows by :func:`~meshplane.console.topology.traffic_key`."""

    def ticked(self) -> asyncio.Event:
        """An event set after the next reading (take it before waiting, as with ``changed``)."""
        return self._ticked

    def labels(self) -> dict[str, str]:
        """Every row as its label text, for the event stream."""
        return {key: topology.summary(row) for key, row in self.rows.items()}

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Keep the readings going for the duration of the block (one per event stream)."""
        self._watchers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            self._watchers -= 1
            if self._watchers == 0 and self._task is not None:
                self._task.cancel()
                self._task = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=READ_TIMEOUT, trust_env=False) as session:
            before, then = await self._read(session), self._clock()
            while True:
                await asyncio.sleep(self._interval)
                after, now = await self._read(session), self._clock()
                rows = traffic.rates(before, after, now - then)
                self.rows = {
                    topology.traffic_key(row["kind"], row["mesh"], row["name"]): row for row in rows
                }
                before, then = after, now
                ticked, self._ticked = self._ticked, asyncio.Event()
                ticked.set()

    def _listeners(self) -> list[tuple[str, str, str]]:
        """``(key, node id, stats address)`` of every connected proxy with a stats listener."""
        return [
            (key, node_id, address)
            for key, node_id in self._views.node_ids().items()
            if (address := self._views.stats_address(key)) is not None
        ]

    async def _read(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """One reading of every connected proxy with a stats listener."""
        proxies = self._targets.get("targets", self._listeners)

        async def one(
            key: str, node_id: str, address: str
        ) -> tuple[str, dict[traffic.Subject, traffic.Totals]]:
            try:
                async with session.get(f"http://{address}/stats/prometheus") as answer:
                    answer.raise_for_status()
                    text = await answer.text()
            except (aiohttp.ClientError, TimeoutError):
                return key, {}  # skipped this tick; its next reading is a baseline
            return key, traffic.observe(key, node_id, text)

        read = await asyncio.gather(*(one(*proxy) for proxy in proxies))
        return {key: totals for key, totals in read if totals}
