"""The controller: the API server's objects in, twins in the local store, writes planned out.

Every replica keeps what the watches last reported (:class:`~meshplane.k8s.mirroring.Seen`)
and, on :meth:`Controller.converge`, rebuilds a
:class:`~meshplane.manifests.catalog.Catalog` from it and lets
:class:`~meshplane.manifests.reconciling.Reconciler` twin every object into the
replica's own store — the same rules as ``meshplane apply``. Kubernetes (etcd
behind the API server) stays the only source of truth: each pass starts from the
server's objects, never from a previous pass's guesses, so a replica that
becomes leader writes exactly what is still missing (level-triggered, no lost
update on failover).

A pass returns a :class:`Plan`: the status merge-patches, finalizer patches and
Events that would bring the server in line with the twins. Only the leader
executes it (:mod:`meshplane.k8s.writing`); followers drop it.

Two facts are kept across passes because the server does not hold them:

* **designations** — the mesh (and gateway) a reconcile pass chose for an
  object that the mutating webhook could not designate at create time (its
  namespace was labelled later). Once chosen, membership never changes.
* **tombstones** — objects deleted from the server without waiting for
  meshplane (no finalizer: created while no controller ran, or their
  finalizers stripped by hand). Their twins are still deleted, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from meshplane.k8s import mirroring
from meshplane.k8s.mirroring import Key, Seen
from meshplane.kit.clock import Clock
from meshplane.manifests import admission, schema
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject, timestamp
from meshplane.manifests.reconciling import Reconciler
from meshplane.service.resources import MeshService

FINALIZER_PREFIX = "finalizers.appmesh.k8s.aws/"
MESH_MEMBERS = f"{FINALIZER_PREFIX}mesh-members"
GATEWAY_MEMBERS = f"{FINALIZER_PREFIX}virtualgateway-members"
RESOURCES = f"{FINALIZER_PREFIX}aws-appmesh-resources"
CLOUDMAP = f"{FINALIZER_PREFIX}aws-cloudmap-resources"

_TWINNED = frozenset(mirroring.APPMESH_KINDS) - {"BackendGroup"}
_WEBHOOK_OWNED = ("meshRef", "virtualGatewayRef")


def finalizers_for(obj: ManifestObject) -> tuple[str, ...]:
    """The finalizers the appmesh-controller put on an object of this kind."""
    if obj.kind == "Mesh":
        return (MESH_MEMBERS, RESOURCES)
    if obj.kind == "VirtualGateway":
        return (GATEWAY_MEMBERS, RESOURCES)
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
    """The informer cache and the reconcile pass of one replica."""

    def __init__(self, service: MeshService, clock: Clock) -> None:
        """Reconcile into ``service``'s store; ``clock`` stamps tombstones and conditions."""
        self._clock = clock
        self._seen: dict[Key, Seen] = {}
        self._tombstones: dict[Key, ManifestObject] = {}
        self._designations: dict[Key, dict[str, Any]] = {}
        self._checked: dict[Key, tuple[str, str]] = {}
        """Rule check results by resourceVersion: an unchanged object is not checked again."""
        self._removed: list[Key] = []
        self._events: list[EventWrite] = []
        self._reconciler = Reconciler(service, clock, self._keep, self._forget, self._record)
        self.catalog = Catalog()
        """The last pass's objects, designations included (the webhooks read it)."""
        self.synced: set[str] = set()
        """Kinds whose initial list has been observed."""

    # -- input: what the watches report ---------------------------------------------------

    def observe(self, kind: str, event_type: str, body: dict[str, Any]) -> None:
        """One watch event (``ADDED``, ``MODIFIED``, ``DELETED``; ``BOOKMARK`` is ignored)."""
        if event_type == "BOOKMARK":
            return
        item = mirroring.seen(kind, body)
        key = item.obj.key
        if event_type == "DELETED":
            self._gone(key)
            return
        self._seen[key] = item
        self._tombstones.pop(key, None)

    def relist(self, kind: str, bodies: Iterable[dict[str, Any]]) -> None:
        """A full list of ``kind``: replaces what was seen; missing objects are gone."""
        fresh = {item.obj.key: item for item in (mirroring.seen(kind, b) for b in bodies)}
        for key in [k for k in self._seen if k[0] == kind and k not in fresh]:
            self._gone(key)
        for key, item in fresh.items():
            self._seen[key] = item
            self._tombstones.pop(key, None)
        self.synced.add(kind)

    def _gone(self, key: Key) -> None:
        last = self._seen.pop(key, None)
        self._checked.pop(key, None)
        if last is None or key[0] not in _TWINNED:
            self._designations.pop(key, None)
            return
        # Deleted behind meshplane's back: finalize the twin anyway, from the last pass's
        # view of the object (its status names the twin even if the server's never did).
        converged = self.catalog.get(*key)
        doomed = converged.clone() if converged is not None else self._object(last)
        doomed.deleted_at = doomed.deleted_at or self._clock()
        self._tombstones[key] = doomed

    def seen(self, key: Key) -> Seen | None:
        """What the server last said about ``key``."""
        return self._seen.get(key)

    # -- the pass -------------------------------------------------------------------------

    def _object(self, item: Seen) -> ManifestObject:
        obj = item.obj.clone()
        if obj.kind == "Namespace":
            obj.deleted_at = 0.0  # the namespace controller empties it; nothing to wait for
        if obj.info.aws_title is not None and not obj.spec.get("awsName"):
            # Created while no mutating webhook ran: the webhook's default, kept locally.
            obj.spec["awsName"] = admission.default_aws_name(obj)
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

    def converge(self) -> Plan:
        """Reconcile every object into the store; the writes the leader should make."""
        catalog = Catalog()
        invalid: dict[Key, str] = {}
        for item in self._seen.values():
            obj = self._object(item)
            problems = self._problems(obj, item.resource_version)
            if problems:
                invalid[obj.key] = problems  # kept out: its last valid twin stays as it was
                continue
            catalog.put(obj)
        for doomed in self._tombstones.values():
            catalog.put(doomed.clone())
        self._removed, self._events = [], []
        self._reconciler.converge(catalog)
        self.catalog = catalog
        plan = Plan(events=self._events)
        for key in self._removed:
            self._tombstones.pop(key, None)
            self._designations.pop(key, None)
            gone = self._seen.get(key)
            if gone is not None and gone.obj.deleting:
                kept = tuple(f for f in gone.finalizers if not f.startswith(FINALIZER_PREFIX))
                if kept != gone.finalizers:
                    plan.finalizers.append(FinalizerWrite(gone.obj, kept, gone.resource_version))
        for key, problems in invalid.items():
            plan.statuses.extend(self._refused(self._seen[key], problems))
        for key, item in self._seen.items():
            current = catalog.get(*key)
            if current is None or key[0] not in mirroring.APPMESH_KINDS:
                continue
            self._remember_designation(current, item)
            wanted = finalizers_for(current)
            missing = [f for f in wanted if f not in item.finalizers]
            if missing and not item.obj.deleting:
                plan.finalizers.append(
                    FinalizerWrite(item.obj, (*item.finalizers, *missing), item.resource_version)
                )
            if current.status != item.obj.status:
                patch: dict[str, Any] = {
                    k: None for k in item.obj.status if k not in current.status
                }
                patch.update(current.status)
                plan.statuses.append(StatusWrite(current, patch))
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

    # -- reconciler callbacks ---------------------------------------------------------------

    def _keep(self, obj: ManifestObject) -> None:
        """Status lives on the server: the plan carries it, nothing is saved here."""

    def _forget(self, obj: ManifestObject) -> None:
        self._removed.append(obj.key)

    def _record(self, obj: ManifestObject, event_type: str, reason: str, message: str) -> None:
        self._events.append(EventWrite(obj.clone(), event_type, reason, message))
