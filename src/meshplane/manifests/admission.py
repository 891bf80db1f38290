"""What the controller's admission webhooks did: defaults, validation, immutability, membership.

* **Defaults** (mutating webhook, create only): ``spec.awsName`` is the name for a
  Mesh, ``<name>.<namespace>`` for a VirtualService and ``<name>_<namespace>`` for
  the other kinds.
* **Validation** (validating webhook): the cross-field rules the CRD schema cannot
  state (one route type, prefix xor path, duplicate routes and backends, …), and
  ``awsName``/``meshRef``/``virtualGatewayRef`` immutable on update.
* **Membership**: the Mesh whose ``namespaceSelector`` matches the namespace's
  labels (exactly one), and for a GatewayRoute the one VirtualGateway that
  selects it. The real webhook decided this at create time and refused the
  object otherwise; meshplane accepts the object and lets it wait, reporting
  the same reason, so namespaces may be labelled after the objects are applied
  (the walkthrough's order). Once designated, membership never changes.

Every rule returns ``(field path, message)`` pairs; nothing here has side effects.
"""

from __future__ import annotations

from typing import Any

from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.manifests.schema import join
from meshplane.model import kinds, naming, selectors

Problem = tuple[str, str]

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
) -> tuple[ManifestObject, list[Problem]]:
    """Default and validate ``incoming`` against the stored ``existing`` (``None`` on create).

    Returns the object to store (with awsName and the webhook-owned refs carried
    over from ``existing``) and every problem found.
    """
    obj = incoming.clone()
    problems: list[Problem] = []
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
    problems.extend(_RULES.get(obj.kind, _no_rules)(obj))
    return obj, problems


def _carry_immutables(obj: ManifestObject, existing: ManifestObject) -> list[Problem]:
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


def _no_rules(_obj: ManifestObject) -> list[Problem]:
    return []


# --- references -----------------------------------------------------------------------


def _one_ref(
    value: dict[str, Any], path: str, ref: str, arn: str, kind: kinds.Kind
) -> list[Problem]:
    """A typed reference must name its target one way: by ref or by an ARN of the right type."""
    has_ref, has_arn = value.get(ref) is not None, value.get(arn) is not None
    if has_ref == has_arn:
        return [(path, f"must set exactly one of {ref}, {arn}")]
    if has_arn:
        parsed = kinds.parse_arn(value[arn])
        if parsed is None or parsed[2].kind != kind.key:
            return [(join(path, arn), f"{value[arn]!r} is not a {kind.title} ARN")]
    return []


def ref_namespace(ref: dict[str, Any], obj: ManifestObject) -> str:
    """A ref's namespace; empty or missing means the referencing object's own."""
    return str(ref.get("namespace") or obj.namespace)


# --- per kind -------------------------------------------------------------------------


def _connection_pools(listeners: list[dict[str, Any]], kind: str) -> list[Problem]:
    found: list[Problem] = []
    for index, listener in enumerate(listeners):
        pool = listener.get("connectionPool") or {}
        if len([v for v in pool.values() if v is not None]) > 1:
            found.append(
                (
                    f"spec.listeners[{index}].connectionPool",
                    f"only one type of {kind} connection pool is allowed",
                )
            )
    return found


def _virtual_node(obj: ManifestObject) -> list[Problem]:
    spec = obj.spec
    found: list[Problem] = []
    if spec.get("listeners") and spec.get("serviceDiscovery") is None:
        found.append(("spec.serviceDiscovery", "must be specified when a listener is specified"))
    seen: set[str] = set()
    for index, backend in enumerate(spec.get("backends") or []):
        path = f"spec.backends[{index}].virtualService"
        service = backend["virtualService"]
        problems = _one_ref(
            service, path, "virtualServiceRef", "virtualServiceARN", kinds.VIRTUAL_SERVICE
        )
        found.extend(problems)
        if problems:
            continue
        if service.get("virtualServiceRef") is not None:
            ref = service["virtualServiceRef"]
            identity = f"{ref_namespace(ref, obj)}/{ref['name']}"
            field = "virtualServiceRef"
        else:
            identity = service["virtualServiceARN"]
            field = "virtualServiceARN"
        if identity in seen:
            found.append((join(path, field), f"duplicate backend virtual service {identity}"))
        seen.add(identity)
    found.extend(_connection_pools(spec.get("listeners") or [], "virtual node"))
    return found


def _http_match(match: dict[str, Any], path: str) -> list[Problem]:
    has_prefix, has_path = match.get("prefix") is not None, match.get("path") is not None
    if has_prefix == has_path:
        rule = (
            "both prefix and path cannot be specified, only 1 allowed"
            if has_prefix
            else "either prefix or path must be specified"
        )
        return [(path, rule)]
    if has_path:
        return _exactly_one(match["path"], join(path, "path"), ("exact", "regex"))
    return []


def _exactly_one(value: dict[str, Any], path: str, members: tuple[str, ...]) -> list[Problem]:
    present = [m for m in members if value.get(m) is not None]
    if len(present) != 1:
        found = f" (found {', '.join(present)})" if present else " (found none)"
        return [(path, f"must set exactly one of {', '.join(members)}{found}")]
    return []


_ROUTE_TYPES = ("grpcRoute", "httpRoute", "http2Route", "tcpRoute")


def _virtual_router(obj: ManifestObject) -> list[Problem]:
    found: list[Problem] = []
    names: set[str] = set()
    for index, route in enumerate(obj.spec.get("routes") or []):
        path = f"spec.routes[{index}]"
        if route["name"] in names:
            found.append((join(path, "name"), f"duplicate route name {route['name']!r}"))
        names.add(route["name"])
        kinds_found = _exactly_one(route, path, _ROUTE_TYPES)
        found.extend(kinds_found)
        if kinds_found:
            continue
        route_type = next(t for t in _ROUTE_TYPES if route.get(t) is not None)
        body = route[route_type]
        if route_type in {"httpRoute", "http2Route"}:
            found.extend(_http_match(body["match"], join(path, f"{route_type}.match")))
        for t_index, target in enumerate(body["action"]["weightedTargets"]):
            target_path = f"{path}.{route_type}.action.weightedTargets[{t_index}]"
            found.extend(
                _one_ref(
                    target, target_path, "virtualNodeRef", "virtualNodeARN", kinds.VIRTUAL_NODE
                )
            )
    return found


def _virtual_service(obj: ManifestObject) -> list[Problem]:
    provider = obj.spec.get("provider")
    if provider is None:
        return []
    found = _exactly_one(provider, "spec.provider", ("virtualNode", "virtualRouter"))
    if found:
        return found
    if provider.get("virtualNode") is not None:
        return _one_ref(
            provider["virtualNode"],
            "spec.provider.virtualNode",
            "virtualNodeRef",
            "virtualNodeARN",
            kinds.VIRTUAL_NODE,
        )
    return _one_ref(
        provider["virtualRouter"],
        "spec.provider.virtualRouter",
        "virtualRouterRef",
        "virtualRouterARN",
        kinds.VIRTUAL_ROUTER,
    )


def _virtual_gateway(obj: ManifestObject) -> list[Problem]:
    return _connection_pools(obj.spec.get("listeners") or [], "virtual gateway")


def _header_matches(headers: list[dict[str, Any]], path: str, what: str) -> list[Problem]:
    found: list[Problem] = []
    for index, header in enumerate(headers):
        match = header.get("match")
        if match is None:
            continue
        methods = [
            m for m in ("exact", "prefix", "range", "regex", "suffix") if match.get(m) is not None
        ]
        here = f"{path}[{index}].match"
        if not methods:
            found.append((here, f"missing match criteria for a {what} match block"))
        elif len(methods) > 1:
            found.append((here, f"too many match filters specified, only 1 allowed per {what}"))
        elif methods == ["range"] and match["range"]["end"] <= match["range"]["start"]:
            found.append((join(here, "range"), "end has to be greater than start"))
    return found


def _gateway_http(route: dict[str, Any], path: str) -> list[Problem]:
    found: list[Problem] = []
    match = route["match"]
    mpath = join(path, "match")
    has_prefix, has_path = match.get("prefix") is not None, match.get("path") is not None
    if not (has_prefix or has_path or match.get("hostname") is not None):
        found.append((mpath, "either prefix or path or hostname must be specified"))
    if has_prefix and has_path:
        found.append((mpath, "both prefix and path cannot be specified, only 1 allowed"))
    if has_prefix and not match["prefix"].startswith("/"):
        found.append((join(mpath, "prefix"), "prefix to be matched on must start with '/'"))
    if has_path:
        found.extend(_exactly_one(match["path"], join(mpath, "path"), ("exact", "regex")))
    if match.get("hostname") is not None:
        found.extend(_exactly_one(match["hostname"], join(mpath, "hostname"), ("exact", "suffix")))
    found.extend(_header_matches(match.get("headers") or [], join(mpath, "headers"), "header"))
    for index, query in enumerate(match.get("queryParameters") or []):
        if (query.get("match") or {}).get("exact") is None:
            found.append(
                (f"{mpath}.queryParameters[{index}].match", "missing exact match criteria")
            )
    rewrite = route["action"].get("rewrite")
    if rewrite is not None:
        rpath = join(path, "action.rewrite")
        if not any(rewrite.get(m) is not None for m in ("prefix", "path", "hostname")):
            found.append((rpath, "either prefix, path or hostname for rewrite must be specified"))
        if rewrite.get("prefix") is not None and rewrite.get("path") is not None:
            found.append(
                (rpath, "both prefix and path for rewrites cannot be specified, only 1 allowed")
            )
        prefix = rewrite.get("prefix") or {}
        if prefix.get("defaultPrefix") is not None and prefix.get("value") is not None:
            found.append(
                (
                    join(rpath, "prefix"),
                    "cannot specify both defaultPrefix and value, only 1 allowed",
                )
            )
        value = prefix.get("value")
        if value is not None and not (value.startswith("/") and value.endswith("/")):
            found.append(
                (join(rpath, "prefix.value"), "new rewrite prefix must start and end with '/'")
            )
    return found


def _gateway_route(obj: ManifestObject) -> list[Problem]:
    spec = obj.spec
    found = _exactly_one(spec, "spec", ("grpcRoute", "httpRoute", "http2Route"))
    if found:
        return found
    route_type = next(
        t for t in ("grpcRoute", "httpRoute", "http2Route") if spec.get(t) is not None
    )
    route, path = spec[route_type], f"spec.{route_type}"
    if route_type == "grpcRoute":
        match = route["match"]
        if match.get("serviceName") is None and match.get("hostname") is None:
            found.append((join(path, "match"), "either serviceName or hostname must be specified"))
        found.extend(
            _header_matches(match.get("metadata") or [], join(path, "match.metadata"), "metadata")
        )
    else:
        found.extend(_gateway_http(route, path))
    target = route["action"]["target"]["virtualService"]
    found.extend(
        _one_ref(
            target,
            join(path, "action.target.virtualService"),
            "virtualServiceRef",
            "virtualServiceARN",
            kinds.VIRTUAL_SERVICE,
        )
    )
    return found


_RULES = {
    "VirtualNode": _virtual_node,
    "VirtualRouter": _virtual_router,
    "VirtualService": _virtual_service,
    "VirtualGateway": _virtual_gateway,
    "GatewayRoute": _gateway_route,
}


# --- membership -----------------------------------------------------------------------


def designate_mesh(obj: ManifestObject, catalog: Catalog) -> tuple[ManifestObject | None, str]:
    """The one Mesh selecting ``obj``'s namespace, or ``None`` and the reason why not."""
    labels = catalog.namespace_labels(obj.namespace)
    candidates = selectors.selecting(
        catalog.of_kind("Mesh"), lambda mesh: mesh.spec.get("namespaceSelector"), labels
    )
    if len(candidates) == 1:
        mesh = candidates[0]
        if mesh.deleting:
            return (
                None,
                f"unable to create new content in mesh {mesh.name} because it is being terminated",
            )
        return mesh, ""
    if not candidates:
        return None, (
            f"failed to find matching mesh for namespace: {obj.namespace}, expecting 1 but found 0"
        )
    names = ",".join(mesh.name for mesh in candidates)
    return None, (
        f"found multiple matching meshes for namespace: {obj.namespace}, "
        f"expecting 1 but found {len(candidates)}: {names}"
    )


def designate_gateway(route: ManifestObject, catalog: Catalog) -> tuple[ManifestObject | None, str]:
    """The one VirtualGateway that selects a GatewayRoute, or ``None`` and the reason why not."""
    labels = catalog.namespace_labels(route.namespace)
    # An absent gatewayRouteSelector selects every route of the selected namespaces.
    in_namespace = selectors.selecting(
        catalog.of_kind("VirtualGateway"), lambda g: g.spec.get("namespaceSelector"), labels
    )
    candidates = selectors.selecting(
        in_namespace, lambda g: g.spec.get("gatewayRouteSelector") or {}, route.labels
    )
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, (
            f"failed to find matching virtualGateway for gatewayRoute: {route.name}, "
            "expecting 1 but found 0"
        )
    names = ",".join(f"{g.namespace}/{g.name}" for g in candidates)
    return None, (
        f"found multiple matching virtualGateways for gatewayRoute: {route.name}, "
        f"expecting 1 but found {len(candidates)}: {names}"
    )


def mesh_ref(mesh: ManifestObject) -> dict[str, str]:
    """The ``spec.meshRef`` value naming ``mesh``."""
    return {"name": mesh.name, "uid": mesh.uid}
