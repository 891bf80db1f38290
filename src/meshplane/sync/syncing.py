"""The sync stage: rebuild and publish the snapshots of the proxies a change affects.

Two inputs wake it: the store's change feed (a committed write touched a mesh)
and the xDS status board (a proxy connected or went away). Work is coalesced:
marks are collected for ``debounce`` seconds after the first one, so a burst of
writes (an ``apply`` of ten manifests) costs one rebuild per affected proxy, not
ten. Rebuilding is pure translation; publishing an unchanged snapshot is a no-op
in the cache, so proxies whose config did not change are not pushed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from meshplane.model.snapshot import MeshSnapshot
from meshplane.store import snapshots
from meshplane.store.records import Change
from meshplane.store.sqlite import SqliteStore
from meshplane.sync import identities
from meshplane.translate import building
from meshplane.translate.identity import NodeIdentity
from meshplane.xds import cache as xds_cache
from meshplane.xds import status as xds_status
from meshplane.xds.snapshot import ResourceEncoder, Snapshot

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Published:
    """What was last published for one proxy: the store revision and translation warnings."""

    revision: int
    version: str
    warnings: tuple[str, ...]


class Sync:
    """Keeps every connected proxy's snapshot equal to the translation of the store."""

    def __init__(
        self,
        store: SqliteStore,
        cache: xds_cache.SnapshotCache,
        board: xds_status.StatusBoard,
        debounce: float = 0.001,
    ) -> None:
        """Follow ``store`` and ``board``; publish into ``cache``."""
        self._store = store
        self._cache = cache
        self._board = board
        self.debounce = debounce
        """Seconds to gather changes before a rebuild (tunable while running)."""
        self._encoder = ResourceEncoder()
        self._proxies: dict[str, NodeIdentity] = {}
        self._dirty_meshes: set[str] = set()
        self._dirty_proxies: set[str] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published: dict[str, Published] = {}
        """Node key → what it was last given (for operators and tests)."""

    # -- inputs ------------------------------------------------------------------------------

    def _on_changes(self, changes: Sequence[Change]) -> None:
        meshes = {change.key.mesh for change in changes}
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._mark_meshes, meshes)

    def _mark_meshes(self, meshes: set[str]) -> None:
        self._dirty_meshes |= meshes
        self._wake.set()

    def _on_status(self, event: xds_status.StatusEvent) -> None:
        if isinstance(event, xds_status.Connected):
            identity = identities.identify(event.node)
            if identity is None:
                log.warning("sync: proxy %s has no App Mesh node id; not serving it", event.key)
                return
            self._proxies[event.key] = identity
            self._dirty_proxies.add(event.key)
            self._wake.set()
        elif isinstance(event, xds_status.Disconnected):
            # Stop rebuilding for a proxy that went away; it is rebuilt when it reconnects.
            self._proxies.pop(event.key, None)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until cancelled."""
        self._loop = asyncio.get_running_loop()
        unsubscribe_store = self._store.subscribe(self._on_changes)
        unsubscribe_board = self._board.subscribe(self._on_status)
        try:
            while True:
                await self._wake.wait()
                # Coalesce a burst of marks into one rebuild.
                await asyncio.sleep(self.debounce)
                self._wake.clear()
                self.publish_pending()
        finally:
            unsubscribe_store()
            unsubscribe_board()

    def publish_pending(self) -> None:
        """Rebuild every proxy of a changed mesh and every newly connected proxy."""
        meshes, self._dirty_meshes = self._dirty_meshes, set()
        keys, self._dirty_proxies = self._dirty_proxies, set()
        keys |= {key for key, identity in self._proxies.items() if identity.mesh in meshes}
        by_mesh: dict[str, list[str]] = {}
        for key in sorted(keys):
            identity = self._proxies.get(key)
            if identity is not None:
                by_mesh.setdefault(identity.mesh, []).append(key)
        for mesh, mesh_keys in by_mesh.items():
            snapshot = snapshots.mesh_snapshot(self._store, mesh)
            for key in mesh_keys:
                self._publish(key, self._proxies[key], snapshot)

    def _publish(self, key: str, identity: NodeIdentity, mesh: MeshSnapshot | None) -> None:
        if mesh is None:
            warnings: tuple[str, ...] = (f"mesh {identity.mesh} does not exist",)
            snapshot = Snapshot(())
            revision = self._store.revision()
        else:
            built = building.build(mesh, identity)
            warnings, revision = built.warnings, mesh.revision
            snapshot = Snapshot.of(
                (
                    *built.listeners,
                    *built.route_configurations,
                    *built.clusters,
                    *built.cluster_load_assignments,
                ),
                self._encoder,
            )
        for warning in warnings:
            log.warning("sync: %s: %s", key, warning)
        self._cache.set_snapshot(key, snapshot)
        self.published[key] = Published(revision, snapshot.version, warnings)
