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
   ``ResourceInUse`` makes the object wait too) and the object is forgotten.

Where the controller requeued with a backoff, this loop repeats passes until
nothing changes: every ``apply``, ``delete`` and ``label`` returns with the
objects already converged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshplane.kit.clock import Clock
from meshplane.manifests import admission, conversion, objects
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.model import errors, kinds
from meshplane.service.resources import MeshService

ORDER = ("Mesh", "VirtualNode", "VirtualRouter", "VirtualService", "VirtualGateway", "GatewayRoute")
"""Creation order; deletion runs it backwards."""

_MEMBER_KINDS = ("VirtualService", "VirtualRouter", "VirtualNode", "VirtualGateway", "GatewayRoute")

EventSink = Callable[[ManifestObject, str, str, str], None]
"""Records an event: (object, type, reason, message)."""
Saver = Callable[[ManifestObject], None]
Remover = Callable[[ManifestObject], None]


def _arn_field(kind: str) -> str:
    return f"{kind[0].lower()}{kind[1:]}ARN"


def _pruned(value: Any) -> Any:
    """The controller compares specs treating empty and absent as equal."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


class Reconciler:
    """Converges stored objects and their App Mesh twins."""

    def __init__(
        self, service: MeshService, clock: Clock, save: Saver, remove: Remover, event: EventSink
    ) -> None:
        """Wire the domain service and the callbacks that persist objects and events."""
        self.service = service
        self._clock = clock
        self._save = save
        self._remove = remove
        self._event = event

    def converge(self, catalog: Catalog) -> None:
        """Reconcile every object until a full pass changes nothing."""
        for _ in range(len(catalog.all()) + 3):
            changed = False
            for kind in ORDER:
                for obj in catalog.of_kind(kind):
                    if not obj.deleting:
                        changed |= self._reconcile(obj, catalog)
            for kind in reversed(("Namespace", "Service", "BackendGroup", *ORDER)):
                for obj in catalog.of_kind(kind):
                    if obj.deleting:
                        changed |= self._finalize(obj, catalog)
            if not changed:
                return

    # -- create / update -------------------------------------------------------------------

    def _reconcile(self, obj: ManifestObject, catalog: Catalog) -> bool:
        before = obj.to_document()
        waiting = self._join(obj, catalog)
        twin = conversion.convert(obj, catalog)
        reasons = waiting or list(twin.waiting)
        if reasons:
            self._not_active(obj, "Waiting", "; ".join(reasons))
        else:
            try:
                self._write_twin(obj, twin)
            except errors.AppMeshError as error:
                self._not_active(obj, "ReconcileError", f"{error.code}: {error.message}")
        changed = obj.to_document() != before
        if changed:
            self._save(obj)
        return changed

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
        status: dict[str, Any] = {_arn_field(obj.kind): data["metadata"]["arn"]}
        if twin.kind is kinds.VIRTUAL_ROUTER:
            status["routeARNs"] = {
                name: self._upsert(kinds.ROUTE, twin.mesh, name, spec, twin.name)["metadata"]["arn"]
                for name, spec in twin.routes.items()
            }
        active = data["status"]["status"] == "ACTIVE"
        status["conditions"] = self._conditions(obj, "True" if active else "False", None)
        status["observedGeneration"] = obj.generation
        obj.status = status

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
        names: list[str] = []
        token: str | None = None
        while True:
            page = self.service.list_refs(kinds.ROUTE, mesh, parent=router, next_token=token)
            names += [ref["routeName"] for ref in page["routes"]]
            token = page.get("nextToken")
            if not token:
                return names

    def _conditions(
        self, obj: ManifestObject, state: str, why: tuple[str, str] | None
    ) -> list[Any]:
        """The single ``<Kind>Active`` condition; its time moves only when the state flips."""
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
        return [condition]

    def _not_active(self, obj: ManifestObject, reason: str, message: str) -> None:
        old: dict[str, Any] = next(iter(obj.status.get("conditions") or []), {})
        if (old.get("reason"), old.get("message")) != (reason, message):
            self._event(obj, "Warning", reason, message)
        obj.status = {
            **{k: v for k, v in obj.status.items() if k != "conditions"},
            "conditions": self._conditions(obj, "False", (reason, message)),
        }

    # -- delete ----------------------------------------------------------------------------

    def _finalize(self, obj: ManifestObject, catalog: Catalog) -> bool:
        """Run the object's finalizers; True when the object is gone or its state moved."""
        pending = self._pending_members(obj, catalog)
        if not pending and obj.info.aws_title is not None and obj.spec.get("awsName"):
            pending = self._delete_twin(obj)
        if pending:
            old = obj.status.get("deletionBlockedBy")
            if old != pending:
                reason = (
                    "PendingMembersDeletion"
                    if obj.kind in {"Mesh", "VirtualGateway"}
                    else "DeletionBlocked"
                )
                self._event(obj, "Warning", reason, pending)
                obj.status["deletionBlockedBy"] = pending
                self._save(obj)
                return True
            return False
        catalog.remove(obj.key)
        self._remove(obj)
        return True

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

    def _delete_twin(self, obj: ManifestObject) -> str:
        """Delete the App Mesh twin (routes first for a router); the reason it cannot, or ``""``."""
        if obj.kind != "Mesh" and obj.spec.get("meshRef") is None:
            return ""  # never joined a mesh: there is no twin
        arn = obj.status.get(_arn_field(obj.kind))
        if not arn:
            return ""  # never twinned (the controller drops the finalizer when no ARN was recorded)
        parsed = kinds.parse_arn(arn)
        if parsed is None:
            return ""
        key = parsed[2]
        kind = kinds.BY_KEY[key.kind]
        try:
            if kind is kinds.VIRTUAL_ROUTER:
                for name in self._route_names(key.mesh, key.name):
                    self.service.delete(kinds.ROUTE, key.mesh, name, parent=key.name)
            self.service.delete(kind, key.mesh, key.name, parent=key.parent)
        except errors.NotFoundException:
            return ""
        except errors.AppMeshError as error:
            return f"{error.code}: {error.message}"
        return ""
