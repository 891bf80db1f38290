"""The sync stage relies only on "the revision moved": it reads every change since its last one.

Its store is wrapped so the feed is woken by the test, not by commits: several
writes followed by a single wake-up must all reach the proxy, as they would when
notifications from another replica arrive merged or late.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from envoy.config.core.v3 import base_pb2

from meshplane import app, settings
from meshplane.model import kinds
from meshplane.store import snapshots
from meshplane.store.protocols import Feed, ReadTransaction, Store, WriteTransaction
from meshplane.store.records import Change
from meshplane.sync.syncing import Sync
from meshplane.translate import building
from meshplane.translate.identity import NodeIdentity
from meshplane.xds.snapshot import ResourceEncoder, Snapshot

MESH = "m"
KEY = f"mesh/{MESH}/virtualNode/vn-a"


def _node(port: int) -> dict[str, Any]:
    return {
        "listeners": [{"portMapping": {"port": port, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "a.local"}},
    }


class ManualFeed:
    """The real feed's reads, but woken only when the test says so."""

    def __init__(self, real: Feed) -> None:
        self.real = real
        self.bell = asyncio.Event()
        self.waits = 0

    def revision(self) -> int:
        return self.real.revision()

    def changes_since(self, revision: int, limit: int = 1000) -> list[Change]:
        return self.real.changes_since(revision, limit)

    async def wait(self, after_revision: int) -> int:
        self.waits += 1
        await self.bell.wait()
        self.bell.clear()
        return self.real.revision()


class ManualStore:
    """A store that delegates everything but its feed."""

    def __init__(self, real: Store) -> None:
        self.real = real
        self.manual = ManualFeed(real.feed)

    @property
    def location(self) -> str:
        return self.real.location

    @property
    def schema_version(self) -> int:
        return self.real.schema_version

    def transaction(self) -> contextlib.AbstractContextManager[WriteTransaction]:
        return self.real.transaction()

    def read(self) -> contextlib.AbstractContextManager[ReadTransaction]:
        return self.real.read()

    @property
    def feed(self) -> Feed:
        return self.manual

    def revision(self) -> int:
        return self.real.revision()

    def close(self) -> None:
        self.real.close()


async def _until(condition: Any) -> None:
    """Poll ``condition`` on the loop until it holds (bounded)."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


def test_one_wake_up_after_several_commits_applies_them_all(tmp_path: Path) -> None:
    """Three updates, one notification: one rebuild, current with the newest revision."""
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)
    plane = app.build(config)
    store = ManualStore(plane.store)
    sync = Sync(store, plane.ads.cache, plane.ads.status)
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-a", _node(80))

    first: list[str] = []

    async def scenario() -> None:
        running = asyncio.create_task(sync.run())
        try:
            await _until(lambda: store.manual.waits == 1)
            plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY))
            await _until(lambda: KEY in sync.published)
            assert sync.builds[KEY] == 1
            first.append(sync.published[KEY].version)
            for port in (81, 82, 83):
                svc.update(kinds.VIRTUAL_NODE, MESH, "vn-a", _node(port))
            store.manual.bell.set()
            await _until(lambda: sync.published[KEY].revision == plane.store.revision())
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    try:
        asyncio.run(scenario())
        assert plane.store.revision() == 5
        assert sync.builds[KEY] == 2
        mesh = snapshots.mesh_snapshot(plane.store, MESH)
        assert mesh is not None
        assert mesh.virtual_nodes["vn-a"].spec.listeners[0].port_mapping.port == 83
        built = building.build(mesh, NodeIdentity(mesh=MESH, kind="virtualNode", name="vn-a"))
        expected = Snapshot.of(
            (
                *built.listeners,
                *built.route_configurations,
                *built.clusters,
                *built.cluster_load_assignments,
            ),
            ResourceEncoder(),
        )
        assert sync.published[KEY].version == expected.version
        assert sync.published[KEY].version != first[0]
    finally:
        plane.store.close()


def test_a_sync_behind_the_compacted_feed_rereads_and_catches_up(tmp_path: Path) -> None:
    """Changes it missed were compacted away: it rereads the mesh whole and is current."""
    config = settings.load(
        environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0, feed_keep_revisions=1
    )
    plane = app.build(config)
    store = ManualStore(plane.store)
    sync = Sync(store, plane.ads.cache, plane.ads.status)
    svc = plane.services.resources
    svc.create(kinds.MESH, MESH, MESH, {})
    svc.create(kinds.VIRTUAL_NODE, MESH, "vn-a", _node(80))

    async def scenario() -> None:
        running = asyncio.create_task(sync.run())
        try:
            await _until(lambda: store.manual.waits == 1)
            plane.ads.status.record_connected(KEY, base_pb2.Node(id=KEY))
            await _until(lambda: KEY in sync.published)
            assert sync.builds[KEY] == 1
            for port in (81, 82, 83):
                svc.update(kinds.VIRTUAL_NODE, MESH, "vn-a", _node(port))
            upkeep = plane.maintain()
            assert (upkeep.changes, upkeep.floor) == (4, 4)  # revisions 1-4 gone, 5 kept
            store.manual.bell.set()
            await _until(lambda: sync.published[KEY].revision == plane.store.revision() == 5)
            assert sync.builds[KEY] == 2
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    try:
        asyncio.run(scenario())
        mesh = snapshots.mesh_snapshot(plane.store, MESH)
        assert mesh is not None
        built = building.build(mesh, NodeIdentity(mesh=MESH, kind="virtualNode", name="vn-a"))
        expected = Snapshot.of(
            (
                *built.listeners,
                *built.route_configurations,
                *built.clusters,
                *built.cluster_load_assignments,
            ),
            ResourceEncoder(),
        )
        assert sync.published[KEY].version == expected.version
    finally:
        plane.store.close()
