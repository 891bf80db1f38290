"""Generic xDS serving: per-node snapshots over ADS, state of the world or incremental (delta).

Layer 2. Owns the snapshot cache, the ADS gRPC server (both ``StreamAggregatedResources``
and ``DeltaAggregatedResources``, :mod:`meshplane.xds.delta`), ACK/NACK tracking,
ACK-gated make-before-break ordering and the sync status operators read. May
import :mod:`meshplane.envoy`, :mod:`meshplane.kit`, ``grpc`` and the Envoy
protos — and knows nothing of App Mesh: it serves whatever Listener,
RouteConfiguration, Cluster and ClusterLoadAssignment protos it is given, to
whatever node keys it is told. Modelled on go-control-plane's cache/server
split.

Public API::

    Snapshot(resources: Iterable[Resource])
    Snapshot.of(messages, encoder: ResourceEncoder | None = None) -> Snapshot
        .version, .resources(type_url) -> Mapping[str, Resource],
        .type_version(type_url), .inconsistencies() -> list[str], .check_consistency()
    ResourceEncoder().encode(message) -> Resource   # share one across snapshots
    Resource(type_url, name, version, body, framed, references).decode()
    InconsistentSnapshotError

    NodeHash = Callable[[Node], str]
    node_key(node_id, replica=None) -> str          # "id" or "id#replica"
    replica_node_key(node) -> str                   # the default NodeHash
    SnapshotCache(node_hash=replica_node_key)
        .set_snapshot(key, snapshot), .snapshot(key), .clear_snapshot(key), .keys(),
        .watch(key, callback) -> unwatch

    SnapshotSource, StreamCallbacks                  # the roles AdsServer depends on
    StreamAuthenticator.admit(key, node, metadata)   # raise Unauthenticated | PermissionDenied
    AsyncStreamAuthenticator.admit_stream(key, node, metadata, revoke) -> release
                                                     # with I/O; revoke(refusal) ends it later
    StreamRefused, Unauthenticated, PermissionDenied # (gRPC UNAUTHENTICATED / PERMISSION_DENIED)
    AdsServer(cache: SnapshotSource, *, callbacks: StreamCallbacks | None = None,
              clock=system_clock, logger=None, ack_timeout=10.0, timer: Timer | None = None,
              authenticator: StreamAuthenticator | None = None)
        .serve_tls(host, port, chain_pem, key_pem)   # before start: ADS over TLS too (.tls_port)
        await .start(host="127.0.0.1", port=0, *, share_port=False) -> int,  # SO_REUSEPORT
        await .stop(grace=None),
        .port, .status: StatusBoard                  # the board callbacks default to

    StatusBoard (read side)
        .nodes() -> Mapping[str, NodeStatus], .node(key) -> NodeStatus | None,
        await .wait_for(key, predicate, timeout) -> NodeStatus,
        await .wait_synced(key, snapshot, timeout) -> NodeStatus,
        .subscribe(observer) -> unsubscribe
    NodeStatus(key, node, streams, connected_at, disconnected_at, gate_timeouts, types)
        .connected, .type_status(type_url) -> TypeStatus, .has_acked(snapshot) -> bool
    TypeStatus(sent_version, acked_version, acked, responses, nacks, last_nack)
    Nack(version, message, at)
    StatusEvent = Connected(key, node) | Disconnected(key)
                | Acked(key, type_url, version, resources) | Nacked(key, type_url, nack)
    StreamEvent = StatusEvent | Sent(key, type_url, version) | GateTimedOut(key)
    fold(old: NodeStatus | None, event: StreamEvent, now) -> NodeStatus   # the board's state

Usage::

    cache = SnapshotCache()
    server = AdsServer(cache)
    port = await server.start("127.0.0.1", 0)
    cache.set_snapshot(node_key("mesh/demos/virtualNode/vn-a"), Snapshot.of(protos, encoder))
    await server.status.wait_synced(key, snapshot, timeout=5)
"""

from meshplane.xds.cache import NodeHash, SnapshotCache, node_key, replica_node_key
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    PermissionDenied,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
    StreamRefused,
    Unauthenticated,
)
from meshplane.xds.server import AdsServer
from meshplane.xds.snapshot import InconsistentSnapshotError, Resource, ResourceEncoder, Snapshot
from meshplane.xds.status import (
    Acked,
    Connected,
    Disconnected,
    GateTimedOut,
    Nack,
    Nacked,
    NodeStatus,
    Sent,
    StatusBoard,
    StatusEvent,
    StreamEvent,
    TypeStatus,
    fold,
)

__all__ = [
    "Acked",
    "AdsServer",
    "AsyncStreamAuthenticator",
    "Connected",
    "Disconnected",
    "GateTimedOut",
    "InconsistentSnapshotError",
    "Nack",
    "Nacked",
    "NodeHash",
    "NodeStatus",
    "PermissionDenied",
    "Resource",
    "ResourceEncoder",
    "Sent",
    "Snapshot",
    "SnapshotCache",
    "SnapshotSource",
    "StatusBoard",
    "StatusEvent",
    "StreamAuthenticator",
    "StreamCallbacks",
    "StreamEvent",
    "StreamRefused",
    "TypeStatus",
    "Unauthenticated",
    "fold",
    "node_key",
    "replica_node_key",
]
