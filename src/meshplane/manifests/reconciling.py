"""The controller's reconcile loop: twin each object into App Mesh through the domain service.

For every object, in dependency order, the loop does what the real
controller's reconcilers did (``appmesh-controller.md`` §1.5, §1.6):

1. **Membership** — a namespaced object with no ``meshRef`` joins the one Mesh
   selecting its namespace; a GatewayRoute also joins its one VirtualGateway.
2. **Gating** — :func:`conversion.convert` says what the object still waits for.
3. **Twin** — create the App Mesh resource through
   :class:`~meshplane.service.resources.MeshService` (the same rules as the REST
   API), or update it when the desired spec differs; a VirtualRouter's routes are
   matched by name, extras deleted first, missing ones created.
4. **Status** — the ARN, ``<Kind>Active`` and ``observedGeneration`` (and
   ``routeARNs``) are written back; a Warning event says why an object is not Active.
5. **Finalizers** — a deleted Mesh waits for its members, a deleted
   VirtualGateway for its GatewayRoutes; then the twin is deleted (an App Mesh
   ``ResourceInUse`` makes the object wait too) and the object is released.

:class:`Reconciler` does this for one object per call and says how it ended
(:class:`~meshplane.manifests.results.ReconcileResult`: done, requeue after a
delay, or a permanent error); status and events go through the sinks of
:mod:`meshplane.manifests.sinks`. Where the controller requeued with a backoff,
the local driver (:mod:`meshplane.manifests.converging`) repeats passes until
nothing changes, so every ``apply``, ``delete`` and ``label`` returns with the
objects already converged.
"""

from __future__ import annotations

from typing import Any

from meshplane.kit.clock import Clock
from meshplane.manifests import admission, conversion, ignoring, objects, results
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.results import PermanentError, ReconcileResult, TemporaryError
from meshplane.manifests.sinks import EventSink, StatusSink
from meshplane.model import errors, extensions, kinds
from meshplane.service.resources import MeshService
from meshplane.service.tagging import Tagging

MESH_ANNOTATIONS = frozenset({extensions.MTLS})
"""Mesh annotations that become the twin's extension tags of the same key."""

_MEMBER_KINDS = ("VirtualService", "VirtualRouter", "VirtualNode", "VirtualGateway", "GatewayRoute")


def arn_field(kind: str) -> str:
    """The status field holding the twin's ARN: ``virtualNodeARN`` for a VirtualNode."""
    return f"{kind[0].lower()}{kind[1:]}ARN"


def route_names(service: MeshService, mesh: str, router: str) -> list[str]:
    """The names of a virtual router's routes in App Mesh, every page of them."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = service.list_refs(kinds.ROUTE, mesh, parent=router, next_token=token)
        names += [ref["routeName"] for ref in page["routes"]]
        token = page.get("nextToken")
        if not token:
            return names


def _pruned(value: Any) -> Any:
    """The controller compares specs treating empty and absent as equal."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


class Reconciler:
    """Reconciles one object at a time with its App Mesh twin (an ``ObjectReconciler``)."""

    def __init__(
        self, service: MeshService, clock: Clock, status: StatusSink, events: EventSink
    ) -> None:
        """Wire the domain service and the sinks that persist status and events."""
        self.service = service
        self._clock = clock
        self._status = status
        self._events = events

    # -- create / update -------------------------------------------------------------------

    def reconcile(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        """Join, gate and twin ``obj``; write its status when it moved; say how it ended."""
        before = obj.to_document()
        try:
            self._twin(obj, catalog)
            result = ReconcileResult.done()
        except (TemporaryError, PermanentError) as error:
            result = ReconcileResult.of(error)
        if obj.to_document() != before:
            self._status.write(obj)
        return result

    def _twin(self, obj: ManifestObject, catalog: Catalog) -> None:
        """Bring the twin and the status in line; raise why the object is not done."""
        waiting = self._join(obj, catalog)
        twin = conversion.convert(obj, catalog)
        reasons = waiting or list(twin.waiting)
        if reasons:
            message = "; ".join(reasons)
            self._not_active(obj, "Waiting", message)
            raise TemporaryError(message)
        try:
            self._write_twin(obj, twin)
        except errors.AppMeshError as error:
            message = f"{error.code}: {error.message}"
            self._not_active(obj, "ReconcileError", message)
            raise results.of_api_error(error, message) from error

    def _join(self, obj: ManifestObject, catalog: Catalog) -> list[str]:
        """Membership designation; returns why the object is not a member yet."""
        if obj.kind != "Mesh" and obj.spec.get("meshRef") is None:
            mesh, reason = admission.designate_mesh(obj, catalog)
            if mesh is None:
                return [reason]
            obj.spec["meshRef"] = admission.mesh_ref(mesh)
        if obj.kind == "GatewayRoute" and obj.spec.get("virtualGatewayRef") is None:
            gateway, reason = admission.designate_gateway(obj, catalog)
            if gateway is None:
                return [reason]
            if gateway.spec.get("meshRef") != obj.spec["meshRef"]:
                return [
                    f"virtualGateway {gateway.namespace}/{gateway.name} does not belong to "
                    f"mesh {obj.spec['meshRef']['name']}"
                ]
            obj.spec["virtualGatewayRef"] = {
                "name": gateway.name,
                "namespace": gateway.namespace,
                "uid": gateway.uid,
            }
        return []

    def _write_twin(self, obj: ManifestObject, twin: conversion.Twin) -> None:
        parent = twin.parent
        if twin.kind is kinds.VIRTUAL_ROUTER:
            self._prune_routes(twin)
        data = self._upsert(twin.kind, twin.mesh, twin.name, twin.spec, parent)
        if twin.kind is kinds.MESH:
            self._mesh_extensions(obj, data["metadata"]["arn"])
        status: dict[str, Any] = {arn_field(obj.kind): data["metadata"]["arn"]}
        if twin.kind is kinds.VIRTUAL_ROUTER:
            status["routeARNs"] = {
                name: self._upsert(kinds.ROUTE, twin.mesh, name, spec, twin.name)["metadata"]["arn"]
                for name, spec in twin.routes.items()
            }
        active = data["status"]["status"] == "ACTIVE"
        status["conditions"] = self._conditions(obj, "True" if active else "False", None)
        status["observedGeneration"] = obj.generation
        obj.status = status

    def _mesh_extensions(self, obj: ManifestObject, arn: str) -> None:
        """Carry a Mesh's ``meshplane.dev/…`` annotations to its twin as extension tags.

        Kubernetes users write annotations, App Mesh clients tags; both reach the same
        behaviour (automatic mTLS, :mod:`meshplane.model.extensions`). The annotations
        govern: one removed from the manifest removes its tag.
        """
        wanted = {k: v for k, v in obj.annotations.items() if k in MESH_ANNOTATIONS}
        tagging = Tagging(self.service.store, self.service.account)
        current = {
            t["key"]: t["value"]
            for t in tagging.list_tags(arn)["tags"]
            if t["key"] in MESH_ANNOTATIONS
        }
        if wanted == current:
            return
        gone = [key for key in current if key not in wanted]
        if gone:
            tagging.untag(arn, gone)
        if wanted:
            tagging.tag(arn, [{"key": k, "value": v} for k, v in wanted.items()])

    def _upsert(
        self, kind: kinds.Kind, mesh: str, name: str, spec: dict[str, Any], parent: str
    ) -> dict[str, Any]:
        try:
            current = self.service.describe(kind, mesh, name, parent=parent)
        except errors.NotFoundException:
            return self.service.create(kind, mesh, name, spec, parent=parent)
        if _pruned(current["spec"]) == _pruned(spec):
            return current
        return self.service.update(kind, mesh, name, spec, parent=parent)

    def _prune_routes(self, twin: conversion.Twin) -> None:
        """Delete routes the manifest no longer lists (before the listeners change)."""
        try:
            self.service.describe(kinds.VIRTUAL_ROUTER, twin.mesh, twin.name)
        except errors.NotFoundException:
            return
        for name in self._route_names(twin.mesh, twin.name):
            if name not in twin.routes:
                self.service.delete(kinds.ROUTE, twin.mesh, name, parent=twin.name)

    def _route_names(self, mesh: str, router: str) -> list[str]:
        return route_names(self.service, mesh, router)

    def _conditions(
        self, obj: ManifestObject, state: str, why: tuple[str, str] | None
    ) -> list[Any]:
        """``<Kind>Active`` (its time moves only when the state flips), then ``FieldsIgnored``.

        The second is there while the spec holds accepted fields translation does not act
        on (:mod:`meshplane.manifests.ignoring`), so ``describe`` keeps naming them.
        """
        kind = f"{obj.kind}Active"
        conditions = obj.status.get("conditions") or []
        old: dict[str, Any] = next((c for c in conditions if c.get("type") == kind), {})
        moved = old.get("status") != state
        condition: dict[str, Any] = {
            "type": kind,
            "status": state,
            "lastTransitionTime": objects.timestamp(self._clock())
            if moved
            else old.get("lastTransitionTime"),
        }
        if why is not None:
            condition["reason"], condition["message"] = why
        ignored = ignoring.condition(obj, objects.timestamp(self._clock()))
        return [condition] if ignored is None else [condition, ignored]

    def _not_active(self, obj: ManifestObject, reason: str, message: str) -> None:
        old: dict[str, Any] = next(iter(obj.status.get("conditions") or []), {})
        if (old.get("reason"), old.get("message")) != (reason, message):
            self._events.emit(obj, "Warning", reason, message)
        obj.status = {
            **{k: v for k, v in obj.status.items() if k != "conditions"},
            "conditions": self._conditions(obj, "False", (reason, message)),
        }

    # -- delete ----------------------------------------------------------------------------

    def finalize(self, obj: ManifestObject, catalog: Catalog) -> ReconcileResult:
        """Run a deleted object's finalizers; release it once they allow (done)."""
        try:
            self._run_finalizers(obj, catalog)
        except (TemporaryError, PermanentError) as error:
            self._blocked(obj, error.message)
            return ReconcileResult.of(error)
        self._status.release(obj)
        return ReconcileResult.done()

    def _run_finalizers(self, obj: ManifestObject, catalog: Catalog) -> None:
        """Wait for members, then delete the twin; raise why the object cannot go yet."""
        pending = self._pending_members(obj, catalog)
        if pending:
            raise TemporaryError(pending, delay=results.MEMBERS_DELAY)
        if obj.info.aws_title is not None and obj.spec.get("awsName"):
            try:
                self._delete_twin(obj)
            except errors.AppMeshError as error:
                message = f"{error.code}: {error.message}"
                raise results.of_api_error(error, message) from error

    def _blocked(self, obj: ManifestObject, pending: str) -> None:
        """Say (once per distinct reason) what the deletion waits for."""
        if obj.status.get("deletionBlockedBy") == pending:
            return
        reason = (
            "PendingMembersDeletion"
            if obj.kind in {"Mesh", "VirtualGateway"}
            else "DeletionBlocked"
        )
        self._events.emit(obj, "Warning", reason, pending)
        obj.status["deletionBlockedBy"] = pending
        self._status.write(obj)

    def _pending_members(self, obj: ManifestObject, catalog: Catalog) -> str:
        if obj.kind == "Namespace":
            left = [o for o in catalog.all() if o.namespace == obj.name]
            return f"namespace still holds {len(left)} object(s)" if left else ""
        if obj.kind == "Mesh":
            ref = admission.mesh_ref(obj)
            counts = [
                f"{kind[0].lower()}{kind[1:]}: {n}"
                for kind in _MEMBER_KINDS
                if (n := sum(1 for m in catalog.of_kind(kind) if m.spec.get("meshRef") == ref))
            ]
            if not counts:
                return ""
            listed = ", ".join(counts)
            return f"objects belonging to this mesh exist, delete them to proceed: {listed}"
        if obj.kind == "VirtualGateway":
            routes = [
                r
                for r in catalog.of_kind("GatewayRoute")
                if (r.spec.get("virtualGatewayRef") or {}).get("uid") == obj.uid
            ]
            if not routes:
                return ""
            return (
                "gatewayRoutes attached to this gateway exist, delete them to proceed: "
                f"gatewayRoute: {len(routes)}"
            )
        return ""

    def _delete_twin(self, obj: ManifestObject) -> None:
        """Delete the App Mesh twin (routes first for a router), if there is one.

        A twin that is already gone counts as deleted; other App Mesh errors propagate.
        """
        if obj.kind != "Mesh" and obj.spec.get("meshRef") is None:
            return  # never joined a mesh: there is no twin
        arn = obj.status.get(arn_field(obj.kind))
        if not arn:
            return  # never twinned (the controller drops the finalizer when no ARN was recorded)
        parsed = kinds.parse_arn(arn)
        if parsed is None:
            return
        key = parsed[2]
        kind = kinds.BY_KEY[key.kind]
        try:
            if kind is kinds.VIRTUAL_ROUTER:
                for name in self._route_names(key.mesh, key.name):
                    self.service.delete(kinds.ROUTE, key.mesh, name, parent=key.name)
            self.service.delete(kind, key.mesh, key.name, parent=key.parent)
        except errors.NotFoundException:
            return
