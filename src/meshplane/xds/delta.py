"""One incremental (delta) ADS stream: only what changed, and the same safe ordering.

A :class:`DeltaStream` serves one Envoy over ``DeltaAggregatedResources``. It serves
the snapshots the state-of-the-world :class:`~meshplane.xds.stream.AdsStream` serves,
reports to the same :class:`~meshplane.xds.roles.StreamCallbacks` (so proxy-status reads
SYNCED, STALE or NACKED alike), admits streams through the same authenticator and walks
a new snapshot in the same ACK-gated make-before-break steps. What differs is the wire:
a response carries only the resources whose version the proxy does not hold yet, and
the names it must drop (``removed_resources``), so an endpoint change sends one
ClusterLoadAssignment instead of every one the proxy subscribes to.

Protocol rules it follows (the xDS incremental protocol; ``xds-envoy-notes.md`` §15):

- a type's first request with no names is a wildcard subscription for CDS and LDS
  (Envoy's legacy wildcard), and ``*`` subscribes to a type as a whole; EDS, RDS and
  SDS are subscribed by name;
- ``initial_resource_versions`` (a reconnect) seeds what the proxy holds, so
  resources it already runs are not sent again;
- a name subscribed anew is sent even if the proxy held it (it asks because it wants
  it now), and a subscribed name the snapshot lacks is answered as removed, so Envoy
  does not wait for it;
- every first request of a type is answered, even with nothing;
- each response has its own nonce; a request carrying one ACKs that response (or
  NACKs it with ``error_detail``), and responses older than it are settled with it;
- what the proxy was *sent* (not what it ACKed) decides what is sent next, so a
  rejected version is never resent in a loop (``xds-envoy-notes.md`` §16): only a
  change is sent.

Per type the stream tracks ``held``: name → the resource the proxy has been sent (a
stand-in with just a version for what a reconnecting proxy says it runs). The
version a response reports (``system_version_info``, and what the board records as
sent and ACKed) is :func:`~meshplane.xds.snapshot.version_of` over ``held``, the same
hash the SotW stream reports for the same resources, so status reads alike for both.

Make-before-break is the SotW stream's (see its module docs): secrets, then clusters
and endpoints added (old and new together; an added cluster's endpoints right behind
it, before Envoy subscribes to them — a subscription that arrives while that response
is unsettled needs no resend, one that arrives after it is answered again), gated on
their ACK and on the endpoints of every added cluster being ACKed and subscribed to;
listeners; routes; and only then the stale clusters, endpoints and secrets removed.
A NACK abandons the walk; a gate that outlives ``ack_timeout`` is recorded and the
walk goes on. A step skips a type whose version did not change, so a weight flip costs
one route comparison, not five, and a bare ACK (no subscription change) only moves the
walk on.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from envoy.service.discovery.v3 import discovery_pb2

from meshplane.envoy.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    TYPE_URLS,
    WILDCARD_TYPES,
)
from meshplane.kit.timers import Timer
from meshplane.xds import stream as sotw
from meshplane.xds import wire
from meshplane.xds.lifecycle import Gate, Step, StreamLifecycle, Writer
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
)
from meshplane.xds.snapshot import Resource, Snapshot, version_of

WILDCARD = "*"
"""The name that subscribes to every resource of a type."""
MAX_IN_FLIGHT = 64
"""Unsettled responses remembered per type; a proxy that never ACKs cannot grow the stream."""


@dataclasses.dataclass
class _Subscription:
    """What the proxy subscribed to, holds and has ACKed for one type URL."""

    requested: bool = False
    wildcard: bool = False
    names: set[str] = dataclasses.field(default_factory=set)
    resend: set[str] = dataclasses.field(default_factory=set)
    """Names subscribed anew: sent (or answered as removed) even if already held."""
    ahead: set[str] = dataclasses.field(default_factory=set)
    """Names offered before the proxy subscribed to them (added clusters' endpoints)."""
    ahead_nonce: str | None = None
    """The response that carried ``ahead``: a subscription before its ACK needs no resend."""
    answered: bool = False
    held: dict[str, Resource] = dataclasses.field(default_factory=dict)
    """Name → what the proxy has been sent and not told to remove (or said it runs)."""
    in_flight: collections.OrderedDict[str, tuple[str, dict[str, str]]] = dataclasses.field(
        default_factory=collections.OrderedDict
    )
    """Nonce → (version, ``held`` after it) of responses not yet ACKed or NACKed, oldest first."""
    nonce: str | None = None
    acked_nonce: str | None = None
    acked: dict[str, str] = dataclasses.field(default_factory=dict)
    nacks: int = 0

    def latest_acked(self) -> bool:
        """Whether the last response sent has been ACKed."""
        return self.nonce is not None and self.acked_nonce == self.nonce


class DeltaStream(StreamLifecycle):
    """Serves one proxy over one delta ADS stream until the proxy or server ends it."""

    LABEL = "delta"

    def __init__(
        self,
        *,
        cache: SnapshotSource,
        board: StreamCallbacks,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        write: Writer,
        ack_timeout: float,
        logger: logging.Logger,
        timer: Timer | None = None,
        authenticator: StreamAuthenticator | AsyncStreamAuthenticator | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Serve ``requests`` as :class:`~meshplane.xds.lifecycle.StreamLifecycle` says."""
        super().__init__(
            cache=cache,
            board=board,
            requests=requests,
            write=write,
            ack_timeout=ack_timeout,
            logger=logger,
            timer=timer,
            authenticator=authenticator,
            metadata=metadata,
        )
        self._subs = {t: _Subscription() for t in TYPE_URLS}
        self._targets: dict[str, dict[str, Resource]] | None = None
        self._current: Snapshot | None = None
        """The snapshot the targets equal exactly (None while a walk is under way)."""
        self._pending: Snapshot | None = None
        self._walk: tuple[Snapshot | None, Snapshot] | None = None
        """(running, new) of the walk under way, if any; ``_step`` is its next step."""
        self._step = 0

    # -- requests ----------------------------------------------------------------

    async def _start(self, request: discovery_pb2.DeltaDiscoveryRequest) -> str:
        node = request.node
        # Admission before anything is recorded, watched or sent, as on a SotW stream.
        key = await self._admit(node)
        # A reconnecting proxy names what it runs; the sync stage reads "resumed" as
        # "this proxy runs config already" (a SotW proxy's version_info says the same).
        held = request.initial_resource_versions
        resumed = version_of(_runs(request.type_url, n, v) for n, v in held.items()) if held else ""
        self._board.record_connected(key, node, resumed=resumed)
        self._log.info("xds: %s connected over delta ADS (node %s)", key, node.id)
        snapshot = self._cache.snapshot(key)
        if snapshot is not None:
            self._adopt(snapshot)
        return key

    async def _on_request(self, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        key = self._key if self._key is not None else await self._start(request)
        type_url = request.type_url
        sub = self._subs.get(type_url)
        if sub is None:
            self._log.warning("xds: %s requested unsupported type %s", key, type_url)
            return
        if request.response_nonce:
            self._settle(key, type_url, sub, request)
        first = not sub.requested
        sub.requested = True
        initial = request.initial_resource_versions
        if first:
            # Envoy's legacy wildcard: CDS/LDS asked for with no names at all.
            sub.wildcard = type_url in WILDCARD_TYPES and not request.resource_names_subscribe
            for name, version in initial.items():
                sub.held[name] = _runs(type_url, name, version)
        for name in request.resource_names_subscribe:
            if name == WILDCARD:
                sub.wildcard = True
                continue
            sub.names.add(name)
            if name in sub.ahead:
                sub.ahead.discard(name)
                # Sent ahead and not settled yet: the proxy subscribed before it read that
                # response, so the response reaches the new watch; sending it again is waste.
                if sub.ahead_nonce in sub.in_flight and name in sub.held:
                    continue
            if name not in initial:
                sub.resend.add(name)
        for name in request.resource_names_unsubscribe:
            if name == WILDCARD:
                sub.wildcard = False
                continue
            sub.names.discard(name)
            sub.resend.discard(name)
            if not sub.wildcard:
                sub.held.pop(name, None)
        # A bare ACK or NACK changes no subscription, so it changes nothing to send (unlike
        # SotW, where an ACK may carry new names): only the make-before-break walk goes on.
        if first or request.resource_names_subscribe or request.resource_names_unsubscribe:
            await self._reconcile(type_url)

    def _settle(
        self,
        key: str,
        type_url: str,
        sub: _Subscription,
        request: discovery_pb2.DeltaDiscoveryRequest,
    ) -> None:
        """Record the ACK or NACK ``request`` carries; older responses settle with it."""
        nonce = request.response_nonce
        if nonce not in sub.in_flight:
            # A nonce of an older stream, or one settled already: nothing to record.
            self._log.debug("xds: %s unknown nonce %s for %s", key, nonce, type_url)
            return
        while True:
            settled, (version, held) = sub.in_flight.popitem(last=False)
            if settled == nonce:
                break
        if request.HasField("error_detail"):
            message = sotw.truncated(request.error_detail.message)
            sub.nacks += 1
            self._board.record_nacked(key, type_url, version, message)
            self._log_nack(key, type_url, version, message)
            return
        sub.acked_nonce = nonce
        sub.acked = held  # each response keeps its own copy: never mutated
        self._board.record_acked(key, type_url, version, held)

    async def _reconcile(self, type_url: str) -> bool:
        """Send what changed of ``type_url`` since the proxy was last sent it; True if sent."""
        sub = self._subs[type_url]
        if self._targets is None or not sub.requested:
            return False  # no snapshot yet: hold the request, as the SotW stream does
        pool = self._targets[type_url]
        if sub.wildcard:
            chosen: Mapping[str, Resource] = pool
        else:
            chosen = {n: pool[n] for n in sub.names if n in pool}
            chosen.update((n, pool[n]) for n in sub.ahead if n in pool)
        held, resend = sub.held, sub.resend
        # Resources are interned (ResourceEncoder): the same object is the same content.
        changed = [r for n, r in chosen.items() if n in resend or not _same(held.get(n), r)]
        # Held names no longer offered, and names asked for that do not exist.
        removed = [n for n in held if n not in chosen]
        removed += [n for n in resend if n not in chosen and n not in held]
        if sub.answered and not changed and not removed:
            sub.resend.clear()
            return False
        for resource in changed:
            held[resource.name] = resource
        for name in removed:
            held.pop(name, None)
        sub.resend = set()
        version = version_of(held.values())
        self._nonces += 1
        nonce = str(self._nonces)
        changed.sort(key=_name)
        removed.sort()
        response = wire.delta_discovery_response(
            version,
            [framed(r) for r in changed],
            type_url,
            removed,
            nonce,
        )
        sub.answered = True
        sub.nonce = nonce
        sub.in_flight[nonce] = (version, {n: r.version for n, r in held.items()})
        if len(sub.in_flight) > MAX_IN_FLIGHT:
            sub.in_flight.popitem(last=False)
        assert self._key is not None
        self._board.record_sent(self._key, type_url, version)
        self._log.debug(
            "xds: %s <- delta %s %s (+%d -%d)",
            self._key,
            type_url,
            version,
            len(changed),
            len(removed),
        )
        await self._write(response)
        return True

    # -- snapshots and make-before-break ----------------------------------------------

    def _adopt(self, snapshot: Snapshot) -> None:
        # A proxy that runs nothing from us yet needs no ordering: Envoy itself
        # initialises clusters, then endpoints, then listeners and routes.
        self._targets = {t: dict(snapshot.resources(t)) for t in TYPE_URLS}
        self._current = snapshot

    async def _on_snapshot(self, snapshot: Snapshot) -> None:
        if self._targets is None:
            self._adopt(snapshot)
            for type_url in TYPE_URLS:
                await self._reconcile(type_url)
            return
        self._pending = snapshot

    def _nacks(self, type_url: str) -> int:
        return self._subs[type_url].nacks

    def _abandon_walk(self) -> None:
        self._walk = None
        self._subs[ENDPOINT].ahead = set()

    def _next_step(self) -> Step | None:
        if self._walk is None:
            if self._pending is None:
                return None
            self._walk, self._pending = (self._current, self._pending), None
            self._current, self._step = None, 0
        base, new = self._walk
        step = _STEPS[self._step]
        self._step += 1
        if self._step == len(_STEPS):
            self._walk = None
        return functools.partial(step, self, base, new)

    async def _add_clusters(self, base: Snapshot | None, new: Snapshot) -> Gate | None:
        """Step 1: new secrets, and old and new clusters and endpoints together."""
        assert self._targets is not None
        targets = self._targets
        if _changed(base, new, SECRET):
            targets[SECRET] = {**targets[SECRET], **new.resources(SECRET)}
            await self._reconcile(SECRET)
        clusters_changed = _changed(base, new, CLUSTER)
        before = set(targets[CLUSTER]) if clusters_changed else set()
        clusters_sent = False
        if clusters_changed:
            targets[CLUSTER] = {**targets[CLUSTER], **new.resources(CLUSTER)}
            clusters_sent = await self._reconcile(CLUSTER)
        endpoints_changed = _changed(base, new, ENDPOINT)
        if endpoints_changed:
            targets[ENDPOINT] = {**targets[ENDPOINT], **new.resources(ENDPOINT)}
        # Clusters unchanged since the running snapshot add nothing that could be warming.
        warming = {
            ref
            for name, cluster in (new.resources(CLUSTER).items() if clusters_changed else ())
            if name not in before
            for ref in cluster.references
            if ref in targets[ENDPOINT]
        }
        cds, eds = self._subs[CLUSTER], self._subs[ENDPOINT]
        ahead = set()
        if clusters_sent and eds.requested and not eds.wildcard:
            ahead = warming - eds.names
        if ahead:
            # The added clusters' endpoints right behind the CDS response, as on a SotW
            # stream: Envoy reads one response at a time, so the clusters and their EDS
            # subscriptions exist when it reads this one.
            eds.ahead = ahead
        sent = (endpoints_changed or bool(ahead)) and await self._reconcile(ENDPOINT)
        if sent and ahead:
            eds.ahead_nonce = eds.nonce
        if _changed(base, new, ROUTE):
            # Route configurations only new listeners name are safe to offer early.
            targets[ROUTE] = {**new.resources(ROUTE), **targets[ROUTE]}
            await self._reconcile(ROUTE)
        if not clusters_sent and not warming:
            return None

        def ready() -> bool:
            # Warm = its endpoints ACKed and subscribed to (so a watch took them).
            return (
                (not clusters_sent or cds.latest_acked())
                and warming <= eds.acked.keys()
                and warming <= eds.names
            )

        return self._gate_on("add clusters", ready, CLUSTER, ENDPOINT)

    async def _replace_listeners(self, base: Snapshot | None, new: Snapshot) -> Gate | None:
        """Step 2: the new listeners; wait for their ACK."""
        assert self._targets is not None
        if not _changed(base, new, LISTENER):
            return None
        self._targets[LISTENER] = dict(new.resources(LISTENER))
        if not await self._reconcile(LISTENER):
            return None
        return self._gate_on("replace listeners", self._subs[LISTENER].latest_acked, LISTENER)

    async def _replace_routes(self, base: Snapshot | None, new: Snapshot) -> Gate | None:
        """Step 3: the new route configurations; wait for their ACK."""
        assert self._targets is not None
        if not _changed(base, new, ROUTE):
            return None
        self._targets[ROUTE] = dict(new.resources(ROUTE))
        if not await self._reconcile(ROUTE):
            return None
        return self._gate_on("replace routes", self._subs[ROUTE].latest_acked, ROUTE)

    async def _prune_clusters(self, base: Snapshot | None, new: Snapshot) -> Gate | None:
        """Step 4: exactly the new clusters, endpoints and secrets; no route names the stale."""
        assert self._targets is not None
        eds = self._subs[ENDPOINT]
        # Offered ahead and never subscribed to: no cluster of the proxy wants them.
        offered, eds.ahead = bool(eds.ahead), set()
        for type_url in (CLUSTER, ENDPOINT, SECRET):
            if _changed(base, new, type_url) or (offered and type_url == ENDPOINT):
                self._targets[type_url] = dict(new.resources(type_url))
                await self._reconcile(type_url)
        # The targets are exactly ``new`` now: the next walk may skip what it leaves alone.
        self._current = new
        return None


_DeltaStep = Callable[[DeltaStream, Snapshot | None, Snapshot], Awaitable[Gate | None]]
_STEPS: tuple[_DeltaStep, ...] = (
    DeltaStream._add_clusters,
    DeltaStream._replace_listeners,
    DeltaStream._replace_routes,
    DeltaStream._prune_clusters,
)
"""The make-before-break walk, in order (module docs)."""


def _changed(base: Snapshot | None, new: Snapshot, type_url: str) -> bool:
    """Whether ``type_url`` may differ between the running ``base`` and ``new``."""
    return base is None or base.type_version(type_url) != new.type_version(type_url)


def _name(resource: Resource) -> str:
    return resource.name


def _same(held: Resource | None, offered: Resource) -> bool:
    """Whether the proxy holds ``offered`` already (by identity first: they are interned)."""
    return held is offered or (held is not None and held.version == offered.version)


def _runs(type_url: str, name: str, version: str) -> Resource:
    """A stand-in for a resource a reconnecting proxy says it runs: its name and version."""
    return Resource(type_url, name, version, b"", b"", ())


def framed(resource: Resource) -> bytes:
    """``resource`` as a ``DeltaDiscoveryResponse.resources`` entry."""
    return wire.delta_resource(resource.name, resource.version, resource.framed)
