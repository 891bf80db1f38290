"""The controller: the API server's objects in, twins in the local store, writes planned out.

Every replica keeps what the watches last reported (:class:`~meshplane.k8s.mirroring.Seen`)
and a :class:`~meshplane.manifests.catalog.Catalog` of the objects as reconciled.
:meth:`Controller.converge` is the work queue's turn: it reconciles, object by
object through :class:`~meshplane.manifests.reconciling.Reconciler` (the same
rules as ``meshplane apply``), only what is due — objects whose spec, labels or
deletion changed, their neighbours (the objects of the same namespace; every
object for a Mesh or Namespace), objects that moved others, and requeues whose
delay ran out. A changed object is re-read from the server's copy, never from
a previous pass's guesses. Kubernetes (etcd behind the API server) stays the
only source of truth, and the plan is level-triggered: it compares every
object's reconciled status with the server's, so a replica that becomes leader
writes exactly what is still missing (no lost update on failover).

A pass returns a :class:`Plan`: the status merge-patches, finalizer patches and
Events that would bring the server in line with the twins. Only the leader
executes it (:mod:`meshplane.k8s.writing`); followers drop it.

Two facts are kept across passes because the server does not hold them:

* **designations** — the mesh (and gateway) a reconcile pass chose for an
  object that the mutating webhook could not designate at create time (its
  namespace was labelled later). Once chosen, membership never changes.
* **tombstones** — objects deleted from the server without waiting for
  meshplane (no finalizer: created while no controller ran, or their
  finalizers stripped by hand). They stay in the catalog, deleting, until their
  twins are deleted, in order.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from meshplane.k8s import mirroring
from meshplane.k8s.mirroring import Key, Seen
from meshplane.kit.clock import Clock
from meshplane.manifests import admission, converging, schema
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject, timestamp
from meshplane.manifests.reconciling import Reconciler
from meshplane.manifests.results import Verdict
from meshplane.model import naming
from meshplane.service.resources import MeshService

FINALIZER_PREFIX = "finalizers.appmesh.k8s.aws/"
MESH_MEMBERS = f"{FINALIZER_PREFIX}mesh-members"
GATEWAY_MEMBERS = f"{FINALIZER_PREFIX}virtualgateway-members"
RESOURCES = f"{FINALIZER_PREFIX}aws-appmesh-resources"
CLOUDMAP = f"{FINALIZER_PREFIX}aws-cloudmap-resources"

log = logging.getLogger(__name__)

_TWINNED = frozenset(mirroring.APPMESH_KINDS) - {"BackendGroup"}
_WEBHOOK_OWNED = ("meshRef", "virtualGatewayRef")
_CREATING = {kind: index for index, kind in enumerate(converging.ORDER)}
_DELETING = {kind: index for index, kind in enumerate(converging.DELETION_ORDER)}


def finalizers_for(obj: ManifestObject) -> tuple[str, ...]:
    """The finalizers the appmesh-controller put on an object of this kind."""
    if obj.kind == "Mesh":
        return (MESH_MEMBERS, RESOURCES)
    if obj.kind == "VirtualGateway":
        return (GATEWAY_MEMBERS, RESOURCES)
    if obj.kind == "VirtualNode" and (obj.spec.get("serviceDiscovery") or {}).get("awsCloudMap"):
        # Released once the twin is deleted, which withdraws its pods' endpoints with it.
        return (RESOURCES, CLOUDMAP)
    if obj.kind in _TWINNED:
        return (RESOURCES,)
    return ()


@dataclasses.dataclass(frozen=True)
class StatusWrite:
    """A merge patch of ``/status``: the desired status, ``None`` for keys to drop."""

    obj: ManifestObject
    patch: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FinalizerWrite:
    """The object's new ``metadata.finalizers`` (optimistic on ``resource_version``)."""

    obj: ManifestObject
    finalizers: tuple[str, ...]
    resource_version: str


@dataclasses.dataclass(frozen=True)
class EventWrite:
    """A core/v1 Event about the object."""

    obj: ManifestObject
    type: str
    reason: str
    message: str


@dataclasses.dataclass
class Plan:
    """The writes that bring the API server in line with this replica's twins."""

    finalizers: list[FinalizerWrite] = dataclasses.field(default_factory=list)
    statuses: list[StatusWrite] = dataclasses.field(default_factory=list)
    events: list[EventWrite] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether there is anything to write."""
        return bool(self.finalizers or self.statuses or self.events)


class Controller:
    """The informer cache, the reconciled catalog and the work queue of one replica."""

    def __init__(self, service: MeshService, clock: Clock) -> None:
        """Reconcile into ``service``'s store; ``clock`` times requeues, tombstones, conditions."""
        self._clock = clock
        self._seen: dict[Key, Seen] = {}
        self._designations: dict[Key, dict[str, Any]] = {}
        self._checked: dict[Key, tuple[str, str]] = {}
        """Rule check results by resourceVersion: an unchanged object is not checked again."""
        self._invalid: dict[Key, str] = {}
        self._dirty: set[Key] = set()
        self._spread: set[Key] = set()
        self._due: dict[Key, float] = {}
        self._todo: set[Key] = set()
        self._rounds = 0
        self._touched: set[Key] = set()
        """Keys whose server copy or reconciled state changed since the last plan."""
        self._full = True
        self._events: list[EventWrite] = []
        self._reconciler = Reconciler(service, clock, self, self)
        self.catalog = Catalog()
        """The objects as reconciled, designations included (the webhooks read it)."""
        self.synced: set[str] = set()
        """Kinds whose initial list has been observed."""
        self.reconciled = 0
        """Objects reconciled or finalized so far (the work the queue saved shows here)."""

    # -- input: what the watches report ---------------------------------------------------

    def observe(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        """One watch event (``ADDED``, ``MODIFIED``, ``DELETED``; ``BOOKMARK`` is ignored)."""
        if event_type == "BOOKMARK":
            return
        item = mirroring.seen(kind, body)
        if event_type == "DELETED":
            self._gone(item.obj.key)
        else:
            self._update(item)

    def relist(self, kind: str, bodies: Iterable[dict[str, Any]]) -> None:
        """A full list of ``kind``: replaces what was seen; missing objects are gone."""
        fresh = {item.obj.key: item for item in (mirroring.seen(kind, b) for b in bodies)}
        for key in [k for k in self._seen if k[0] == kind and k not in fresh]:
            self._gone(key)
        for item in fresh.values():
            self._update(item)
        self.synced.add(kind)

    def _update(self, item: Seen) -> None:
        key = item.obj.key
        previous = self._seen.get(key)
        self._seen[key] = item
        self._touched.add(key)
        if previous is not None and _same_intent(previous, item):
            return  # our own status or finalizer write coming back: nothing to reconcile
        self._dirty.add(key)
        if previous is None or _face(previous.obj) != _face(item.obj):
            self._spread.add(key)  # what other objects read of it changed: re-check them too

    def _gone(self, key: Key) -> None:
        last = self._seen.pop(key, None)
        self._touched.add(key)
        self._checked.pop(key, None)
        self._invalid.pop(key, None)
        self._spread.add(key)
        converged = self.catalog.get(*key)
        if last is None or key[0] not in _TWINNED or converged is None:
            self.catalog.remove(key)
            self._designations.pop(key, None)
            return
        # Deleted behind meshplane's back: finalize the twin anyway, from the last pass's
        # view of the object (its status names the twin even if the server's never did).
        if not converged.deleting:
            converged.deleted_at = self._clock()
        self._dirty.add(key)

    def seen(self, key: Key) -> Seen | None:
        """What the server last said about ``key``."""
        return self._seen.get(key)

    def next_due(self) -> float | None:
        """When the earliest requeue falls due (clock time), if any."""
        return min(self._due.values(), default=None)

    # -- the pass -------------------------------------------------------------------------

    def _object(self, item: Seen) -> ManifestObject:
        obj = item.obj.clone()
        if obj.kind == "Namespace":
            obj.deleted_at = 0.0  # the namespace controller empties it; nothing to wait for
        if obj.info.aws_title is not None and not obj.spec.get("awsName"):
            # Created while no mutating webhook ran: the webhook's default, kept locally.
            obj.spec["awsName"] = naming.default_aws_name(obj.kind, obj.name, obj.namespace)
        for field, value in self._designations.get(obj.key, {}).items():
            if obj.spec.get(field) is None:
                obj.spec[field] = value
        return obj

    def _problems(self, obj: ManifestObject, version: str) -> str:
        """Why an object that got past a down webhook breaks the rules (``""``: it does not)."""
        if obj.kind not in mirroring.APPMESH_KINDS or obj.deleting:
            return ""
        cached = self._checked.get(obj.key)
        if cached is not None and cached[0] == version:
            return cached[1]
        found = self._check(obj)
        self._checked[obj.key] = (version, found)
        return found

    def _check(self, obj: ManifestObject) -> str:
        found = schema.problems(obj.info.spec, obj.spec, "spec")
        if not found:
            bare = obj.clone()
            for field in _WEBHOOK_OWNED:
                bare.spec.pop(field, None)
            found = admission.admit(bare, None)[1]
        return "; ".join(f"{path}: {rule}" for path, rule in found)

    def _refresh(self, key: Key) -> None:
        """Take a changed object from the server's copy into the catalog (or out, if invalid)."""
        item = self._seen.get(key)
        if item is None:
            return  # a tombstone: its catalog object is what is left to finalize
        obj = self._object(item)
        problems = self._problems(obj, item.resource_version)
        if problems:
            self._invalid[key] = problems  # kept out: its last valid twin stays as it was
            self.catalog.remove(key)
            return
        self._invalid.pop(key, None)
        self.catalog.put(obj)

    def _neighbours(self, keys: set[Key]) -> set[Key]:
        """Objects a change to ``keys`` may unblock or re-gate."""
        if any(k[0] in {"Mesh", "Namespace"} for k in keys):
            return {obj.key for obj in self.catalog.all()}
        spaces = {k[1] for k in keys}
        grouping = any(k[0] in {"BackendGroup", "VirtualService"} for k in keys)
        return {
            obj.key
            for obj in self.catalog.all()
            if obj.namespace in spaces
            # backendGroups may name groups and namespaces other than the node's own
            or (grouping and obj.kind == "VirtualNode" and obj.spec.get("backendGroups"))
        }

    def replan(self) -> None:
        """Make the next plan compare every object, not only those touched since the last one.

        For a replica that just became leader (it dropped plans while following) and after
        a failed write (the objects it named are not touched again by themselves).
        """
        self._full = True

    @property
    def pending(self) -> bool:
        """Whether reconciles are queued (a budgeted :meth:`converge` stopped short)."""
        return bool(self._todo or self._dirty or self._spread)

    def converge(self, budget: int | None = None) -> Plan:
        """Reconcile what is due into the store; the writes the leader should make.

        With ``budget``, at most that many objects are reconciled and the rest stay
        queued (:attr:`pending`), so the caller can let other work run in between.
        """
        now = self._clock()
        for key, due in list(self._due.items()):
            if due <= now:
                del self._due[key]
                self._dirty.add(key)
        if self._dirty or self._spread:
            self._rounds = 0
        for key in self._dirty:
            self._refresh(key)
        self._todo |= self._dirty | self._neighbours(self._spread)
        self._dirty, self._spread, self._events = set(), set(), []
        removed: list[Key] = []
        spent = 0
        while self._todo and (budget is None or spent < budget):
            batch = self._ordered(self._todo)
            self._todo = {obj.key for obj in batch}  # Namespaces, gone keys: nothing to run
            if budget is not None:
                batch = batch[: budget - spent]
            self._todo -= {obj.key for obj in batch}
            moved, spread, owners = self._run(batch, removed)
            spent += len(batch)
            if moved:
                self._rounds += 1
                self._todo |= self._neighbours(spread) | moved | owners
            if self._rounds > len(self._seen) + converging.SPARE_PASSES:
                log.warning(
                    "reconciling does not settle; dropping %d queued objects", len(self._todo)
                )
                self._todo = set()
        return self._plan(removed)

    def _ordered(self, keys: set[Key]) -> list[ManifestObject]:
        """The queued objects in creation order, then the deleted ones in deletion order."""
        found = [obj for key in keys if (obj := self.catalog.get(*key)) is not None]

        def rank(obj: ManifestObject) -> tuple[int, int, str, str]:
            if obj.deleting:
                return (1, _DELETING.get(obj.kind, len(_DELETING)), obj.namespace, obj.name)
            return (0, _CREATING.get(obj.kind, len(_CREATING)), obj.namespace, obj.name)

        return sorted(
            (o for o in found if o.kind in (_DELETING if o.deleting else _CREATING)), key=rank
        )

    def _run(
        self, batch: list[ManifestObject], removed: list[Key]
    ) -> tuple[set[Key], set[Key], set[Key]]:
        """Reconcile (or finalize) ``batch`` in order.

        Returns the keys that moved; those whose move others can see (they became
        Active or not, got their ARN, joined a mesh, went away); and the Meshes and
        VirtualGateways whose members moved (their finalizers may now proceed).
        """
        moved: set[Key] = set()
        spread: set[Key] = set()
        owners: set[Key] = set()
        for obj in batch:
            deleting = obj.deleting
            before = (copy.deepcopy(obj.status), obj.spec.get("meshRef"))
            seen_before = _seen_face(obj)
            if deleting:
                result = self._reconciler.finalize(obj, self.catalog)
            else:
                result = self._reconciler.reconcile(obj, self.catalog)
            self.reconciled += 1
            self._touched.add(obj.key)
            self._due.pop(obj.key, None)
            if result.verdict is Verdict.REQUEUE and result.requeue_after is not None:
                self._due[obj.key] = self._clock() + result.requeue_after
            if deleting and result.verdict is Verdict.DONE:
                self.catalog.remove(obj.key)
                removed.append(obj.key)
                moved.add(obj.key)
                spread.add(obj.key)
                owners.update(_owners(obj))
            elif (obj.status, obj.spec.get("meshRef")) != before:
                moved.add(obj.key)
                owners.update(_owners(obj))
                if _seen_face(obj) != seen_before:
                    spread.add(obj.key)
        return moved, spread, owners

    def _plan(self, removed: list[Key]) -> Plan:
        plan = Plan(events=self._events)
        for key in removed:
            self._designations.pop(key, None)
        keys = list(self._seen) if self._full else [k for k in self._touched if k in self._seen]
        self._touched, self._full = set(), False
        for key in keys:
            if key in self._invalid:
                plan.statuses.extend(self._refused(self._seen[key], self._invalid[key]))
        for key in keys:
            item = self._seen[key]
            if key[0] not in mirroring.APPMESH_KINDS:
                continue
            current = self.catalog.get(*key)
            if current is None:
                if item.obj.deleting:
                    # Finalized (a deleting object leaves the catalog only then), whenever it
                    # was: a replica that finalized as a follower releases it once it leads.
                    kept = tuple(f for f in item.finalizers if not f.startswith(FINALIZER_PREFIX))
                    if kept != item.finalizers:
                        plan.finalizers.append(
                            FinalizerWrite(_identity(item.obj), kept, item.resource_version)
                        )
                continue
            self._remember_designation(current, item)
            wanted = finalizers_for(current)
            missing = [f for f in wanted if f not in item.finalizers]
            if missing and not item.obj.deleting:
                plan.finalizers.append(
                    FinalizerWrite(item.obj, (*item.finalizers, *missing), item.resource_version)
                )
            wanted_status = _served(current)
            if wanted_status != item.obj.status:
                patch: dict[str, Any] = {k: None for k in item.obj.status if k not in wanted_status}
                patch.update(wanted_status)
                plan.statuses.append(StatusWrite(_identity(current), patch))
        return plan

    def _refused(self, item: Seen, problems: str) -> list[StatusWrite]:
        """The status of an object the rules refuse: not Active, and why."""
        kind = f"{item.obj.kind}Active"
        old: dict[str, Any] = next(
            (c for c in item.obj.status.get("conditions") or [] if c.get("type") == kind), {}
        )
        moved = old.get("status") != "False"
        condition = {
            "type": kind,
            "status": "False",
            "lastTransitionTime": timestamp(self._clock()) if moved else old["lastTransitionTime"],
            "reason": "ReconcileError",
            "message": problems,
        }
        if item.obj.status.get("conditions") == [condition]:
            return []
        return [StatusWrite(item.obj, {"conditions": [condition]})]

    def _remember_designation(self, current: ManifestObject, item: Seen) -> None:
        for field in ("meshRef", "virtualGatewayRef"):
            value = current.spec.get(field)
            if value is not None and item.obj.spec.get(field) is None:
                self._designations.setdefault(current.key, {})[field] = value

    # -- the reconciler's sinks -------------------------------------------------------------

    def write(self, obj: ManifestObject) -> None:
        """Status lives on the server: the plan carries it; the catalog object already has it."""

    def release(self, obj: ManifestObject) -> None:
        """Finalized: the pass removes it from the catalog and plans the finalizer removal."""

    def emit(self, obj: ManifestObject, event_type: str, reason: str, message: str) -> None:
        """Events go out with the plan (the leader writes them)."""
        self._events.append(EventWrite(obj.clone(), event_type, reason, message))


def _served(obj: ManifestObject) -> dict[str, Any]:
    """The status fields the CRDs carry; the API server would prune the others.

    ``deletionBlockedBy`` is one: on Kubernetes the ``PendingMembersDeletion`` Event says
    what a deletion waits for.
    """
    arn = f"{obj.kind[0].lower()}{obj.kind[1:]}ARN"
    return {
        k: v
        for k, v in obj.status.items()
        if k in {arn, "conditions", "observedGeneration", "routeARNs"}
    }


def _identity(obj: ManifestObject) -> ManifestObject:
    """The object's identity alone: what a write names (cheap; the catalog's keeps changing)."""
    return ManifestObject(obj.kind, obj.namespace, obj.name, uid=obj.uid, generation=obj.generation)


def _face(obj: ManifestObject) -> Any:
    """What other objects' reconciles read of ``obj``'s intent.

    A Mesh's, Namespace's or VirtualGateway's selectors and labels choose members, and a
    BackendGroup's members are its nodes' backends, so all of it; of the others their App
    Mesh name, membership, listeners (route targets' ports) and labels (a GatewayRoute's
    choose its gateway). A route's weights are not read by anyone else: changing them
    re-checks the router alone.
    """
    if obj.kind in {"Mesh", "Namespace", "VirtualGateway", "BackendGroup"}:
        return (obj.spec, obj.labels, obj.deleted_at)
    spec = obj.spec
    return (
        spec.get("awsName"),
        spec.get("meshRef"),
        spec.get("virtualGatewayRef"),
        spec.get("listeners"),
        obj.labels,
        obj.deleted_at,
    )


def _seen_face(obj: ManifestObject) -> Any:
    """What other objects' reconciles read of ``obj``'s status: its ARN, Active, membership."""
    arn = f"{obj.kind[0].lower()}{obj.kind[1:]}ARN"
    active = [
        c.get("status")
        for c in obj.status.get("conditions") or []
        if c.get("type") == f"{obj.kind}Active"
    ]
    return (obj.status.get(arn), active, obj.spec.get("meshRef"), obj.spec.get("virtualGatewayRef"))


def _owners(obj: ManifestObject) -> list[Key]:
    """The Mesh and VirtualGateway whose finalizers wait on ``obj``."""
    found: list[Key] = []
    mesh = obj.spec.get("meshRef")
    if isinstance(mesh, dict) and mesh.get("name"):
        found.append(("Mesh", "", str(mesh["name"])))
    gateway = obj.spec.get("virtualGatewayRef")
    if isinstance(gateway, dict) and gateway.get("name"):
        found.append(
            ("VirtualGateway", str(gateway.get("namespace") or obj.namespace), gateway["name"])
        )
    return found


def _same_intent(old: Seen, new: Seen) -> bool:
    """Whether only status or metadata bookkeeping changed (nothing reconcile reads)."""
    a, b = old.obj, new.obj
    return (a.spec, a.labels, a.deleted_at, a.generation, a.uid) == (
        b.spec,
        b.labels,
        b.deleted_at,
        b.generation,
        b.uid,
    ) and (a.annotations == b.annotations)
