"""The control plane's Prometheus metrics of the sync path: propagation, pushes, NACKs, proxies.

Registered into a :class:`prometheus_client.CollectorRegistry` the composition root owns,
one per control plane (never the global registry: tests build many planes in one process).
What is measured, and from which events:

- ``meshplane_propagation_seconds`` — from the commit of a change (the store clock's
  ``Change.at``) until every proxy whose snapshot that publish pass replaced has ACKed its
  current snapshot (the status board's ACK events; a proxy that disconnects first is not
  waited for, and a pass whose proxies all left is not observed). One observation per publish
  pass that applied changes and re-published a proxy;
- ``meshplane_xds_pushes_total{type}`` / ``meshplane_xds_nacks_total{type}`` — xDS responses
  written and rejected, by resource type (``Cluster``, ``Listener``, …);
- ``meshplane_proxies{state}`` — proxies by the read model's state, read at scrape time;
- ``meshplane_store_revision`` — the store's revision, read at scrape time;
- ``meshplane_translation_seconds`` — one observation per proxy translation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from meshplane.kit.clock import Clock
from meshplane.sync import proxyviews
from meshplane.sync.syncing import Sync
from meshplane.xds import cache as xds_cache
from meshplane.xds import status as xds_status

PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: propagation is milliseconds when healthy and seconds when a proxy lags."""
MAX_WAITS = 1000
"""Propagations followed at once; past it the oldest is dropped unobserved, so a proxy that
never ACKs (it NACKs every push) cannot grow the list without bound."""
TRANSLATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def type_name(type_url: str) -> str:
    """The label of a type URL: its last segment (``...v3.Cluster`` → ``Cluster``)."""
    return type_url.rsplit(".", 1)[-1]


@dataclasses.dataclass
class _Wait:
    started: float
    keys: set[str]
    acked: bool = False
    """Whether any of its proxies ACKed (a wait whose proxies all left is not a propagation)."""


class SyncMetrics:
    """Follows the sync stage and the status board; owns the sync path's metrics."""

    def __init__(
        self,
        registry: CollectorRegistry,
        sync: Sync,
        board: xds_status.StatusBoard,
        cache: xds_cache.SnapshotCache,
        views: proxyviews.ProxyViews,
        revision: Callable[[], int],
        clock: Clock,
    ) -> None:
        """Register the metrics into ``registry`` and subscribe to ``sync`` and ``board``."""
        self._sync, self._board, self._cache, self._clock = sync, board, cache, clock
        self.propagation = Histogram(
            "meshplane_propagation_seconds",
            "Change committed -> every proxy it re-published ACKed its snapshot.",
            registry=registry,
            buckets=PROPAGATION_BUCKETS,
        )
        self.translation = Histogram(
            "meshplane_translation_seconds",
            "Time to translate one proxy's snapshot.",
            registry=registry,
            buckets=TRANSLATION_BUCKETS,
        )
        self.pushes = Counter(
            "meshplane_xds_pushes", "xDS responses sent, by type.", ["type"], registry=registry
        )
        self.nacks = Counter(
            "meshplane_xds_nacks", "xDS responses rejected, by type.", ["type"], registry=registry
        )
        store_revision = Gauge(
            "meshplane_store_revision", "The store's current revision.", registry=registry
        )
        store_revision.set_function(lambda: float(revision()))
        registry.register(_ProxyStates(views))
        self._waits: list[_Wait] = []
        sync.subscribe(self._on_pass)
        board.subscribe(self._on_status)
        board.subscribe_stream(self._on_stream)

    def _on_pass(self) -> None:
        done = self._sync.last_pass
        for seconds in done.translation_seconds:
            self.translation.observe(seconds)
        if done.first_change_at is not None and done.published:
            self._waits.append(_Wait(done.first_change_at, {key for key, _ in done.published}))
            del self._waits[:-MAX_WAITS]
        # Only the proxies this pass republished can have arrived since the last settle:
        # any other's target and board status are as they were then (an ACK or a
        # disconnect settles every wait through _on_status).
        self._settle({key for key, _ in done.published})

    def _on_stream(self, event: xds_status.StreamEvent) -> None:
        if isinstance(event, xds_status.Sent):
            self.pushes.labels(type_name(event.type_url)).inc()
        elif isinstance(event, xds_status.Nacked):
            self.nacks.labels(type_name(event.type_url)).inc()

    def _on_status(self, event: xds_status.StatusEvent) -> None:
        if isinstance(event, xds_status.Acked | xds_status.Disconnected) and self._waits:
            self._settle()

    def _settle(self, only: set[str] | None = None) -> None:
        """Observe every wait whose proxies all run their current snapshot (or left).

        ``only``: just those proxies may have arrived (the others are known to be still
        waiting). Each proxy is judged once per call, however many waits name it: a proxy
        that never ACKs is in up to :data:`MAX_WAITS` of them.
        """
        pending = []
        judged: dict[str, bool | None] = {}
        for wait in self._waits:
            # Set operations in C: a full rebuild's wait names every proxy of the mesh, and
            # a pass that republished five must not walk all of them in every such wait.
            candidates = wait.keys if only is None else wait.keys & only
            if not candidates:
                pending.append(wait)
                continue
            settled = set()
            for key in candidates:
                if key not in judged:
                    judged[key] = self._arrived(key)
                arrived = judged[key]
                if arrived is not None:
                    settled.add(key)
                wait.acked = wait.acked or bool(arrived)
            if settled:
                wait.keys = wait.keys - settled
            if wait.keys:
                pending.append(wait)
            elif wait.acked:
                self.propagation.observe(max(self._clock() - wait.started, 0.0))
        self._waits = pending

    def _arrived(self, key: str) -> bool | None:
        """True: ``key`` runs its current snapshot; False: it left; None: still waiting."""
        status = self._board.node(key)
        target = self._cache.snapshot(key)
        if status is None or not status.connected or target is None:
            return False
        return True if status.has_acked(target) else None


class _ProxyStates:
    """``meshplane_proxies{state}``, read from the read model at scrape time."""

    def __init__(self, views: proxyviews.ProxyViews) -> None:
        self._views = views

    def collect(self) -> Iterator[Metric]:
        counts: dict[str, int] = dict.fromkeys(
            (proxyviews.SYNCED, proxyviews.STALE, proxyviews.NACKED, proxyviews.DISCONNECTED), 0
        )
        view: dict[str, Any]
        for view in self._views.proxies():
            counts[view["state"]] += 1
        family = GaugeMetricFamily("meshplane_proxies", "Proxies by sync state.", labels=["state"])
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family
