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
   new content replaces its old one at once: that is how a rotation lands); wait for the
   CDS ACK and for the EDS ACK of every added cluster (Envoy only routes to warm clusters);
2. listeners := new; wait for the LDS ACK;
3. routes := new; wait for the RDS ACK;
4. clusters, endpoints and secrets := new, dropping the stale ones.

Hostile proxies are bounded (any local process can open a stream): a Node
larger than :data:`MAX_NODE_BYTES` ends the stream before anything is recorded
(:class:`StreamRefused`); at most :data:`INBOX_REQUESTS` requests wait in the
inbox (past that the reader stops reading, and gRPC's flow control pushes back
on the sender); a NACK's message is kept to :data:`MAX_NACK_CHARS` and logged
at most once per :data:`NACK_LOG_INTERVAL` seconds per type, with a count of
the ones left out.

A NACK abandons the remaining steps (the proxy keeps its last good config and
nothing it may still use is removed); a gate that outlives ``ack_timeout`` is
recorded and the walk goes on, so a silent proxy cannot wedge the stream.
Snapshots arriving mid-walk are coalesced: the newest one is walked next.
"""

from __future__ import annotations

import asyncio
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
from meshplane.kit.timers import Cancel, LoopTimer, Timer
from meshplane.xds import wire
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    InvalidNode,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
    StreamRefused,
)
from meshplane.xds.snapshot import Resource, Snapshot, version_of

Writer = Callable[[bytes], Awaitable[None]]
"""Writes one serialized DiscoveryResponse to the proxy."""

_END = object()
_DEADLINE = object()

MAX_NODE_BYTES = 64 * 1024
"""The largest serialized Node (id, cluster, metadata) a proxy may announce; App Mesh
sidecars announce well under 2 KiB."""
INBOX_REQUESTS = 64
"""Requests read from a proxy and not yet handled; Envoy has at most one per type in flight."""
MAX_NACK_CHARS = 2048
"""How much of Envoy's NACK message is kept and logged (Envoy's own are a few hundred)."""
NACK_LOG_INTERVAL = 10.0
"""Seconds between two logged NACKs of one type on one stream."""


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


@dataclasses.dataclass
class _Gate:
    """The condition a make-before-break step waits for before the next one."""

    step: str
    ready: Callable[[], bool]
    nacks_at_start: dict[str, int]
    deadline: float


Step = Callable[[], Awaitable[_Gate | None]]


class AdsStream:
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
        """Serve ``requests`` from ``cache``, reporting to ``board``.

        ``timer`` runs the make-before-break deadlines (the event loop's by default).
        ``authenticator`` (none: admit everyone) judges the first request's node and the
        stream's gRPC ``metadata``; its refusal ends :meth:`run` with the StreamRefused,
        and so does an :class:`AsyncStreamAuthenticator`'s later revocation. ``responses``
        frames each (type, version) response once for every stream sharing it (the server
        passes one for all its streams; by default the stream keeps its own).
        """
        self._responses = responses or wire.SharedResponses(size=len(TYPE_URLS))
        self._authenticator = authenticator
        self._metadata = dict(metadata or {})
        self._cache = cache
        self._board = board
        self._timer: Timer = timer or LoopTimer()
        self._disarm: Cancel | None = None
        self._requests = requests
        self._write = write
        self._ack_timeout = ack_timeout
        self._log = logger
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        # Requests take a slot before entering the inbox; snapshots and deadlines need none
        # (the cache coalesces snapshots, and there is one deadline at a time).
        self._room = asyncio.Semaphore(INBOX_REQUESTS)
        self._nack_logged: dict[str, tuple[float, int]] = {}
        """Per type URL: when a NACK was last logged, and how many were not logged since."""
        self._types = {t: _TypeState() for t in TYPE_URLS}
        self._key: str | None = None
        self._unwatch: Callable[[], None] | None = None
        self._targets: dict[str, Mapping[str, Resource]] | None = None
        self._target_versions: dict[str, str] = {}
        """Per type: the content version of its whole target pool, when a snapshot's own."""
        self._settled: Snapshot | None = None
        """The snapshot the targets equal exactly, once a walk (or adoption) completed."""
        self._pending: Snapshot | None = None
        self._steps: collections.deque[Step] = collections.deque()
        self._gate: _Gate | None = None
        self._nonces = 0
        self._release: Callable[[], None] | None = None

    async def run(self) -> None:
        """Process events until the proxy closes the stream (or the task is cancelled)."""
        reader = asyncio.create_task(self._read())
        try:
            while True:
                # A gate's deadline arrives as an event too (_DEADLINE); _advance handles it.
                event = await self._inbox.get()
                if event is _END:
                    return
                if isinstance(event, StreamRefused):
                    raise event
                if isinstance(event, discovery_pb2.DiscoveryRequest):
                    self._room.release()
                    await self._on_request(event)
                elif isinstance(event, Snapshot):
                    await self._on_snapshot(event)
                await self._advance()
        finally:
            reader.cancel()
            self._set_gate(None)
            if self._unwatch is not None:
                self._unwatch()
            if self._release is not None:
                self._release()
            if self._key is not None:
                self._board.record_disconnected(self._key)
                self._log.info("xds: %s disconnected", self._key)

    def close(self) -> None:
        """Ask :meth:`run` to end the stream cleanly (used when the server stops)."""
        self._inbox.put_nowait(_END)

    def revoke(self, refusal: StreamRefused) -> None:
        """End the stream with ``refusal``'s status: its credential no longer holds."""
        self._inbox.put_nowait(refusal)

    async def _read(self) -> None:
        try:
            async for request in self._requests:
                await self._room.acquire()
                self._inbox.put_nowait(request)
        except Exception as exc:  # the transport failed: the proxy is gone either way
            self._log.debug("xds: stream %s read ended: %r", self._key, exc)
        finally:
            self._inbox.put_nowait(_END)

    # -- requests ----------------------------------------------------------------

    async def _start(self, request: discovery_pb2.DiscoveryRequest) -> str:
        # With set_node_on_first_message_only the node is in the first message only.
        node = request.node
        size = node.ByteSize()
        if size > MAX_NODE_BYTES:
            raise InvalidNode(
                f"the Node is {size} bytes; meshplane accepts at most {MAX_NODE_BYTES} "
                "(node id, cluster and metadata)"
            )
        key = self._cache.node_hash(node)
        # Before the key is recorded, watched or answered: a refused stream leaves no
        # trace on the board and receives nothing.
        if isinstance(self._authenticator, AsyncStreamAuthenticator):
            self._release = await self._authenticator.admit_stream(
                key, node, self._metadata, self.revoke
            )
        elif self._authenticator is not None:
            self._authenticator.admit(key, node, self._metadata)
        self._key = key
        self._unwatch = self._cache.watch(key, self._inbox.put_nowait)
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

    def _log_nack(self, key: str, type_url: str, version: str, message: str) -> None:
        """Log a NACK unless one of this type was logged less than the interval ago."""
        now = self._timer.now()
        last, skipped = self._nack_logged.get(type_url, (None, 0))
        if last is not None and now - last < NACK_LOG_INTERVAL:
            self._nack_logged[type_url] = (last, skipped + 1)
            return
        self._nack_logged[type_url] = (now, 0)
        more = f" ({skipped} more NACKs of this type not logged)" if skipped else ""
        self._log.warning("xds: %s NACKed %s %s: %s%s", key, type_url, version, message, more)

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

    def _set_gate(self, gate: _Gate | None) -> None:
        """Make ``gate`` the current one, its deadline armed on the timer (None: no gate)."""
        if self._disarm is not None:
            self._disarm()
            self._disarm = None
        self._gate = gate
        if gate is not None:
            self._disarm = self._timer.call_at(
                gate.deadline, functools.partial(self._inbox.put_nowait, _DEADLINE)
            )

    async def _advance(self) -> None:
        """Run make-before-break steps as far as their gates allow."""
        while True:
            gate = self._gate
            if gate is not None:
                nacked = [t for t, n in gate.nacks_at_start.items() if self._types[t].nacks > n]
                if nacked:
                    self._log.warning(
                        "xds: %s rejected %s during step %r; keeping its last good config",
                        self._key,
                        ", ".join(nacked),
                        gate.step,
                    )
                    self._steps.clear()
                elif not gate.ready():
                    if self._timer.now() < gate.deadline:
                        return
                    assert self._key is not None
                    self._board.record_gate_timeout(self._key)
                    self._log.warning(
                        "xds: %s no ACK for step %r within %.1fs; going on",
                        self._key,
                        gate.step,
                        self._ack_timeout,
                    )
                self._set_gate(None)
            if not self._steps:
                if self._pending is None:
                    return
                new, self._pending = self._pending, None
                self._steps.extend(functools.partial(step, new) for step in self._walk(new))
                self._settled = None
                continue
            step = self._steps.popleft()
            self._set_gate(await step())

    def _walk(self, new: Snapshot) -> list[Callable[[Snapshot], Awaitable[_Gate | None]]]:
        """The make-before-break steps from the targets to ``new``, the no-ops left out.

        When the targets are exactly a settled snapshot, a step whose types that
        snapshot and ``new`` hold alike would send nothing, so it is not run: a weight
        flip (routes only) is one step. Otherwise (first walk, or one a NACK cut
        short) every step runs and finds out for itself.
        """
        old = self._settled
        steps: list[Callable[[Snapshot], Awaitable[_Gate | None]]]
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

    async def _settle(self, new: Snapshot) -> _Gate | None:
        """The walk is over: the targets are ``new``'s resources, exactly."""
        self._targets = {t: new.resources(t) for t in TYPE_URLS}
        self._target_versions = {t: new.type_version(t) for t in TYPE_URLS}
        self._settled = new
        return None

    def _gate_on(self, step: str, ready: Callable[[], bool], *types: str) -> _Gate:
        return _Gate(
            step=step,
            ready=ready,
            nacks_at_start={t: self._types[t].nacks for t in types},
            deadline=self._timer.now() + self._ack_timeout,
        )

    async def _add_clusters(self, new: Snapshot) -> _Gate | None:
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
        await self._reconcile(ENDPOINT)
        await self._reconcile(ROUTE)
        warming = {
            ref
            for name, cluster in new.resources(CLUSTER).items()
            if name not in before
            for ref in cluster.references
            if ref in targets[ENDPOINT]
        }
        if not clusters_sent and not warming:
            return None
        cds, eds = self._types[CLUSTER], self._types[ENDPOINT]

        def ready() -> bool:
            return (not clusters_sent or cds.latest_acked()) and warming <= eds.acked.keys()

        return self._gate_on("add clusters", ready, CLUSTER, ENDPOINT)

    async def _replace_listeners(self, new: Snapshot) -> _Gate | None:
        """Step 2: the new listeners; wait for their ACK."""
        assert self._targets is not None
        self._targets[LISTENER] = new.resources(LISTENER)
        self._target_versions[LISTENER] = new.type_version(LISTENER)
        if not await self._reconcile(LISTENER):
            return None
        return self._gate_on("replace listeners", self._types[LISTENER].latest_acked, LISTENER)

    async def _replace_routes(self, new: Snapshot) -> _Gate | None:
        """Step 3: the new route configurations; wait for their ACK."""
        assert self._targets is not None
        self._targets[ROUTE] = new.resources(ROUTE)
        self._target_versions[ROUTE] = new.type_version(ROUTE)
        if not await self._reconcile(ROUTE):
            return None
        return self._gate_on("replace routes", self._types[ROUTE].latest_acked, ROUTE)

    async def _prune_clusters(self, new: Snapshot) -> _Gate | None:
        """Step 4: exactly the new clusters and endpoints; no route names the stale ones now."""
        assert self._targets is not None
        for type_url in (CLUSTER, ENDPOINT, SECRET):
            self._targets[type_url] = new.resources(type_url)
            self._target_versions[type_url] = new.type_version(type_url)
        await self._reconcile(CLUSTER)
        await self._reconcile(ENDPOINT)
        await self._reconcile(SECRET)
        return None
