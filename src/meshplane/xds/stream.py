"""One state-of-the-world ADS stream: requests, responses, ACKs and safe ordering.

An :class:`AdsStream` serves one Envoy over one gRPC stream. Everything it does
happens on one task, driven by a single inbox of events — requests read from
the proxy, new snapshots from the cache, and gate deadlines — so its state needs
no locks and every decision is made in a well-defined order.

Protocol rules it follows (``xds-envoy-notes.md`` §4):

- every first request of a type on a stream is answered, even with nothing;
- CDS and LDS responses list every resource, EDS and RDS only requested names;
- a request carrying the latest nonce of its type is an ACK, or a NACK when it
  has ``error_detail``; requests carrying an older nonce are stale and dropped;
- the resource names in any current request replace the subscription, so a
  subscription change piggybacked on an ACK is answered at once;
- a response is sent only when its version differs from the last one *sent*,
  so a NACKed version is never resent in a loop — only a change is sent.

Make-before-break (§5.2). When a proxy already runs a snapshot and a new one
arrives, sending all types at once drops requests: a route may name a cluster
that is not warm yet, or a cluster may vanish while a route still names it.
The stream walks the proxy over in ACK-gated steps, skipping those that change
nothing:

1. secrets, then clusters := union of old and new (with their endpoints; a secret's
   new content replaces its old one at once: that is how a rotation lands); the added
   clusters' endpoints go out right behind the CDS response, without waiting for Envoy
   to ask (it reads one response at a time, so the new clusters watch them by then);
   wait for the CDS ACK and for an EDS ACK that holds and names every added cluster's
   endpoints (Envoy only routes to warm clusters);
2. listeners := new; wait for the LDS ACK;
3. routes := new; wait for the RDS ACK;
4. clusters, endpoints and secrets := new, dropping the stale ones.

Hostile proxies are bounded (any local process can open a stream): the Node's
size and the inbox are bounded as for every stream (:mod:`meshplane.xds.lifecycle`,
which also runs the inbox loop, admission and the gates); a NACK's message is kept
to :data:`MAX_NACK_CHARS` and logged at most once per
:data:`~meshplane.xds.lifecycle.NACK_LOG_INTERVAL` seconds per type, with a count
of the ones left out.

A NACK abandons the remaining steps (the proxy keeps its last good config and
nothing it may still use is removed); a gate that outlives ``ack_timeout`` is
recorded and the walk goes on, so a silent proxy cannot wedge the stream.
Snapshots arriving mid-walk are coalesced: the newest one is walked next.
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
from meshplane.xds import wire
from meshplane.xds.lifecycle import Gate, Step, StreamLifecycle, Writer
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
)
from meshplane.xds.snapshot import Resource, Snapshot, version_of

MAX_NACK_CHARS = 2048
"""How much of Envoy's NACK message is kept and logged (Envoy's own are a few hundred)."""


def _same(chosen: Mapping[str, Resource], sent: Mapping[str, str]) -> bool:
    """Whether ``chosen`` holds exactly the names and versions of ``sent``."""
    return len(chosen) == len(sent) and all(
        sent.get(name) == resource.version for name, resource in chosen.items()
    )


def truncated(message: str, limit: int = MAX_NACK_CHARS) -> str:
    """``message`` cut to ``limit`` characters, saying how much was cut."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message) - limit} more characters)"


@dataclasses.dataclass
class _TypeState:
    """What this stream has requested, sent and had ACKed for one type URL."""

    subscribed: bool = False
    names: frozenset[str] = frozenset()
    answered: bool = False
    nonce: str | None = None
    sent_version: str | None = None
    sent: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Name → version of the last response sent: read-only, shared, replaced on each send."""
    acked_nonce: str | None = None
    acked: Mapping[str, str] = dataclasses.field(default_factory=dict)
    nacks: int = 0
    checked: tuple[Mapping[str, Resource], frozenset[str]] | None = None
    """The target pool and names :meth:`AdsStream._reconcile` last judged, once answered."""

    def latest_acked(self) -> bool:
        """Whether the last response sent has been ACKed."""
        return self.nonce is not None and self.acked_nonce == self.nonce


class AdsStream(StreamLifecycle):
    """Serves one proxy over one SotW ADS stream until the proxy or server ends it."""

    def __init__(
        self,
        *,
        cache: SnapshotSource,
        board: StreamCallbacks,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        write: Writer,
        ack_timeout: float,
        logger: logging.Logger,
        timer: Timer | None = None,
        authenticator: StreamAuthenticator | AsyncStreamAuthenticator | None = None,
        metadata: Mapping[str, str] | None = None,
        responses: wire.SharedResponses | None = None,
    ) -> None:
        """Serve ``requests`` as :class:`~meshplane.xds.lifecycle.StreamLifecycle` says.

        ``responses`` frames each (type, version) response once for every stream sharing
        it (the server passes one for all its streams; by default the stream keeps its own).
        """
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
        self._responses = responses or wire.SharedResponses(size=len(TYPE_URLS))
        self._types = {t: _TypeState() for t in TYPE_URLS}
        self._targets: dict[str, Mapping[str, Resource]] | None = None
        self._target_versions: dict[str, str] = {}
        """Per type: the content version of its whole target pool, when a snapshot's own."""
        self._settled: Snapshot | None = None
        """The snapshot the targets equal exactly, once a walk (or adoption) completed."""
        self._pending: Snapshot | None = None
        self._steps: collections.deque[Step] = collections.deque()

    # -- requests ----------------------------------------------------------------

    async def _start(self, request: discovery_pb2.DiscoveryRequest) -> str:
        # With set_node_on_first_message_only the node is in the first message only.
        node = request.node
        key = await self._admit(node)
        # A reconnecting Envoy's first request names the version it still runs: the sync
        # stage must not replace that config with nothing just because a store forgot it.
        self._board.record_connected(key, node, resumed=request.version_info)
        self._log.info("xds: %s connected (node %s)", key, node.id)
        snapshot = self._cache.snapshot(key)
        if snapshot is not None:
            self._adopt(snapshot)
        return key

    async def _on_request(self, request: discovery_pb2.DiscoveryRequest) -> None:
        key = self._key if self._key is not None else await self._start(request)
        type_url = request.type_url
        state = self._types.get(type_url)
        if state is None:
            self._log.warning("xds: %s requested unsupported type %s", key, type_url)
            return
        nonce = request.response_nonce
        # The latest nonce again, already ACKed, and no error: not an ACK but Envoy asking
        # once more. It does so when an updated cluster (new TLS, say) re-subscribes to its
        # unchanged endpoints, and it keeps that cluster warming until it is answered.
        again = (
            bool(nonce)
            and state.answered
            and nonce == state.nonce == state.acked_nonce
            and not request.HasField("error_detail")
            and type_url not in WILDCARD_TYPES
        )
        # A nonce on a type never answered on this stream belongs to an older
        # stream: treat the request as initial rather than drop it forever.
        if nonce and state.answered:
            if nonce != state.nonce:
                self._log.debug("xds: %s stale nonce %s for %s", key, nonce, type_url)
                return
            if request.HasField("error_detail"):
                # Envoy reports its *last accepted* version; the rejected one is ours.
                version = state.sent_version or ""
                message = truncated(request.error_detail.message)
                state.nacks += 1
                self._board.record_nacked(key, type_url, version, message)
                self._log_nack(key, type_url, version, message)
            elif state.acked_nonce != nonce:
                state.acked_nonce = nonce
                state.acked = state.sent  # each send makes a new dict: never mutated
                self._board.record_acked(key, type_url, state.sent_version or "", state.sent)
        state.subscribed = True
        if type_url not in WILDCARD_TYPES:
            names = frozenset(request.resource_names)
            if names != state.names:  # kept as is otherwise: _reconcile compares identities
                state.names = names
        await self._reconcile(type_url, again=again)

    async def _reconcile(self, type_url: str, *, again: bool = False) -> bool:
        """Send ``type_url`` if the proxy subscribed and its content differs from the last sent.

        ``again``: the proxy asked anew for what it was last sent; answer even if unchanged.
        """
        state = self._types[type_url]
        if self._targets is None or not state.subscribed:
            return False  # no snapshot yet: hold the request, as go-control-plane does
        pool = self._targets[type_url]
        checked = state.checked
        if (
            state.answered
            and not again
            and checked is not None
            and checked[0] is pool
            and checked[1] is state.names
        ):
            # The same pool (never changed in place) and names as the last decision, made
            # since the last send: nothing to send still. Most ACKs end here.
            return False
        if type_url in WILDCARD_TYPES:
            chosen = pool
        else:
            chosen = {n: pool[n] for n in state.names if n in pool}
        state.checked = (pool, state.names)
        if state.answered and not again and _same(chosen, state.sent):
            # What was last sent, resource for resource: no hashing needed to know it.
            return False
        # The whole pool of a snapshot's type: its version is already known.
        known = self._target_versions.get(type_url) if len(chosen) == len(pool) else None
        version = known or version_of(chosen.values())
        if state.answered and version == state.sent_version and not again:
            return False
        self._nonces += 1
        nonce = str(self._nonces)
        body, sent = self._responses.prefix(type_url, version, chosen)
        state.answered = True
        state.nonce = nonce
        state.sent_version = version
        state.sent = sent
        assert self._key is not None
        self._board.record_sent(self._key, type_url, version)
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("xds: %s <- %s %s (%d)", self._key, type_url, version, len(sent))
        await self._write(body + wire.nonce_field(nonce))
        return True

    # -- snapshots and make-before-break ----------------------------------------------

    def _adopt(self, snapshot: Snapshot) -> None:
        # A proxy that runs nothing from us yet needs no ordering: Envoy itself
        # initialises clusters, then endpoints, then listeners and routes.
        self._targets = {t: snapshot.resources(t) for t in TYPE_URLS}
        self._target_versions = {t: snapshot.type_version(t) for t in TYPE_URLS}
        self._settled = snapshot

    async def _on_snapshot(self, snapshot: Snapshot) -> None:
        if self._targets is None:
            self._adopt(snapshot)
            for type_url in TYPE_URLS:
                await self._reconcile(type_url)
            return
        self._pending = snapshot

    def _nacks(self, type_url: str) -> int:
        return self._types[type_url].nacks

    def _abandon_walk(self) -> None:
        self._steps.clear()

    def _next_step(self) -> Step | None:
        if not self._steps:
            if self._pending is None:
                return None
            new, self._pending = self._pending, None
            self._steps.extend(functools.partial(step, new) for step in self._walk(new))
            self._settled = None
        return self._steps.popleft()

    def _walk(self, new: Snapshot) -> list[Callable[[Snapshot], Awaitable[Gate | None]]]:
        """The make-before-break steps from the targets to ``new``, the no-ops left out.

        When the targets are exactly a settled snapshot, a step whose types that
        snapshot and ``new`` hold alike would send nothing, so it is not run: a weight
        flip (routes only) is one step. Otherwise (first walk, or one a NACK cut
        short) every step runs and finds out for itself.
        """
        old = self._settled
        steps: list[Callable[[Snapshot], Awaitable[Gate | None]]]
        if old is None:
            steps = [self._add_clusters, self._replace_listeners, self._replace_routes]
            steps += [self._prune_clusters]
        else:
            changed = {t for t in TYPE_URLS if old.type_version(t) != new.type_version(t)}
            # Step 1 also offers routes only new listeners name: new route names count.
            routes_added = not new.resources(ROUTE).keys() <= old.resources(ROUTE).keys()
            clusters = bool(changed & {SECRET, CLUSTER, ENDPOINT})
            steps = []
            if clusters or LISTENER in changed or routes_added:
                steps.append(self._add_clusters)
            if LISTENER in changed:
                steps.append(self._replace_listeners)
            if ROUTE in changed:
                steps.append(self._replace_routes)
            if clusters:
                steps.append(self._prune_clusters)
        return [*steps, self._settle]

    async def _settle(self, new: Snapshot) -> Gate | None:
        """The walk is over: the targets are ``new``'s resources, exactly."""
        self._targets = {t: new.resources(t) for t in TYPE_URLS}
        self._target_versions = {t: new.type_version(t) for t in TYPE_URLS}
        self._settled = new
        return None

    async def _add_clusters(self, new: Snapshot) -> Gate | None:
        """Step 1: old and new clusters and endpoints together; wait for added ones to warm."""
        assert self._targets is not None
        targets = self._targets
        before = set(targets[CLUSTER])
        # Secrets first: a rotated certificate replaces its old content under the same name,
        # and a cluster or listener naming a new secret warms as soon as it arrives.
        for type_url in (SECRET, CLUSTER, ENDPOINT, ROUTE):  # unions below: versions unknown
            self._target_versions.pop(type_url, None)
        targets[SECRET] = {**targets[SECRET], **new.resources(SECRET)}
        await self._reconcile(SECRET)
        targets[CLUSTER] = {**targets[CLUSTER], **new.resources(CLUSTER)}
        targets[ENDPOINT] = {**targets[ENDPOINT], **new.resources(ENDPOINT)}
        # Route configurations only new listeners name are safe to offer early.
        targets[ROUTE] = {**new.resources(ROUTE), **targets[ROUTE]}
        clusters_sent = await self._reconcile(CLUSTER)
        warming = {
            ref
            for name, cluster in new.resources(CLUSTER).items()
            if name not in before
            for ref in cluster.references
            if ref in targets[ENDPOINT]
        }
        cds, eds = self._types[CLUSTER], self._types[ENDPOINT]
        if clusters_sent and eds.subscribed and not warming <= eds.names:
            # The added clusters' endpoints go out right behind the CDS response instead of
            # waiting for Envoy to ask: Envoy handles one response at a time, so the clusters
            # (and their EDS watches) exist when it reads this one. Its own request naming
            # them carries the previous EDS nonce and is dropped as stale; the ACK of this
            # response names them (see ``ready``), or, had a cluster not watched them yet,
            # Envoy asks again and is answered then.
            eds.names = eds.names | warming
        await self._reconcile(ENDPOINT)
        await self._reconcile(ROUTE)
        if not clusters_sent and not warming:
            return None

        def ready() -> bool:
            # Warm = its endpoints ACKed by a request that also names them (so a watch took them).
            return (
                (not clusters_sent or cds.latest_acked())
                and warming <= eds.acked.keys()
                and warming <= eds.names
            )

        return self._gate_on("add clusters", ready, CLUSTER, ENDPOINT)

    async def _replace_listeners(self, new: Snapshot) -> Gate | None:
        """Step 2: the new listeners; wait for their ACK."""
        assert self._targets is not None
        self._targets[LISTENER] = new.resources(LISTENER)
        self._target_versions[LISTENER] = new.type_version(LISTENER)
        if not await self._reconcile(LISTENER):
            return None
        return self._gate_on("replace listeners", self._types[LISTENER].latest_acked, LISTENER)

    async def _replace_routes(self, new: Snapshot) -> Gate | None:
        """Step 3: the new route configurations; wait for their ACK."""
        assert self._targets is not None
        self._targets[ROUTE] = new.resources(ROUTE)
        self._target_versions[ROUTE] = new.type_version(ROUTE)
        if not await self._reconcile(ROUTE):
            return None
        return self._gate_on("replace routes", self._types[ROUTE].latest_acked, ROUTE)

    async def _prune_clusters(self, new: Snapshot) -> Gate | None:
        """Step 4: exactly the new clusters and endpoints; no route names the stale ones now."""
        assert self._targets is not None
        for type_url in (CLUSTER, ENDPOINT, SECRET):
            self._targets[type_url] = new.resources(type_url)
            self._target_versions[type_url] = new.type_version(type_url)
        await self._reconcile(CLUSTER)
        await self._reconcile(ENDPOINT)
        await self._reconcile(SECRET)
        return None
