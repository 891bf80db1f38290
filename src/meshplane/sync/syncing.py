"""The sync stage: rebuild and publish the snapshots of the proxies a change affects.

Two inputs wake it: the store's :class:`~meshplane.store.protocols.Feed` (the
revision moved) and the xDS status board (a proxy connected or went away). The
stage relies on nothing but "the revision moved": it remembers the last revision
it applied and reads the changes since it, so the same loop follows a SQLite
file in this process or a database other replicas write to. Work is coalesced:
after a wake-up the stage waits ``debounce`` seconds before it reads, so a burst
of writes (an ``apply`` of ten manifests) costs one rebuild per affected proxy,
not ten.

Per mesh with connected proxies the stage keeps the mesh's snapshot in memory
and moves it forward by re-reading only the changed keys. Per proxy it keeps
what the proxy's last translation read (:class:`~meshplane.translate.dependencies.Reads`);
a change rebuilds only the proxies whose reads it touches — the rest are
known current and just have their revision advanced. A change to the mesh
resource rebuilds the whole mesh. Publishing an unchanged snapshot is a no-op
in the cache, so proxies whose config did not change are not pushed.

Static stability across store loss: a proxy whose own resource (its mesh, its
virtual node or gateway) is not in the store is *held* when it runs config of
its own — it reconnected naming a version it already runs, or this stage gave it
config before — and the store did not delete that resource while the stage
watched. A held proxy is given nothing: Envoy keeps serving what it runs, and
``held`` says why, until the resource is in the store again or a delete through
the store (create and delete the mesh, for one no longer wanted) releases it.
An empty snapshot is pushed over non-empty config only after such a delete.

Endpoints after store loss: when a held proxy's mesh comes back (re-applied),
the runtimes have not yet registered their replicas with the new store, so the
nodes the proxy calls have no endpoints — unknown, not known-empty. Pushing that
translation would empty (or turn to DNS) the clusters that carry its traffic. So
the proxy stays held, saying which nodes it waits for, until each has endpoints
registered or a change to its registrations (a withdrawal, a lease that ran out)
makes it known — or until ``endpoint_grace`` seconds (the endpoint lease TTL) have
passed since the mesh came back: a runtime that has not registered within a lease
is gone, and its callers get what the store holds.

Patching: a proxy that read a change only through the shared pieces
(:mod:`meshplane.translate.reuse`) is not translated again when the change is
one :mod:`meshplane.translate.patching` can splice — a target's endpoints, or
routes whose plans keep their hosts and targets (a weight shift). The pieces are
rebuilt once; each such proxy's previous snapshot gets the new serialized
clusters and load assignments, or virtual hosts inside its route configuration,
in place (:meth:`~meshplane.xds.snapshot.Snapshot.replaced`). The result is the
snapshot a translation would give, version for version; anything the patch
cannot vouch for is translated as before.

Secrets: a translation names the SDS secrets its TLS contexts use; the
stage has the built-in CA (:class:`~meshplane.pki.Issuer`) issue them and
puts them in the proxy's snapshot. A third input wakes it: the next
certificate renewal, at which the proxies holding a certificate due for
replacement are republished, so the new one reaches Envoy over SDS long
before the old one expires.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

from google.protobuf.message import Message

from meshplane.envoy import resources as envoy_resources
from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot
from meshplane.pki.issuing import Issuer
from meshplane.store import snapshots
from meshplane.store.protocols import FeedCompacted, Store
from meshplane.store.records import Change
from meshplane.sync import encodings, identities, meshdiff
from meshplane.translate import (
    building,
    dependencies,
    diagnostics,
    names,
    patching,
    reuse,
    tls,
)
from meshplane.translate.identity import DEFAULT_TRUST_DOMAIN, NodeIdentity
from meshplane.xds import cache as xds_cache
from meshplane.xds import snapshot as xds_snapshot
from meshplane.xds import status as xds_status
from meshplane.xds.snapshot import Resource, ResourceEncoder, Snapshot

log = logging.getLogger(__name__)

FEED_PAGE = 1000
"""Changes read from the feed per query; a pass reads pages until it is current."""


@dataclasses.dataclass(frozen=True)
class Published:
    """What was last published for one proxy: the store revision and translation warnings."""

    revision: int
    """The store revision the proxy's snapshot is known to be current with."""
    version: str
    warnings: tuple[diagnostics.Warning, ...]


@dataclasses.dataclass(frozen=True)
class PublishPass:
    """What one publish pass did, for metrics: when its changes happened, what it rebuilt."""

    first_change_at: float | None
    """The commit time (store clock) of the oldest change the pass applied; ``None``: none."""
    published: tuple[tuple[str, str], ...] = ()
    """(node key, snapshot version) of every proxy whose snapshot the pass replaced."""
    translation_seconds: tuple[float, ...] = ()
    """How long each translation of the pass took (``translate.building.build``)."""


class Sync:
    """Keeps every connected proxy's snapshot equal to the translation of the store."""

    def __init__(  # noqa: PLR0915 -- one statement per piece of state, each with its docstring
        self,
        store: Store,
        cache: xds_cache.SnapshotCache,
        board: xds_status.StatusBoard,
        debounce: float = 0.001,
        *,
        incremental: bool = True,
        issuer: Issuer | None = None,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
        file_sans: tls.FileSans | None = None,
        endpoint_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Follow ``store`` and ``board``; publish into ``cache``; certificates from ``issuer``.

        ``trust_domain`` is the SPIFFE trust domain automatic mTLS's identities are in;
        ``file_sans`` reads certificate files' SANs (for SAN-mismatch warnings).
        ``endpoint_grace``: how long a proxy whose mesh came back after a store loss waits
        for the endpoints of the nodes it calls (module docstring); ``clock`` times it.
        """
        self._store = store
        self._cache = cache
        self._board = board
        self.debounce = debounce
        """Seconds to gather changes before a rebuild (tunable while running)."""
        self.incremental = incremental
        """False: re-read the whole mesh and rebuild all its proxies per change (the old way)."""
        self._encoder = ResourceEncoder()
        self._proxies: dict[str, NodeIdentity] = {}
        self._applied: int | None = None
        """The newest feed revision whose changes were applied (``None``: not started)."""
        self._dirty_proxies: set[str] = set()
        self._meshes: dict[str, MeshSnapshot | None] = {}
        """Mesh name → its in-memory snapshot (``None``: no such mesh), while it has proxies."""
        self._reads: dict[str, dependencies.Reads] = {}
        self._shared: dict[str, reuse.SharedTranslations] = {}
        """Mesh name → the pieces its proxies' translations share, at the mesh's revision."""
        self._issuer = issuer
        self._trust_domain = trust_domain
        self._file_sans = file_sans
        self._certificates: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
        """Node key → the certificates (name, extra DNS names) its snapshot holds."""
        self._wake = asyncio.Event()
        self.published: dict[str, Published] = {}
        """Node key → what it was last given (for operators and tests)."""
        self.builds: collections.Counter[str] = collections.Counter()
        """Node key → how many times it was translated (for tests and benchmarks)."""
        self.patches: collections.Counter[str] = collections.Counter()
        """Node key → how many times its previous snapshot was patched instead (see below)."""
        self._observers: list[Callable[[], None]] = []
        self.held: dict[str, str] = {}
        """Node key → why it is held (given nothing; it keeps the config it runs)."""
        self._runs_config: set[str] = set()
        """Node keys that run non-empty config: resumed with a version, or given some here."""
        self._deleted: set[ResourceKey] = set()
        """Meshes, nodes and gateways the store deleted while this stage watched."""
        self._endpoint_grace = endpoint_grace
        self._clock = clock
        self._lost: set[str] = set()
        """Node keys held because the store did not have their mesh, node or gateway."""
        self._recovering: dict[str, float] = {}
        """Node key → when its resources came back after :attr:`_lost`: it waits for endpoints."""
        self._registrations_seen: set[tuple[str, str]] = set()
        """(mesh, virtual node) whose registrations changed while this stage watched."""
        self.last_pass = PublishPass(None)
        """What the latest publish pass did (read by observers, e.g. the metrics)."""
        self._pass_published: list[tuple[str, str]] = []
        self._pass_seconds: list[float] = []
        self._pass_encoded: dict[int, tuple[Message, Resource]] = {}
        """id(message) → (message, its encoding), for the pass under way."""
        self._kept_encodings: dict[str, encodings.KeptEncodings] = {}
        """Mesh name → the encodings of its shared pieces, kept across passes."""
        self._mesh_encodings = encodings.KeptEncodings()
        """The kept encodings of the mesh the pass is bringing forward."""
        self._pass_hosts: dict[tuple[bytes, bool, int], bytes] = {}
        """(old virtual host, tunnelled, id(new routes)) → new virtual host, for this pass."""
        self._pass_starts: dict[tuple[str, int], patching.SharedStarts] = {}
        """(virtual host name, id(new routes)) → its callers' shared splice, for this pass."""
        self._host_spans: dict[str, dict[str, tuple[str, tuple[patching.HostSpan, ...]]]] = {}
        """Node key → route configuration → (version, where its virtual hosts are): the
        last splice's result, saving the next one a walk over the serialized config."""

    def subscribe(self, observer: Callable[[], None]) -> Callable[[], None]:
        """Call ``observer`` after every publish pass (``published`` may have changed)."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    # -- inputs ------------------------------------------------------------------------------

    async def _follow_feed(self) -> None:
        """Wake the loop each time the store's revision moves past the last one seen."""
        feed = self._store.feed
        seen = self._applied if self._applied is not None else feed.revision()
        while True:
            seen = await feed.wait(seen)
            self._wake.set()

    def _read_changes(self) -> list[Change]:
        """Every change after the last applied revision, oldest first (paged)."""
        feed = self._store.feed
        if self._applied is None:
            self._applied = feed.revision()
            return []
        changes: list[Change] = []
        while True:
            try:
                page = feed.changes_since(self._applied, limit=FEED_PAGE)
            except FeedCompacted as compacted:
                # Too far behind to follow change by change: reread every mesh whole and
                # rebuild every proxy, from the current revision on.
                log.warning("sync: %s; rereading every mesh", compacted)
                self._applied = feed.revision()
                self._meshes.clear()
                self._shared.clear()
                self._kept_encodings.clear()
                self._reads.clear()
                self._dirty_proxies |= set(self._proxies)
                return []
            changes += page
            if page:
                self._applied = page[-1].revision
            if len(page) < FEED_PAGE:
                return changes

    def _on_status(self, event: xds_status.StatusEvent) -> None:
        if isinstance(event, xds_status.Connected):
            identity = identities.identify(event.node)
            if identity is None:
                log.warning("sync: proxy %s has no App Mesh node id; not serving it", event.key)
                return
            identity = dataclasses.replace(identity, trust_domain=self._trust_domain)
            self._proxies[event.key] = identity
            if event.resumed:
                self._runs_config.add(event.key)
            self._dirty_proxies.add(event.key)
            self._wake.set()
        elif isinstance(event, xds_status.Disconnected):
            status = self._board.node(event.key)
            if status is not None and status.connected:
                # Another Envoy announced the same node (replicas without a replica name):
                # it is still connected and must keep getting updates.
                return
            # Stop rebuilding for a proxy that went away and forget what it was given, so
            # memory does not grow with every replica ever seen; a reconnect rebuilds it.
            self._proxies.pop(event.key, None)
            self._reads.pop(event.key, None)
            self._certificates.pop(event.key, None)
            self._host_spans.pop(event.key, None)
            self.published.pop(event.key, None)
            self.held.pop(event.key, None)
            self._lost.discard(event.key)
            self._recovering.pop(event.key, None)
            self._runs_config.discard(event.key)
            self._cache.clear_snapshot(event.key)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until cancelled."""
        if self._applied is None:
            # Changes before the stage started need no replay: a mesh is read whole the
            # first time one of its proxies connects.
            self._applied = self._store.feed.revision()
        following = asyncio.create_task(self._follow_feed(), name="meshplane-sync-feed")
        unsubscribe_board = self._board.subscribe(self._on_status)
        try:
            while True:
                renewal = self._issuer.due_in() if self._issuer is not None else None
                due = self._recovery_due()
                if due is not None:
                    renewal = due if renewal is None else min(renewal, due)
                try:
                    await asyncio.wait_for(self._wake.wait(), renewal)
                except TimeoutError:
                    self._mark_renewals()
                    self._mark_recoveries()
                # Coalesce a burst of marks into one rebuild.
                await asyncio.sleep(self.debounce)
                self._wake.clear()
                try:
                    self.publish_pending()
                except Exception:
                    # One failed pass must not stop every later push: start over from the
                    # store on the next one (whole meshes, every connected proxy).
                    log.exception("sync: a publish pass failed; rebuilding everything")
                    self._reset()
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            unsubscribe_board()

    def _mark_renewals(self) -> None:
        """Rebuild the proxies holding a certificate that is due for renewal."""
        issuer = self._issuer
        if issuer is None:
            return
        due = {key for key, held in self._certificates.items() if issuer.due(held)}
        self._dirty_proxies |= due & set(self._proxies)
        if not due:
            # Due certificates nobody holds any more: forget them, or the timer fires forever.
            issuer.forget(set().union(*self._certificates.values()))

    def _recovery_due(self) -> float | None:
        """Seconds until the first endpoint wait of a recovering proxy runs out (``None``: none)."""
        if not self._recovering:
            return None
        first = min(self._recovering.values()) + self._endpoint_grace
        return max(0.0, first - self._clock())

    def _mark_recoveries(self) -> None:
        """Rebuild the recovering proxies whose endpoint wait has run out."""
        now = self._clock()
        self._dirty_proxies |= {
            key
            for key, since in self._recovering.items()
            if now - since >= self._endpoint_grace and key in self._proxies
        }

    def _reset(self) -> None:
        """Forget every in-memory snapshot and read set; rebuild every proxy on the next pass."""
        self._meshes.clear()
        self._shared.clear()
        self._kept_encodings.clear()
        self._reads.clear()
        self._dirty_proxies |= set(self._proxies)
        self._wake.set()

    def publish_pending(self) -> None:
        """Apply the pending changes and rebuild the proxies they affect, and new proxies."""
        with _collector_paused():
            self._publish_pending()

    def _publish_pending(self) -> None:
        changes = self._read_changes()
        fresh, self._dirty_proxies = self._dirty_proxies, set()
        by_mesh: dict[str, list[Change]] = {}
        for change in changes:
            by_mesh.setdefault(change.key.mesh, []).append(change)
            if change.op == "endpoints":
                self._registrations_seen.add((change.key.mesh, change.key.name))
            if change.key.kind in _OWN_KINDS:
                if change.op == "delete":
                    self._deleted.add(change.key)
                elif change.op == "create":
                    self._deleted.discard(change.key)
        proxies: dict[str, list[str]] = {}
        for key in sorted(self._proxies):
            proxies.setdefault(self._proxies[key].mesh, []).append(key)
        # A mesh whose last proxy left is forgotten: its changes are no longer followed.
        for mesh in [m for m in self._meshes if m not in proxies]:
            del self._meshes[mesh]
            self._shared.pop(mesh, None)
            self._kept_encodings.pop(mesh, None)
        touched = set(by_mesh) | {self._proxies[k].mesh for k in fresh if k in self._proxies}
        self._pass_published, self._pass_seconds = [], []
        try:
            for mesh in sorted(touched & set(proxies)):
                self._sync_mesh(mesh, proxies[mesh], by_mesh.get(mesh, []), fresh)
        finally:
            self._pass_encoded.clear()
            self._pass_hosts.clear()
            self._pass_starts.clear()
        if changes and self._applied is not None:
            # No change since their last pass was in these meshes: their proxies' snapshots
            # are current at the new revision too (else writes to one mesh would leave every
            # other mesh's proxies STALE).
            for mesh in sorted(set(proxies) - touched):
                for key in proxies[mesh]:
                    current = self.published.get(key)
                    if current is not None and current.revision < self._applied:
                        self.published[key] = Published(
                            self._applied, current.version, current.warnings
                        )
        self.last_pass = PublishPass(
            min((c.at for c in changes), default=None),
            tuple(self._pass_published),
            tuple(self._pass_seconds),
        )
        for observer in list(self._observers):
            observer()

    def _sync_mesh(
        self, mesh: str, keys: list[str], changes: list[Change], fresh: set[str]
    ) -> None:
        """Bring one mesh's snapshot forward and rebuild the proxies that need it."""
        loaded = mesh in self._meshes
        previous = self._meshes.get(mesh)
        whole = not self.incremental or not loaded or previous is None
        shared = self._shared.setdefault(mesh, reuse.SharedTranslations())
        kept = self._mesh_encodings = self._kept_encodings.setdefault(
            mesh, encodings.KeptEncodings()
        )
        dropped: dict[Hashable, reuse.Piece] = {}
        if whole:
            snapshot = snapshots.mesh_snapshot(self._store, mesh, previous)
            if previous is not None and snapshot is not None:
                # A reread keeps unchanged resources as the same objects: the pieces that
                # read none of the differences still hold (see meshdiff).
                dropped = shared.advance(snapshot, meshdiff.changes(previous, snapshot))
                kept.forget(p.value for p in dropped.values())
            else:
                shared.clear()
                kept.clear()
        elif changes:
            snapshot = snapshots.updated(self._store, previous, mesh, changes)
        else:
            snapshot = previous
        patches: tuple[patching.TargetPatch, ...] | None = None
        routes: patching.RoutesPatch | None = None
        if snapshot is not None and not whole:
            # The pieces no change touched are still right at the new revision.
            dropped = shared.advance(snapshot, ((c.key, c.op) for c in changes))
            kept.forget(p.value for p in dropped.values())
            if dropped and all(c.op == "endpoints" for c in changes):
                patches = patching.patch_targets(snapshot, shared, dropped)
            elif dropped and all(c.key.kind == kinds.ROUTE.key for c in changes):
                routes = patching.patch_routes(
                    snapshot, shared, dropped, frozenset(c.key for c in changes)
                )
        self._meshes[mesh] = snapshot
        nodes = frozenset(c.key.name for c in changes)
        touches = tuple(dependencies.touch(c.key, c.op) for c in changes)
        for key in keys:
            reads = self._reads.get(key)
            stale = (
                whole
                or snapshot is None
                or key in fresh
                or reads is None
                or reads.touched_by(touches)
            )
            if stale:
                if snapshot is not None and key not in fresh:
                    if patches is not None and self._patch(key, snapshot, patches, nodes):
                        continue
                    if routes is not None and self._patch_routes(key, snapshot, routes, touches):
                        continue
                self._publish(key, self._proxies[key], snapshot)
            elif snapshot is not None and key in self.published:
                # Nothing it read changed: its snapshot is current at the new revision too.
                current = self.published[key]
                self.published[key] = Published(
                    snapshot.revision, current.version, current.warnings
                )
        if whole:
            kept.prune()  # every proxy was built: what it did not use is no piece's any more

    def _patch(
        self,
        key: str,
        mesh: MeshSnapshot,
        patches: tuple[patching.TargetPatch, ...],
        nodes: frozenset[str],
    ) -> bool:
        """Splice rebuilt target resources into ``key``'s snapshot; ``False``: translate it.

        Only for a proxy that read the changed ``nodes``' endpoints solely through
        shared pieces (see :mod:`meshplane.translate.patching`): then a translation
        would give its snapshot with exactly those clusters and load assignments
        swapped, warnings and reads unchanged. Each spliced resource must be the one
        the proxy holds, and every cluster of the changed nodes it holds must be
        covered; anything else (held or recovering proxies too) is translated.
        """
        reads = self._reads.get(key)
        current = self.published.get(key)
        previous = self._cache.snapshot(key)
        if (
            reads is None
            or current is None
            or previous is None
            or key in self.held
            or key in self._recovering
            or key in self._lost
            or dependencies.ANY in reads.direct_endpoints
            or not nodes.isdisjoint(reads.direct_endpoints)
        ):
            return False
        discovery = self._proxies[key].discovery
        clusters = previous.resources(envoy_resources.CLUSTER)
        assignments = previous.resources(envoy_resources.ENDPOINT)
        replacements: list[Resource] = []
        covered: set[str] = set()
        for patch in patches:
            if patch.discovery != discovery:
                continue
            (cluster, assignment), (new_cluster, new_assignment) = patch.before, patch.after
            held = clusters.get(cluster.name)
            if held is None:
                continue
            if held.version != self._encode(cluster).version:
                return False
            covered.add(cluster.name)
            replacements.append(self._encode(new_cluster))
            if assignment is not None and new_assignment is not None:
                held = assignments.get(assignment.cluster_name)
                if held is None or held.version != self._encode(assignment).version:
                    return False
                replacements.append(self._encode(new_assignment))
        for node in nodes:
            for name in patching.target_cluster_names(mesh, node):
                if name in clusters and name not in covered:
                    return False
        self._install(key, mesh, previous, replacements)
        return True

    def _patch_routes(
        self,
        key: str,
        mesh: MeshSnapshot,
        patch: patching.RoutesPatch,
        touches: tuple[dependencies.Touch, ...],
    ) -> bool:
        """Rewrite the changed services' virtual hosts in ``key``'s route configurations.

        Only for a sidecar (gateways keep their Host handling per route) whose own
        reads, outside shared pieces, no change touches: then a translation would
        differ only in those virtual hosts' routes (:mod:`meshplane.translate.patching`).
        ``False``: translate it.
        """
        identity = self._proxies[key]
        reads = self._reads.get(key)
        current = self.published.get(key)
        previous = self._cache.snapshot(key)
        if (
            identity.kind != kinds.VIRTUAL_NODE.key
            or reads is None
            or current is None
            or previous is None
            or key in self.held
            or key in self._recovering
            or key in self._lost
            or reads.directly_touched_by(touches)
        ):
            return False
        tunnelled = not building.intercepted(identity)
        replacements: list[Resource] = []
        for name, resource in previous.resources(envoy_resources.ROUTE).items():
            if not names.is_egress_route_config(name):
                continue
            known = self._host_spans.get(key, {}).get(name)
            if known is not None and known[0] == resource.version:
                spans = known[1]
            else:
                spans = patching.virtual_host_spans(resource.body)
            if patch.unbuilt and any(s.name in patch.unbuilt for s in spans):
                return False  # a host of a changed service whose routes were not rebuilt
            body, spans = patching.splice_virtual_hosts(
                resource.body,
                patch.hosts,
                lambda host, serialized: self._rebuilt_host(serialized, patch, host, tunnelled),
                spans,
            )
            if body != resource.body:
                encoded = self._encoder.encode_serialized(
                    envoy_resources.ROUTE, name, body, parts=_parts(resource, body, spans, patch)
                )
                self._host_spans.setdefault(key, {})[name] = (encoded.version, spans)
                replacements.append(encoded)
        self._install(key, mesh, previous, replacements)
        return True

    def _rebuilt_host(
        self, serialized: bytes, patch: patching.RoutesPatch, host: str, tunnelled: bool
    ) -> bytes:
        """A virtual host with new routes, once per pass for callers holding the same host.

        Spliced route by route when only some of its routes changed (each caller's copy
        from one shared start, :class:`~meshplane.translate.patching.SharedStarts`);
        parsed, given its new routes and serialized again otherwise.
        """
        routes = patch.hosts[host]
        memo = (serialized, tunnelled, id(routes))
        found = self._pass_hosts.get(memo)
        if found is not None:
            return found
        edits = patch.edits.get(host)
        spliced = None
        if edits:
            starts = self._pass_starts.get((host, id(routes)))
            if starts is None:
                starts = self._pass_starts[(host, id(routes))] = patching.SharedStarts(edits)
            spliced = starts.spliced(serialized)
        elif edits is not None:
            spliced = serialized  # no route's bytes changed
        if spliced is None:
            spliced = patching.rebuilt_host(serialized, routes, tunnelled=tunnelled)
        self._pass_hosts[memo] = spliced
        return spliced

    def _install(
        self, key: str, mesh: MeshSnapshot, previous: Snapshot, replacements: list[Resource]
    ) -> None:
        """Publish ``previous`` patched with ``replacements`` (same warnings and reads).

        The warnings were logged when the proxy was last translated; a patch keeps them
        and does not log them again.
        """
        current = self.published[key]
        snapshot = previous.replaced(replacements)
        self._cache.set_snapshot(key, snapshot)
        self.patches[key] += 1
        self.published[key] = Published(mesh.revision, snapshot.version, current.warnings)
        if snapshot.version != current.version:
            self._pass_published.append((key, snapshot.version))

    def _publish(self, key: str, identity: NodeIdentity, mesh: MeshSnapshot | None) -> None:
        reason = self._hold_reason(key, identity, mesh)
        if reason is not None:
            self._lost.add(key)
            self._recovering.pop(key, None)
            self._hold(key, reason)
            self._reads.pop(key, None)
            return
        if key in self._lost:
            self._lost.discard(key)
            self._recovering[key] = self._clock()
        if mesh is None:
            warnings: tuple[diagnostics.Warning, ...] = (
                diagnostics.Warning(
                    f"mesh/{identity.mesh}",
                    "mesh-not-found",
                    f"mesh {identity.mesh} does not exist",
                ),
            )
            snapshot = Snapshot(())
            revision = self._store.revision()
            self._reads.pop(key, None)
        else:
            started = time.perf_counter()
            built = building.build(
                mesh, identity, self._shared.get(mesh.name), file_sans=self._file_sans
            )
            self._pass_seconds.append(time.perf_counter() - started)
            self.builds[key] += 1
            self._reads[key] = built.reads
            waiting = self._waiting_for(key, identity.mesh, mesh, built.reads)
            if waiting:
                # Kept reads: a registration for one of these nodes rebuilds the proxy.
                self._hold(
                    key,
                    f"the endpoints of {', '.join(f'virtualNode {n}' for n in waiting)} are "
                    "not registered with this store yet, which did not withdraw them; the proxy "
                    "keeps the config it runs until they are, or for at most "
                    f"{self._endpoint_grace:g}s",
                )
                return
            warnings, revision = built.warnings, mesh.revision
            secrets, missing = self._secrets(key, built.secrets)
            warnings += missing
            like = self._cache.snapshot(key)
            snapshot = Snapshot(
                self._encode_all(
                    (
                        *built.listeners,
                        *built.routes_as_built,
                        *built.clusters,
                        *built.cluster_load_assignments,
                        *secrets,
                    ),
                    like,
                ),
                like=like,
            )
        if self.held.pop(key, None) is not None:
            log.info("sync: %s released", key)
        self._recovering.pop(key, None)
        for warning in warnings:
            log.warning("sync: %s: %s", key, warning)
        previous = self.published.get(key)
        if not any(snapshot.resources(t) for t in envoy_resources.TYPE_URLS):
            self._runs_config.discard(key)
        else:
            self._runs_config.add(key)
        self._cache.set_snapshot(key, snapshot)
        self.published[key] = Published(revision, snapshot.version, warnings)
        if previous is None or previous.version != snapshot.version:
            self._pass_published.append((key, snapshot.version))

    def _hold(self, key: str, reason: str) -> None:
        """Give ``key`` nothing: it keeps the config it runs; ``held`` says why."""
        if self.held.get(key) != reason:
            log.warning("sync: %s held: %s", key, reason)
        self.held[key] = reason
        self.published.pop(key, None)

    def _waiting_for(
        self, key: str, mesh_name: str, mesh: MeshSnapshot, reads: dependencies.Reads
    ) -> list[str]:
        """The nodes whose endpoints a recovering ``key`` still waits for (module docstring)."""
        since = self._recovering.get(key)
        if since is None or self._clock() - since >= self._endpoint_grace:
            return []
        return sorted(
            node
            for node in reads.endpoints
            if node in mesh.virtual_nodes
            and not mesh.endpoints.get(node)
            and (mesh_name, node) not in self._registrations_seen
        )

    def _encode_all(
        self, messages: Sequence[Message | encodings.Serialized], like: Snapshot | None
    ) -> list[Resource]:
        """Each of ``messages`` as :meth:`_encode` gives it, the kept ones looked up at once.

        ``like`` (the proxy's previous snapshot): a message of its own serialized to the
        bytes ``like`` holds under its name is that resource, found without hashing them
        again — a rebuild mostly gives a proxy's listeners and its 68 KB route
        configuration back unchanged.
        """
        kept = self._mesh_encodings.lookup(messages)
        return [
            found if found is not None else self._encode_unkept(message, like)
            for message, found in zip(messages, kept, strict=True)
        ]

    def _encode(self, message: Message) -> Resource:
        """``message`` serialized, once for a message object proxies share.

        Pieces of :class:`~meshplane.translate.reuse.SharedTranslations` are one object in
        every proxy's resources and are never modified; the pass memo holds each object
        (so its id is not reused) until the pass ends, and one a second proxy used is
        kept for later passes while its piece lives (:mod:`meshplane.sync.encodings`).
        """
        kept = self._mesh_encodings.get(message)
        if kept is not None:
            return kept
        return self._encode_unkept(message)

    def _encode_unkept(
        self, message: Message | encodings.Serialized, like: Snapshot | None = None
    ) -> Resource:
        """:meth:`_encode` of a message whose encoding is not kept (yet).

        ``like``: as in :meth:`_encode_all`. A resource built as bytes is one proxy's:
        it is encoded from them (:func:`meshplane.sync.encodings.serialized`).
        """
        if not isinstance(message, Message):
            return encodings.serialized(self._encoder, message, like)
        found = self._pass_encoded.get(id(message))
        if found is not None and found[0] is message:
            # A second proxy holds this very object: a shared piece, kept for later passes.
            self._mesh_encodings.keep(message, found[1])
            return found[1]
        encoded: Resource | None = None
        if like is not None:
            type_url = envoy_resources.type_url_of(message)
            name = envoy_resources.name_of(message)
            body = message.SerializeToString(deterministic=True)
            held = like.resources(type_url).get(name)
            # Equal bytes: the same content, hence the very resource the encoder interned.
            if held is not None and held.body == body:
                encoded = held
            else:
                encoded = self._encoder.encode_serialized(
                    type_url, name, body, envoy_resources.references_of(message)
                )
        else:
            encoded = self._encoder.encode(message)
        self._pass_encoded[id(message)] = (message, encoded)
        return encoded

    def _secrets(
        self, key: str, requests: Sequence[tls.SecretRequest]
    ) -> tuple[list[Message], tuple[diagnostics.Warning, ...]]:
        """The SDS secrets a translation names, issued by the built-in CA."""
        issuer = self._issuer
        if issuer is None:
            self._certificates.pop(key, None)
            if not requests:
                return [], ()
            names = ", ".join(r.name for r in requests)
            warning = diagnostics.Warning(
                key, "tls-no-ca", f"{key}: no built-in CA to serve secrets {names}"
            )
            return [], (warning,)
        found: list[Message] = []
        held: set[tuple[str, tuple[str, ...]]] = set()
        for request in requests:
            if request.kind == "trust":
                found.append(tls.trust_secret(request.name, issuer.bundle(request.authorities)))
                continue
            issued = issuer.current(request.name, request.dns_names)
            held.add((request.name, request.dns_names))
            found.append(tls.certificate_secret(request.name, issued.chain_pem, issued.key_pem))
        self._certificates[key] = held
        return found, ()

    def _hold_reason(
        self, key: str, identity: NodeIdentity, mesh: MeshSnapshot | None
    ) -> str | None:
        """Why ``key`` must keep the config it runs instead of being rebuilt, or ``None``."""
        if key not in self._runs_config:
            return None  # nothing to protect: a new proxy, or one already given nothing
        mesh_key = ResourceKey(kinds.MESH.key, identity.mesh, "", identity.mesh)
        own = ResourceKey(identity.kind, identity.mesh, "", identity.name)
        if mesh is None:
            missing = f"mesh {identity.mesh}"
        elif identity.name not in _own_resources(mesh, identity.kind):
            missing = f"{identity.kind} {identity.name} of mesh {identity.mesh}"
        else:
            return None
        if mesh_key in self._deleted or own in self._deleted:
            return None  # the store deleted it: emptying the proxy is what was asked
        return (
            f"{missing} is not in the store, which did not delete it; the proxy keeps the "
            "config it runs until the store has it again (re-apply) or it is deleted explicitly"
        )


def _parts(
    previous: Resource,
    body: bytes,
    spans: tuple[patching.HostSpan, ...],
    patch: patching.RoutesPatch,
) -> tuple[xds_snapshot.Part, ...] | None:
    """The virtual hosts of a spliced route configuration, hashed: only the rewritten ones anew.

    ``spans`` are where the splice put every host; the others are the previous
    resource's hosts, byte for byte, so their digests carry over. ``None`` (the encoder
    finds and hashes them all) if the previous resource's hosts do not line up.
    """
    if len(previous.parts) != len(spans):
        return None
    view = memoryview(body)
    hosts = patch.hosts
    return tuple(
        old
        if old.start == span.start and old.end == span.end and span.name not in hosts
        else xds_snapshot.Part(
            span.start,
            span.payload,
            span.end,
            hashlib.sha256(view[span.payload : span.end]).digest()
            if span.name in hosts
            else old.digest,
        )
        for span, old in zip(spans, previous.parts, strict=True)
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off for one publish pass.

    A pass allocates hundreds of thousands of short-lived, acyclic objects (protos,
    plans, bytes) while the heap holds every mesh's parsed specs; each collection the
    allocations trigger walks that heap: at ten times App Mesh's quotas, start-up of
    2,000 proxies took 3.2 s of CPU with them and 2.3 s without, counting one full
    collection after the pass. Reference counting still frees the pass's garbage; any
    cycles wait for the next collection after the pass. A nested use leaves turning
    the collector back on to the outermost one.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_OWN_KINDS = frozenset({kinds.MESH.key, kinds.VIRTUAL_NODE.key, kinds.VIRTUAL_GATEWAY.key})
"""The kinds a proxy can be: their deletes are what releases a held proxy."""


def _own_resources(mesh: MeshSnapshot, kind: str) -> Mapping[str, object]:
    """The virtual nodes or virtual gateways of ``mesh``, by name (what a proxy can be)."""
    return mesh.virtual_nodes if kind == kinds.VIRTUAL_NODE.key else mesh.virtual_gateways
