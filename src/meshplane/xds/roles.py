"""The roles the ADS server plays against, so it needs neither the cache nor the board.

Like go-control-plane's ``Cache`` and ``Callbacks`` interfaces: a stream asks a
:class:`SnapshotSource` which snapshot its proxy should run and to be told of the next
one, and reports what happens on it to :class:`StreamCallbacks`. The
:class:`~meshplane.xds.cache.SnapshotCache` and the
:class:`~meshplane.xds.status.StatusBoard` are the implementations meshplane uses; a test,
a benchmark or another control plane can pass its own.

A :class:`StreamAuthenticator` decides whether a stream may be served at all: it sees
the stream's gRPC metadata and the node it announces, before the stream is recorded or
anything is sent, and refuses with :class:`Unauthenticated` (no valid credential) or
:class:`PermissionDenied` (a credential, but not for this node). What a credential is
stays the authenticator's business; the server only maps the refusal to a gRPC status.

An :class:`AsyncStreamAuthenticator` does the same when deciding takes I/O (asking
Kubernetes whether a token is genuine), and it may end an admitted stream later: it is
handed a ``revoke`` function for the stream, for a credential that expired or a
workload that went away. It returns the function the stream calls when it closes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from envoy.config.core.v3 import base_pb2

from meshplane.xds.snapshot import Snapshot


class StreamRefused(Exception):
    """Base of the refusals a :class:`StreamAuthenticator` raises; the message reaches the proxy."""


class Unauthenticated(StreamRefused):
    """The stream carries no valid credential (gRPC UNAUTHENTICATED)."""


class PermissionDenied(StreamRefused):
    """The credential is valid but does not allow this node (gRPC PERMISSION_DENIED)."""


class InvalidNode(StreamRefused):
    """The announced Node breaks a limit, e.g. its size (gRPC INVALID_ARGUMENT)."""


class StreamAuthenticator(Protocol):
    """Admits or refuses a stream from what it carries, before it is served."""

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        """Return to admit the proxy ``key`` announcing ``node``; raise a StreamRefused not to.

        ``metadata`` is the stream's gRPC invocation metadata (lower-case keys).
        """


Revoke = Callable[[StreamRefused], None]
"""Ends one admitted stream with the refusal's gRPC status (the proxy may reconnect)."""


@runtime_checkable
class AsyncStreamAuthenticator(Protocol):
    """Admits or refuses a stream with I/O, and may revoke it while it is open."""

    async def admit_stream(
        self, key: str, node: base_pb2.Node, metadata: Mapping[str, str], revoke: Revoke
    ) -> Callable[[], None]:
        """Return the stream's release function to admit it; raise a StreamRefused not to.

        ``revoke`` ends this stream (and only this one) later; the release function is
        called once when the stream closes, however it ends.
        """


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

    def record_connected(self, key: str, node: base_pb2.Node, *, resumed: str = "") -> None:
        """A stream of ``key`` opened; ``node`` is what the proxy announced.

        ``resumed`` is the ``version_info`` of the stream's first request: the version
        the proxy already runs from an earlier stream (a reconnect), ``""`` for a new one.
        """

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
