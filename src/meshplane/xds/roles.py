"""The two roles the ADS server plays against, so it needs neither the cache nor the board.

Like go-control-plane's ``Cache`` and ``Callbacks`` interfaces: a stream asks a
:class:`SnapshotSource` which snapshot its proxy should run and to be told of the next
one, and reports what happens on it to :class:`StreamCallbacks`. The
:class:`~meshplane.xds.cache.SnapshotCache` and the
:class:`~meshplane.xds.status.StatusBoard` are the implementations meshplane uses; a test,
a benchmark or another control plane can pass its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from envoy.config.core.v3 import base_pb2

from meshplane.xds.snapshot import Snapshot


class SnapshotSource(Protocol):
    """Which snapshot each node key should run, and who wants to hear of a new one."""

    def node_hash(self, node: base_pb2.Node) -> str:
        """The key of the proxy that announced ``node``."""

    def snapshot(self, key: str) -> Snapshot | None:
        """The snapshot ``key`` should run now, if any."""

    def watch(self, key: str, watcher: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call ``watcher`` with every new snapshot of ``key``; returns the un-watch function."""


class StreamCallbacks(Protocol):
    """What an ADS stream reports, in the order it happens (all on the event loop)."""

    def record_connected(self, key: str, node: base_pb2.Node) -> None:
        """A stream of ``key`` opened; ``node`` is what the proxy announced."""

    def record_disconnected(self, key: str) -> None:
        """A stream of ``key`` closed."""

    def record_sent(self, key: str, type_url: str, version: str) -> None:
        """A response of ``type_url`` at ``version`` was written."""

    def record_acked(self, key: str, type_url: str, version: str, acked: Mapping[str, str]) -> None:
        """The proxy ACKed ``version``, which held ``acked`` (resource name → version)."""

    def record_nacked(self, key: str, type_url: str, version: str, message: str) -> None:
        """The proxy rejected ``version`` with Envoy's ``message``."""

    def record_gate_timeout(self, key: str) -> None:
        """A make-before-break step went ahead without its ACK."""
