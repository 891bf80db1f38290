"""What the controller's admission webhooks did: defaults, validation, immutability, membership.

* **Defaults** (mutating webhook, create only): ``spec.awsName`` as
  :func:`meshplane.model.naming.default_aws_name` gives it.
* **Validation** (validating webhook): the cross-field rules the CRD schema cannot
  state (one route type, prefix xor path, duplicate routes and backends, …) are
  :mod:`meshplane.model.rules`, applied here at the v1beta2 paths and worded as
  the webhook worded them (:mod:`meshplane.manifests.wording`). Only the
  webhook's own rules are defined here: ``meshRef``/``virtualGatewayRef``
  read-only on create, ``awsName``/``meshRef``/``virtualGatewayRef`` immutable
  on update.
* **Membership**: the Mesh whose ``namespaceSelector`` matches the namespace's
  labels (exactly one), and for a GatewayRoute the one VirtualGateway that
  selects it. The real webhook decided this at create time and refused the
  object otherwise; meshplane accepts the object and lets it wait, reporting
  the same reason, so namespaces may be labelled after the objects are applied
  (the walkthrough's order). Once designated, membership never changes.

Problems reach the caller as ``(field path, message)`` pairs; nothing here has side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshplane.manifests import wording
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.schema import join
from meshplane.model import kinds, naming, rules, selectors
from meshplane.model.problems import Problem

Message = tuple[str, str]
"""``(field path, message)`` as the webhook worded it."""

_READ_ONLY_ON_CREATE = {
    "VirtualNode": ("meshRef",),
    "VirtualRouter": ("meshRef",),
    "VirtualService": ("meshRef",),
    "VirtualGateway": ("meshRef",),
    "GatewayRoute": ("meshRef", "virtualGatewayRef"),
    "BackendGroup": ("meshRef",),
}


def admit(
    incoming: ManifestObject, existing: ManifestObject | None
) -> tuple[ManifestObject, list[Message]]:
    """Default and validate ``incoming`` against the stored ``existing`` (``None`` on create).

    Returns the object to store (with awsName and the webhook-owned refs carried
    over from ``existing``) and every problem found.
    """
    obj = incoming.clone()
    problems: list[Message] = []
    if obj.info.aws_title is None and obj.kind != "BackendGroup":
        return obj, problems  # Namespace, Service: nothing to default or validate
    spec = obj.spec
    if existing is None:
        for field in _READ_ONLY_ON_CREATE.get(obj.kind, ()):
            if spec.get(field) is not None:
                problems.append(
                    (
                        f"spec.{field}",
                        f"{obj.kind} create may not specify read-only field: spec.{field}",
                    )
                )
        if obj.kind != "BackendGroup" and not spec.get("awsName"):
            spec["awsName"] = naming.default_aws_name(obj.kind, obj.name, obj.namespace)
    else:
        problems.extend(_carry_immutables(obj, existing))
    problems.extend(wording.render(problem) for problem in check(obj))
    return obj, problems


def _carry_immutables(obj: ManifestObject, existing: ManifestObject) -> list[Message]:
    """Fields the user may omit on update (kept) but not change (refused)."""
    fields = ["awsName", "meshRef"]
    if obj.kind == "GatewayRoute":
        fields.append("virtualGatewayRef")
    if obj.kind == "BackendGroup":
        fields = ["meshRef"]
    changed: list[str] = []
    for field in fields:
        old = existing.spec.get(field)
        if obj.spec.get(field) is None:
            if old is not None:
                obj.spec[field] = old
        elif obj.spec[field] != old:
            changed.append(f"spec.{field}")
    old_map = (existing.spec.get("serviceDiscovery") or {}).get("awsCloudMap")
    new_map = (obj.spec.get("serviceDiscovery") or {}).get("awsCloudMap")
    if obj.kind == "VirtualNode" and old_map is not None and new_map != old_map:
        changed.append("spec.serviceDiscovery.awsCloudMap")
    if not changed:
        return []
    message = f"{obj.kind} update may not change these fields: {','.join(changed)}"
    return [(changed[0], message)]


def ref_namespace(ref: dict[str, Any], obj: ManifestObject) -> str:
    """A ref's namespace; empty or missing means the referencing object's own."""
    return str(ref.get("namespace") or obj.namespace)


# --- which of model.rules each kind's spec meets, at which paths --------------------------


def check(obj: ManifestObject) -> list[Problem]:
    """The semantic rules ``obj``'s spec breaks, as structured problems (webhook order)."""
    return _RULES.get(obj.kind, _no_rules)(obj)


def _no_rules(_obj: ManifestObject) -> list[Problem]:
    return []


def _virtual_node(obj: ManifestObject) -> list[Problem]:
    spec = obj.spec
    found = rules.service_discovery(spec, "spec")
    # The webhook reported backends in order: a bad reference or a repeat, per backend.
    per_backend: dict[int, list[Problem]] = {}
    entries, index_of = [], {}
    for index, backend in enumerate(spec.get("backends") or []):
        path = f"spec.backends[{index}].virtualService"
        service = backend["virtualService"]
        broken = rules.ref_or_arn(
            service, path, "virtualServiceRef", "virtualServiceARN", kinds.VIRTUAL_SERVICE
        )
        if broken:
            per_backend[index] = broken
            continue
        if service.get("virtualServiceRef") is not None:
            ref = service["virtualServiceRef"]
            identity, field = f"{ref_namespace(ref, obj)}/{ref['name']}", "virtualServiceRef"
        else:
            identity, field = service["virtualServiceARN"], "virtualServiceARN"
        entries.append((identity, join(path, field), identity))
        index_of[join(path, field)] = index
    for problem in rules.repeated(entries, "backend-unique"):
        per_backend[index_of[problem.path]] = [problem]
    found += [problem for index in sorted(per_backend) for problem in per_backend[index]]
    return found + rules.connection_pool_one(spec.get("listeners") or [], "virtual node")


_ROUTE_TYPES = ("grpcRoute", "httpRoute", "http2Route", "tcpRoute")


def _virtual_router(obj: ManifestObject) -> list[Problem]:
    found: list[Problem] = []
    routes = obj.spec.get("routes") or []
    names = [(r["name"], f"spec.routes[{i}].name", r["name"]) for i, r in enumerate(routes)]
    duplicate = {problem.path: problem for problem in rules.repeated(names, "route-name-unique")}
    for index, route in enumerate(routes):
        path = f"spec.routes[{index}]"
        if join(path, "name") in duplicate:
            found.append(duplicate[join(path, "name")])
        route_type = rules.chosen(route, _ROUTE_TYPES)
        if route_type is None:
            found += rules.exactly_one(route, _ROUTE_TYPES, path)
            continue
        body = route[route_type]
        if route_type in {"httpRoute", "http2Route"}:
            match, mpath = body["match"], join(path, f"{route_type}.match")
            broken = rules.prefix_and_path(match, mpath, required=True)
            if not broken and match.get("path") is not None:
                broken = rules.exactly_one(match["path"], ("exact", "regex"), join(mpath, "path"))
            found += broken
        for t_index, target in enumerate(body["action"]["weightedTargets"]):
            target_path = f"{path}.{route_type}.action.weightedTargets[{t_index}]"
            found += rules.ref_or_arn(
                target, target_path, "virtualNodeRef", "virtualNodeARN", kinds.VIRTUAL_NODE
            )
    return found


def _virtual_service(obj: ManifestObject) -> list[Problem]:
    provider = obj.spec.get("provider")
    if provider is None:
        return []
    found = rules.exactly_one(provider, ("virtualNode", "virtualRouter"), "spec.provider")
    if found:
        return found
    if provider.get("virtualNode") is not None:
        return rules.ref_or_arn(
            provider["virtualNode"],
            "spec.provider.virtualNode",
            "virtualNodeRef",
            "virtualNodeARN",
            kinds.VIRTUAL_NODE,
        )
    return rules.ref_or_arn(
        provider["virtualRouter"],
        "spec.provider.virtualRouter",
        "virtualRouterRef",
        "virtualRouterARN",
        kinds.VIRTUAL_ROUTER,
    )


def _virtual_gateway(obj: ManifestObject) -> list[Problem]:
    return rules.connection_pool_one(obj.spec.get("listeners") or [], "virtual gateway")


def _gateway_http(route: dict[str, Any], path: str) -> list[Problem]:
    match = route["match"]
    mpath = join(path, "match")
    found = rules.gateway_match_required(match, mpath)
    found += rules.prefix_and_path(match, mpath, required=False)
    found += rules.prefix_slash(match, mpath)
    if match.get("path") is not None:
        found += rules.exactly_one(match["path"], ("exact", "regex"), join(mpath, "path"))
    if match.get("hostname") is not None:
        found += rules.exactly_one(match["hostname"], ("exact", "suffix"), join(mpath, "hostname"))
    found += rules.header_matches(match.get("headers"), join(mpath, "headers"), methods=True)
    found += rules.query_exact(match.get("queryParameters"), join(mpath, "queryParameters"))
    rewrite = route["action"].get("rewrite")
    if rewrite is not None:
        found += rules.rewrite_block(rewrite, join(path, "action.rewrite"))
    return found


_GATEWAY_ROUTE_TYPES = ("grpcRoute", "httpRoute", "http2Route")


def _gateway_route(obj: ManifestObject) -> list[Problem]:
    spec = obj.spec
    route_type = rules.chosen(spec, _GATEWAY_ROUTE_TYPES)
    if route_type is None:
        return rules.exactly_one(spec, _GATEWAY_ROUTE_TYPES, "spec")
    route, path = spec[route_type], f"spec.{route_type}"
    found: list[Problem] = []
    if route_type == "grpcRoute":
        match = route["match"]
        found += rules.grpc_gateway_match(match, join(path, "match"))
        metadata = match.get("metadata")
        found += rules.header_matches(
            metadata, join(path, "match.metadata"), what="metadata", methods=True
        )
    else:
        found += _gateway_http(route, path)
    return found + rules.ref_or_arn(
        route["action"]["target"]["virtualService"],
        join(path, "action.target.virtualService"),
        "virtualServiceRef",
        "virtualServiceARN",
        kinds.VIRTUAL_SERVICE,
    )


_RULES = {
    "VirtualNode": _virtual_node,
    "VirtualRouter": _virtual_router,
    "VirtualService": _virtual_service,
    "VirtualGateway": _virtual_gateway,
    "GatewayRoute": _gateway_route,
}


# --- membership -----------------------------------------------------------------------


def _the_one(
    candidates: list[ManifestObject], none: str, several: str, name: Callable[[ManifestObject], str]
) -> tuple[ManifestObject | None, str]:
    """The one candidate, or ``None`` and the webhook's reason (none, or several by name)."""
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, f"{none}, expecting 1 but found 0"
    names = ",".join(name(candidate) for candidate in candidates)
    return None, f"{several}, expecting 1 but found {len(candidates)}: {names}"


def designate_mesh(obj: ManifestObject, catalog: Catalog) -> tuple[ManifestObject | None, str]:
    """The one Mesh selecting ``obj``'s namespace, or ``None`` and the reason why not."""
    candidates = selectors.meshes_for(
        catalog.of_kind("Mesh"),
        lambda mesh: mesh.spec.get("namespaceSelector"),
        catalog.namespace_labels(obj.namespace),
    )
    mesh, reason = _the_one(
        candidates,
        f"failed to find matching mesh for namespace: {obj.namespace}",
        f"found multiple matching meshes for namespace: {obj.namespace}",
        lambda mesh: mesh.name,
    )
    if mesh is not None and mesh.deleting:
        return None, (
            f"unable to create new content in mesh {mesh.name} because it is being terminated"
        )
    return mesh, reason


def designate_gateway(route: ManifestObject, catalog: Catalog) -> tuple[ManifestObject | None, str]:
    """The one VirtualGateway that selects a GatewayRoute, or ``None`` and the reason why not."""
    candidates = selectors.gateways_for(
        catalog.of_kind("VirtualGateway"),
        lambda gateway: gateway.spec.get("namespaceSelector"),
        lambda gateway: gateway.spec.get("gatewayRouteSelector"),
        catalog.namespace_labels(route.namespace),
        route.labels,
    )
    return _the_one(
        candidates,
        f"failed to find matching virtualGateway for gatewayRoute: {route.name}",
        f"found multiple matching virtualGateways for gatewayRoute: {route.name}",
        lambda gateway: f"{gateway.namespace}/{gateway.name}",
    )


def mesh_ref(mesh: ManifestObject) -> dict[str, str]:
    """The ``spec.meshRef`` value naming ``mesh``."""
    return {"name": mesh.name, "uid": mesh.uid}
