"""Propagation: observed when all re-published proxies ACKed; bounded when one never does."""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from prometheus_client import CollectorRegistry

from meshplane.envoy import CLUSTER, LISTENER
from meshplane.kit.clock import FakeClock
from meshplane.sync import metering
from meshplane.sync.proxyviews import ProxyViews
from meshplane.sync.syncing import PublishPass
from meshplane.xds import SnapshotCache, StatusBoard
from meshplane.xds.snapshot import Snapshot

KEY = "mesh/demos/virtualNode/vn-a"


class FakeSync:
    """A sync stage by hand: its last pass and the after-pass observers."""

    def __init__(self) -> None:
        self.published: dict[str, object] = {}
        self.last_pass = PublishPass(None)
        self.observers: list[Callable[[], None]] = []

    def subscribe(self, observer: Callable[[], None]) -> Callable[[], None]:
        self.observers.append(observer)
        return lambda: None

    def finish(self, done: PublishPass) -> None:
        self.last_pass = done
        for observer in self.observers:
            observer()


def parts() -> tuple[FakeSync, StatusBoard, SnapshotCache, metering.SyncMetrics, FakeClock]:
    clock = FakeClock()
    sync, board, cache = FakeSync(), StatusBoard(clock), SnapshotCache()
    views = ProxyViews(sync, cache, board, lambda: 1)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    metrics = metering.SyncMetrics(registry, sync, board, cache, views, lambda: 1, clock)  # type: ignore[arg-type]
    return sync, board, cache, metrics, clock


def count(metrics: metering.SyncMetrics) -> float:
    return next(
        s.value for s in metrics.propagation.collect()[0].samples if s.name.endswith("_count")
    )


def test_a_change_is_observed_once_its_proxy_acks_the_snapshot() -> None:
    """Commit at t, ACK at t+0.25: one observation, of 0.25 s."""
    sync, board, cache, metrics, clock = parts()
    board.record_connected(KEY, base_pb2.Node(id=KEY))
    snapshot = Snapshot.of([cluster_pb2.Cluster(name="c")])
    cache.set_snapshot(KEY, snapshot)
    started = clock()
    sync.finish(PublishPass(started, ((KEY, snapshot.version),), (0.002,)))
    assert count(metrics) == 0
    clock.advance(0.25)
    board.record_acked(KEY, LISTENER, "l", {})
    assert count(metrics) == 0
    board.record_acked(KEY, CLUSTER, "c", {"c": snapshot.resources(CLUSTER)["c"].version})
    assert count(metrics) == 1
    sums = [s.value for s in metrics.propagation.collect()[0].samples if s.name.endswith("_sum")]
    assert sums == [0.25]


def test_a_proxy_that_never_acks_keeps_a_bounded_list_and_leaving_observes_nothing() -> None:
    """A NACKing proxy's waits stop at MAX_WAITS; when it leaves none is observed."""
    sync, board, cache, metrics, clock = parts()
    board.record_connected(KEY, base_pb2.Node(id=KEY))
    snapshot = Snapshot.of([cluster_pb2.Cluster(name="c")])
    cache.set_snapshot(KEY, snapshot)
    for _ in range(metering.MAX_WAITS + 5):
        sync.finish(PublishPass(clock(), ((KEY, snapshot.version),)))
    assert len(metrics._waits) == metering.MAX_WAITS
    board.record_disconnected(KEY)
    assert (len(metrics._waits), count(metrics)) == (0, 0)


def test_a_pass_judges_only_the_proxies_it_republished_once_each() -> None:
    """50 waits on a proxy that never ACKs: a pass republishing another judges that one once."""
    sync, board, cache, metrics, clock = parts()
    other = "mesh/demos/virtualNode/vn-b"
    snapshot = Snapshot.of([cluster_pb2.Cluster(name="c")])
    for key in (KEY, other):
        board.record_connected(key, base_pb2.Node(id=key))
        cache.set_snapshot(key, snapshot)
    for _ in range(50):
        sync.finish(PublishPass(clock(), ((KEY, snapshot.version),)))
    judged: list[str] = []
    arrived = metrics._arrived
    metrics._arrived = lambda key: judged.append(key) or arrived(key)  # type: ignore[method-assign]
    sync.finish(PublishPass(clock(), ((other, snapshot.version),)))
    assert judged == [other]
    sync.finish(PublishPass(clock(), ((KEY, snapshot.version),)))
    assert (judged, len(metrics._waits)) == ([other, KEY], 52)
    board.record_acked(KEY, LISTENER, "l", {})
    board.record_acked(KEY, CLUSTER, "c", {"c": snapshot.resources(CLUSTER)["c"].version})
    assert (len(metrics._waits), count(metrics)) == (1, 51)
