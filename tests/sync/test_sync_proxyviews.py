"""The per-proxy read model: one definition of each state, and waits woken by events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2

from meshplane.envoy import CLUSTER, LISTENER
from meshplane.kit.clock import FakeClock
from meshplane.sync.proxyviews import ProxyViews
from meshplane.sync.syncing import Published
from meshplane.translate import diagnostics
from meshplane.xds import SnapshotCache, StatusBoard
from meshplane.xds.snapshot import Snapshot

KEY = "mesh/demos/virtualNode/vn-a"


class FakeSync:
    """Publications by hand: a dict and the after-pass observers."""

    def __init__(self) -> None:
        self.published: dict[str, Published] = {}
        self.held: dict[str, str] = {}
        self.observers: list[Callable[[], None]] = []

    def subscribe(self, observer: Callable[[], None]) -> Callable[[], None]:
        self.observers.append(observer)
        return lambda: self.observers.remove(observer)

    def publish(
        self, key: str, revision: int, warnings: tuple[diagnostics.Warning, ...] = ()
    ) -> None:
        self.published[key] = Published(revision, "v", warnings)
        for observer in list(self.observers):
            observer()


class Parts:
    """A read model over a real board and cache, a fake sync stage and a settable revision."""

    def __init__(self) -> None:
        self.revision = 1
        self.sync = FakeSync()
        self.cache = SnapshotCache()
        self.board = StatusBoard(FakeClock())
        self.views = ProxyViews(self.sync, self.cache, self.board, lambda: self.revision)
        self.snapshot = Snapshot.of([cluster_pb2.Cluster(name="c")])
        self.cache.set_snapshot(KEY, self.snapshot)

    def connect(self) -> None:
        self.board.record_connected(KEY, base_pb2.Node(id=KEY))

    def ack_everything(self) -> None:
        for type_url in (CLUSTER, LISTENER):
            acked = {n: r.version for n, r in self.snapshot.resources(type_url).items()}
            self.board.record_sent(KEY, type_url, type_url[-4:])
            self.board.record_acked(KEY, type_url, type_url[-4:], acked)


def test_a_proxy_goes_stale_synced_nacked_and_disconnected() -> None:
    """Each state has one definition: rebuilt and fully ACKed is SYNCED, a held NACK NACKED."""
    parts = Parts()
    parts.connect()
    assert [p["state"] for p in parts.views.proxies()] == ["STALE"]
    parts.sync.publish(KEY, 1, (diagnostics.Warning(KEY, "wrong-mesh", "w1"),))
    parts.ack_everything()
    (view,) = parts.views.proxies()
    assert (view["state"], view["synced"], view["revision"], view["warnings"]) == (
        "SYNCED",
        True,
        1,
        ["w1"],
    )
    assert view["diagnostics"] == [{"resource": KEY, "code": "wrong-mesh", "message": "w1"}]
    parts.revision = 2
    assert parts.views.report()["converged"] is False
    assert [p["state"] for p in parts.views.proxies()] == ["STALE"]
    parts.sync.publish(KEY, 2)
    assert parts.views.report() == {
        "revision": 2,
        "converged": True,
        "proxies": parts.views.proxies(),
    }
    parts.board.record_sent(KEY, CLUSTER, "next")
    parts.board.record_nacked(KEY, CLUSTER, "next", "bad cluster")
    (view,) = parts.views.proxies()
    assert (view["state"], view["types"]["Cluster"]["lastNack"]) == ("NACKED", "bad cluster")
    parts.board.record_disconnected(KEY)
    assert [p["state"] for p in parts.views.proxies()] == ["DISCONNECTED"]
    assert parts.views.report()["converged"] is True  # nothing connected lags


def test_wait_for_revision_is_woken_by_the_publish_and_the_ack() -> None:
    """A waiter blocks until the proxy is rebuilt at the revision and ACKs, with no polling."""

    async def scenario() -> None:
        parts = Parts()
        parts.connect()
        parts.revision = 3
        waiter = asyncio.create_task(parts.views.wait_for_revision(3, timeout=30))
        for _ in range(3):
            await asyncio.sleep(0)  # let the waiter run; it must still be waiting
        assert not waiter.done()
        parts.sync.publish(KEY, 3)
        await asyncio.sleep(0)
        assert not waiter.done()  # rebuilt but not yet ACKed
        parts.ack_everything()
        report = await asyncio.wait_for(waiter, 30)
        assert (report["revision"], report["converged"]) == (3, True)
        assert [p["state"] for p in report["proxies"]] == ["SYNCED"]

    asyncio.run(scenario())


def test_wait_for_revision_gives_the_laggards_when_time_is_up() -> None:
    """At the timeout the waiter answers with converged false and the stale proxy in it."""

    async def scenario() -> None:
        parts = Parts()
        parts.connect()
        report = await parts.views.wait_for_revision(5, timeout=0)
        assert (report["revision"], report["converged"]) == (5, False)
        assert [(p["key"], p["state"]) for p in report["proxies"]] == [(KEY, "STALE")]

    asyncio.run(scenario())
