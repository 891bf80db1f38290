"""The snapshot cache: which snapshot each proxy should run, keyed by node key.

Modelled on go-control-plane's ``SnapshotCache``: the writer (meshplane's sync
stage) calls :meth:`SnapshotCache.set_snapshot`; every ADS stream of that key
is woken and walks its proxy to the new snapshot. A :data:`NodeHash` maps the
Envoy ``Node`` a stream announces to its key. The default,
:func:`replica_node_key`, is the node id plus the ``meshplane.replica``
metadata entry, because every replica of one App Mesh virtual node announces
the same node id yet may need its own snapshot.

Single-threaded: call it from the event loop that runs the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from envoy.config.core.v3 import base_pb2

from meshplane.xds.snapshot import Snapshot

NodeHash = Callable[[base_pb2.Node], str]
"""Maps the Node an Envoy announces to the key its snapshot is stored under."""

Watcher = Callable[[Snapshot], None]
"""Called with the new snapshot of a watched key, synchronously, in set_snapshot."""

REPLICA_SEPARATOR = "#"


def node_key(node_id: str, replica: str | None = None) -> str:
    """The default key for ``node_id`` (and a replica of it): ``id`` or ``id#replica``."""
    return f"{node_id}{REPLICA_SEPARATOR}{replica}" if replica else node_id


def replica_node_key(node: base_pb2.Node) -> str:
    """Default :data:`NodeHash`: node id plus ``metadata["meshplane"]["replica"]`` if set."""
    replica = None
    meshplane = node.metadata.fields.get("meshplane")
    if meshplane is not None and meshplane.HasField("struct_value"):
        value = meshplane.struct_value.fields.get("replica")
        if value is not None and value.HasField("string_value"):
            replica = value.string_value
    return node_key(node.id, replica)


class SnapshotCache:
    """Snapshots by node key, and the streams waiting for them to change."""

    def __init__(self, node_hash: NodeHash = replica_node_key) -> None:
        """Key proxies with ``node_hash`` (default :func:`replica_node_key`)."""
        self.node_hash = node_hash
        self._snapshots: dict[str, Snapshot] = {}
        self._watchers: dict[str, list[Watcher]] = {}

    def set_snapshot(self, key: str, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the target of ``key`` and wake that key's streams.

        Setting a snapshot equal in content to the current one is a no-op, so a
        writer may rebuild freely without causing pushes.
        """
        if self._snapshots.get(key) == snapshot:
            return
        self._snapshots[key] = snapshot
        for watcher in list(self._watchers.get(key, ())):
            watcher(snapshot)

    def snapshot(self, key: str) -> Snapshot | None:
        """The current snapshot of ``key``, if any."""
        return self._snapshots.get(key)

    def clear_snapshot(self, key: str) -> None:
        """Forget ``key``'s snapshot; connected proxies keep what they have."""
        self._snapshots.pop(key, None)

    def keys(self) -> Iterator[str]:
        """Every key that has a snapshot."""
        return iter(list(self._snapshots))

    def watch(self, key: str, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher`` on every new snapshot of ``key``; returns the un-watch function."""
        self._watchers.setdefault(key, []).append(watcher)

        def unwatch() -> None:
            watchers = self._watchers.get(key, [])
            if watcher in watchers:
                watchers.remove(watcher)
            if not watchers:
                self._watchers.pop(key, None)

        return unwatch
