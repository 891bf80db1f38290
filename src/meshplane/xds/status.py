"""What every proxy has been sent, has ACKed and has rejected: the operator's view.

The ADS streams report :data:`StreamEvent` values to a :class:`StatusBoard` (through
the :class:`~meshplane.xds.roles.StreamCallbacks` methods); its state is nothing but the
fold of those events (:func:`fold`), so it is never kept twice; everyone else reads it.
Per node key it keeps whether a proxy is connected, its node, and per type URL
the last sent and ACKed versions, the names and versions the proxy has ACKed,
and the last NACK with Envoy's own error message (App Mesh users want to know
*why* a route was rejected). Entries are immutable values, replaced on change.

The board forgets: of the proxies whose every stream has closed it keeps only
the :data:`KEEP_DISCONNECTED` most recent (an operator still sees a proxy that
just went away, and its last NACK), so memory stays bounded however many
unique node ids connect and leave.

Two ways to follow changes without polling:

- :meth:`StatusBoard.wait_for` / :meth:`StatusBoard.wait_synced` await a
  condition ("node X has ACKed snapshot S") — used by tests and benchmarks
  instead of sleeping, and by a CLI ``status --wait``.
- :meth:`StatusBoard.subscribe` registers an observer called with every
  :data:`StatusEvent` (connect, disconnect, ACK, NACK), e.g. for the sync stage
  to build a snapshot for a proxy that just connected.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from envoy.config.core.v3 import base_pb2

from meshplane.envoy import resources as envoy_resources
from meshplane.kit.clock import Clock
from meshplane.xds.snapshot import Snapshot


@dataclasses.dataclass(frozen=True)
class Nack:
    """A rejected response: its version, Envoy's error message and when it came."""

    version: str
    message: str
    at: float


@dataclasses.dataclass(frozen=True)
class TypeStatus:
    """One proxy's state for one type URL."""

    sent_version: str | None = None
    acked_version: str | None = None
    acked: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Resource name → resource version of the last ACKed response."""
    responses: int = 0
    nacks: int = 0
    last_nack: Nack | None = None


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """One proxy (node key) as the control plane sees it."""

    key: str
    node: base_pb2.Node
    """The Node the proxy announced (treat as read-only)."""
    streams: int = 0
    resumed: str = ""
    """The version the proxy said it ran when its newest stream opened (``""``: nothing)."""
    connected_at: float | None = None
    disconnected_at: float | None = None
    gate_timeouts: int = 0
    """Make-before-break steps that went ahead without their ACK (see server docs)."""
    types: Mapping[str, TypeStatus] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def connected(self) -> bool:
        """Whether at least one ADS stream of this key is open."""
        return self.streams > 0

    def type_status(self, type_url: str) -> TypeStatus:
        """The state of one type (empty if never requested)."""
        return self.types.get(type_url, _NO_TYPE)

    def has_acked(self, snapshot: Snapshot) -> bool:
        """Whether the proxy runs exactly ``snapshot``: every type it needs is ACKed.

        CDS and LDS must match in full. EDS and RDS are sent by name, so each
        name referenced by the snapshot's clusters and listeners, and every
        secret, must be ACKed at the snapshot's version.
        """
        # An ACKed version equal to the snapshot's own for the type is the same content
        # (versions are content hashes): the common case needs no resource-wise check.
        for type_url in envoy_resources.WILDCARD_TYPES:
            status = self.type_status(type_url)
            if status.acked_version == snapshot.type_version(type_url):
                continue
            # The same names at the same versions, judged without building a dict of
            # hundreds: a proxy just given a new snapshot differs at the first name or so.
            acked, expected = status.acked, snapshot.resources(type_url)
            if len(acked) != len(expected) or any(
                acked.get(n) != r.version for n, r in expected.items()
            ):
                return False
        for parent, child in (
            (envoy_resources.CLUSTER, envoy_resources.ENDPOINT),
            (envoy_resources.LISTENER, envoy_resources.ROUTE),
        ):
            status = self.type_status(child)
            if status.acked_version == snapshot.type_version(child):
                continue  # every one of the type, so every one referenced
            acked = status.acked
            present = snapshot.resources(child)
            for resource in snapshot.resources(parent).values():
                for ref in resource.references:
                    if ref in present and acked.get(ref) != present[ref].version:
                        return False
        # Every secret a snapshot holds is named by its listeners or clusters.
        status = self.type_status(envoy_resources.SECRET)
        if status.acked_version == snapshot.type_version(envoy_resources.SECRET):
            return True
        secrets = status.acked
        return all(
            secrets.get(name) == secret.version
            for name, secret in snapshot.resources(envoy_resources.SECRET).items()
        )


@dataclasses.dataclass(frozen=True)
class Connected:
    """A stream of ``key`` opened (``node`` is what the proxy announced)."""

    key: str
    node: base_pb2.Node
    resumed: str = ""
    """The version the proxy already runs from an earlier stream (``""``: a new proxy)."""


@dataclasses.dataclass(frozen=True)
class Disconnected:
    """A stream of ``key`` closed."""

    key: str


@dataclasses.dataclass(frozen=True)
class Sent:
    """A response of ``type_url`` at ``version`` was written to ``key``'s proxy."""

    key: str
    type_url: str
    version: str


@dataclasses.dataclass(frozen=True)
class Acked:
    """The proxy of ``key`` accepted ``version`` of ``type_url``."""

    key: str
    type_url: str
    version: str
    resources: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Resource name → version of what the ACKed response held."""


@dataclasses.dataclass(frozen=True)
class Nacked:
    """The proxy of ``key`` rejected a response of ``type_url``."""

    key: str
    type_url: str
    nack: Nack


@dataclasses.dataclass(frozen=True)
class GateTimedOut:
    """A make-before-break step of ``key`` went ahead without its ACK."""

    key: str


StatusEvent = Connected | Disconnected | Acked | Nacked
"""The events observers hear: the changes of a proxy's sync state."""
StreamEvent = Connected | Disconnected | Sent | Acked | Nacked | GateTimedOut
"""Everything a stream reports; the board's state is the fold of these (:func:`fold`)."""
Observer = Callable[[StatusEvent], None]


_Frozen = TypeVar("_Frozen", "NodeStatus", "TypeStatus")


def _evolve(value: _Frozen, **changes: Any) -> _Frozen:
    """``dataclasses.replace(value, **changes)`` without re-running ``__init__``.

    Every send and ACK of every stream folds into two new values; the generic replace
    (field introspection, then a frozen ``__init__`` that sets field by field) was a
    tenth of a push's CPU. These classes have no ``__post_init__`` to skip.
    """
    evolved = object.__new__(type(value))
    evolved.__dict__.update(value.__dict__, **changes)
    return evolved


_NO_TYPE = TypeStatus()


def fold(old: NodeStatus | None, event: StreamEvent, now: float) -> NodeStatus:
    """The status after ``event``: the board keeps no state but what this derives.

    ``now`` stamps connections and disconnections (other events carry their own times).
    Sends and ACKs, one of each per response to every stream, are tested for first.
    """
    if isinstance(event, Sent):
        if old is None:
            raise KeyError(f"{event!r} for a node key that never connected")
        was = old.types.get(event.type_url, _NO_TYPE)
        new = _evolve(was, sent_version=event.version, responses=was.responses + 1)
        return _evolve(old, types=MappingProxyType({**old.types, event.type_url: new}))
    if isinstance(event, Acked):
        if old is None:
            raise KeyError(f"{event!r} for a node key that never connected")
        # record_acked hands over a private read-only copy; anything else is copied here.
        resources = (
            event.resources
            if isinstance(event.resources, MappingProxyType)
            else MappingProxyType(dict(event.resources))
        )
        was = old.types.get(event.type_url, _NO_TYPE)
        new = _evolve(was, acked_version=event.version, acked=resources)
        return _evolve(old, types=MappingProxyType({**old.types, event.type_url: new}))
    if isinstance(event, Connected):
        # A new stream starts from nothing sent or ACKed, but an operator still
        # wants to see the last rejection after the proxy reconnects.
        kept = {
            t: TypeStatus(nacks=s.nacks, last_nack=s.last_nack)
            for t, s in (old.types.items() if old else ())
            if s.last_nack is not None
        }
        return NodeStatus(
            key=event.key,
            node=event.node,
            streams=(old.streams if old else 0) + 1,
            resumed=event.resumed,
            connected_at=now,
            types=MappingProxyType(kept),
        )
    if old is None:
        raise KeyError(f"{event!r} for a node key that never connected")
    if isinstance(event, Disconnected):
        return _evolve(old, streams=max(old.streams - 1, 0), disconnected_at=now)
    if isinstance(event, GateTimedOut):
        return _evolve(old, gate_timeouts=old.gate_timeouts + 1)
    was = old.types.get(event.type_url, _NO_TYPE)
    new = _evolve(was, nacks=was.nacks + 1, last_nack=event.nack)
    return _evolve(old, types=MappingProxyType({**old.types, event.type_url: new}))


_STAMPED = (Connected, Disconnected)
"""The events :meth:`StatusBoard.record` stamps with the clock."""
_UNHEARD = (Sent, GateTimedOut)
"""The events only stream observers hear (they change no proxy's sync state)."""


KEEP_DISCONNECTED = 256
"""Disconnected proxies the board remembers, the most recently gone first to be kept."""


class StatusBoard:
    """Per node key status, written by ADS streams, read by operators and tests."""

    def __init__(
        self,
        clock: Clock,
        logger: logging.Logger | None = None,
        keep_disconnected: int = KEEP_DISCONNECTED,
    ) -> None:
        """Timestamp entries with ``clock``; log observer failures to ``logger``.

        ``keep_disconnected`` bounds how many proxies with no open stream are remembered.
        """
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._nodes: dict[str, NodeStatus] = {}
        self._keep = keep_disconnected
        self._gone: collections.OrderedDict[str, None] = collections.OrderedDict()
        """Keys with no open stream, oldest disconnection first."""
        self._observers: list[Observer] = []
        self._stream_observers: list[Callable[[StreamEvent], None]] = []
        self._changed = asyncio.Event()
        self._waiting = 0
        """How many :meth:`wait_for` calls wait: with none, a change needs no new Event."""

    # -- reading ---------------------------------------------------------------

    def nodes(self) -> Mapping[str, NodeStatus]:
        """Every connected node key and the recently disconnected ones, read-only."""
        return MappingProxyType(dict(self._nodes))

    def node(self, key: str) -> NodeStatus | None:
        """The status of one node key, if it is connected or recently disconnected."""
        return self._nodes.get(key)

    async def wait_for(
        self, key: str, predicate: Callable[[NodeStatus], bool], timeout: float
    ) -> NodeStatus:
        """Wait until ``key``'s status satisfies ``predicate``; TimeoutError after ``timeout``."""
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    status = self._nodes.get(key)
                    if status is not None and predicate(status):
                        return status
                    await changed.wait()
        finally:
            self._waiting -= 1

    async def wait_synced(self, key: str, snapshot: Snapshot, timeout: float) -> NodeStatus:
        """Wait until ``key``'s proxy has ACKed every type of ``snapshot``."""
        return await self.wait_for(key, lambda s: s.has_acked(snapshot), timeout)

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer`` with every event; returns the unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def subscribe_stream(self, observer: Callable[[StreamEvent], None]) -> Callable[[], None]:
        """Call ``observer`` with every stream event, sends included (for metrics)."""
        self._stream_observers.append(observer)
        return lambda: (
            self._stream_observers.remove(observer) if observer in self._stream_observers else None
        )

    # -- recording (ADS streams only) ------------------------------------------

    def record(self, event: StreamEvent) -> None:
        """Fold one stream event into the board, then tell observers of sync-state changes."""
        # Tuples, not ``A | B``: a union is built anew at each evaluation (once per event).
        now = self._clock() if isinstance(event, _STAMPED) else 0.0
        status = fold(self._nodes.get(event.key), event, now)
        self._put(status)
        if status.streams > 0:
            if self._gone:
                self._gone.pop(status.key, None)
        elif isinstance(event, Disconnected):
            self._gone[status.key] = None
            self._gone.move_to_end(status.key)
            while len(self._gone) > self._keep:
                forgotten, _ = self._gone.popitem(last=False)
                del self._nodes[forgotten]
        for observer in tuple(self._stream_observers) if self._stream_observers else ():
            try:
                observer(event)
            except Exception:  # a metrics bug must not break an ADS stream
                self._log.exception("stream observer %r failed on %r", observer, event)
        if not isinstance(event, _UNHEARD):
            self._emit(event)

    # The StreamCallbacks the ADS server calls: each one is an event, recorded.

    def record_connected(self, key: str, node: base_pb2.Node, *, resumed: str = "") -> None:
        """A stream of ``key`` opened (``resumed``: the version it already runs, if any)."""
        self.record(Connected(key, node, resumed))

    def record_disconnected(self, key: str) -> None:
        """A stream of ``key`` closed."""
        self.record(Disconnected(key))

    def record_sent(self, key: str, type_url: str, version: str) -> None:
        """A response of ``type_url`` at ``version`` was written to ``key``'s proxy."""
        self.record(Sent(key, type_url, version))

    def record_acked(self, key: str, type_url: str, version: str, acked: Mapping[str, str]) -> None:
        """``key``'s proxy ACKed ``version``, which held ``acked`` (name → version).

        A read-only ``acked`` (``MappingProxyType``: the ADS stream's shared one, never
        changed) is kept as it is; anything else is copied.
        """
        if not isinstance(acked, MappingProxyType):
            acked = MappingProxyType(dict(acked))
        self.record(Acked(key, type_url, version, acked))

    def record_nacked(self, key: str, type_url: str, version: str, message: str) -> None:
        """``key``'s proxy rejected ``version`` with Envoy's ``message``."""
        self.record(Nacked(key, type_url, Nack(version=version, message=message, at=self._clock())))

    def record_gate_timeout(self, key: str) -> None:
        """A make-before-break step of ``key`` went ahead without its ACK."""
        self.record(GateTimedOut(key))

    def _put(self, status: NodeStatus) -> None:
        self._nodes[status.key] = status
        if self._waiting:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _emit(self, event: StatusEvent) -> None:
        for observer in tuple(self._observers):
            try:
                observer(event)
            except Exception:  # an observer bug must not break an ADS stream
                self._log.exception("status observer %r failed on %r", observer, event)
