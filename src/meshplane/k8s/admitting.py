"""AdmissionReview in, AdmissionReview out: the webhooks' decisions, pure.

The API server posts an ``admission.k8s.io/v1`` (or ``v1beta1``) AdmissionReview
to the path the webhook configuration names; the answer carries the request's
uid, ``allowed``, a refusal's message, and for mutating webhooks a base64 JSON
Patch. The rules are :mod:`meshplane.manifests.admission`'s and the CRD schema's
(:mod:`meshplane.manifests.schema`) — one rule source for ``meshplane apply``
and for Kubernetes:

* **mutate** a custom resource (create only): default ``spec.awsName``;
  designate ``spec.meshRef`` (and a GatewayRoute's ``virtualGatewayRef``) when
  exactly one Mesh (VirtualGateway) selects it — otherwise the object is let in
  and waits, reported in its status; a user-set ``meshRef`` is refused;
* **validate** a custom resource: the schema, the cross-field rules, and on
  update the immutable fields;
* **mutate a pod**: :func:`meshplane.k8s.injecting.inject`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from meshplane.k8s import injecting, mirroring
from meshplane.manifests import admission, crds, schema
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject

_WEBHOOK_OWNED = ("meshRef", "virtualGatewayRef")


@dataclasses.dataclass(frozen=True)
class Request:
    """The parts of an AdmissionRequest the decisions read."""

    uid: str
    operation: str
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


def parse(review: Mapping[str, Any]) -> Request:
    """The request of an AdmissionReview body; ``ValueError`` when it is not one."""
    request = review.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise ValueError("the body is not an AdmissionReview with a request")
    obj = request.get("object")
    old = request.get("oldObject")
    return Request(
        uid=request["uid"],
        operation=str(request.get("operation") or ""),
        namespace=str(request.get("namespace") or ""),
        obj=obj if isinstance(obj, dict) else {},
        old=old if isinstance(old, dict) else None,
    )


def respond(review: Mapping[str, Any], uid: str, decision: injecting.Decision) -> dict[str, Any]:
    """The AdmissionReview answering ``review`` (same apiVersion) with ``decision``."""
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": decision.message}
    elif decision.patch:
        encoded = json.dumps(list(decision.patch), separators=(",", ":")).encode()
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encoded).decode()
    return {
        "apiVersion": str(review.get("apiVersion") or "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


def _incoming(kind: str, request: Request, body: dict[str, Any]) -> ManifestObject:
    obj = mirroring.seen(kind, body).obj
    if crds.BY_KIND[kind].namespaced and not obj.namespace:
        obj.namespace = request.namespace  # generateName objects may not carry it yet
    return obj


def _refusal(problems: list[admission.Message]) -> injecting.Decision:
    return injecting.Decision(False, "; ".join(f"{path}: {rule}" for path, rule in problems))


def mutate(kind: str, request: Request, catalog: Catalog) -> injecting.Decision:
    """The CR mutating webhook: awsName default and membership, on create only."""
    if request.operation != "CREATE":
        return injecting.Decision(True)
    incoming = _incoming(kind, request, request.obj)
    admitted, problems = admission.admit(incoming, None)
    owned = [p for p in problems if p[0] in {f"spec.{f}" for f in _WEBHOOK_OWNED}]
    if owned:
        return _refusal(owned)
    if kind != "Mesh" and admitted.spec.get("meshRef") is None:
        mesh, _ = admission.designate_mesh(admitted, catalog)
        if mesh is not None:
            admitted.spec["meshRef"] = admission.mesh_ref(mesh)
    if kind == "GatewayRoute" and admitted.spec.get("meshRef") is not None:
        gateway, _ = admission.designate_gateway(admitted, catalog)
        if gateway is not None and gateway.spec.get("meshRef") == admitted.spec["meshRef"]:
            admitted.spec["virtualGatewayRef"] = {
                "name": gateway.name,
                "namespace": gateway.namespace,
                "uid": gateway.uid,
            }
    patch: list[dict[str, Any]] = []
    if "spec" not in request.obj:
        patch.append({"op": "add", "path": "/spec", "value": {}})
    for field in ("awsName", *_WEBHOOK_OWNED):
        value = admitted.spec.get(field)
        if value is not None and incoming.spec.get(field) != value:
            patch.append({"op": "add", "path": f"/spec/{field}", "value": value})
    return injecting.Decision(True, patch=tuple(patch))


def validate(kind: str, request: Request) -> injecting.Decision:
    """The CR validating webhook: schema, cross-field rules, immutability on update."""
    if request.operation not in {"CREATE", "UPDATE"}:
        return injecting.Decision(True)
    incoming = _incoming(kind, request, request.obj)
    problems = schema.problems(crds.BY_KIND[kind].spec, request.obj.get("spec") or {}, "spec")
    if problems:
        return _refusal(problems)
    if request.operation == "CREATE":
        # The mutating webhook ran first and may have designated the webhook-owned refs.
        for field in _WEBHOOK_OWNED:
            incoming.spec.pop(field, None)
        _, found = admission.admit(incoming, None)
    else:
        existing = _incoming(kind, request, request.old or {"metadata": {"name": incoming.name}})
        _, found = admission.admit(incoming, existing)
    return _refusal(found) if found else injecting.Decision(True)


def mutate_pod(
    request: Request, catalog: Catalog, config: injecting.InjectorConfig
) -> injecting.Decision:
    """The sidecar injector, for pod CREATE requests."""
    if request.operation != "CREATE":
        return injecting.Decision(True)
    return injecting.inject(
        request.obj,
        request.namespace,
        catalog.namespace_labels(request.namespace),
        catalog,
        config,
    )
