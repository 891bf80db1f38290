"""v1beta2 spec → App Mesh API spec, as aws-app-mesh-controller-for-k8s converts them.

The CRDs mirror the API with three differences this module undoes:
references (``virtualNodeRef{name, namespace}`` or ``virtualNodeARN``) become
the referenced resource's App Mesh *name* (its awsName); a few members are
spelled differently (``certificateARN`` → ``certificateArn``,
``certificateAuthorityARNs`` → ``certificateAuthorityArns``,
``meshServiceDiscovery`` → ``serviceDiscovery``); and Kubernetes-only members
(``awsName``, selectors, ``meshRef``) are dropped. A VirtualNode's
``backendGroups`` are expanded into backends (:func:`_backend_groups`). A
VirtualRouter becomes one router plus one Route per ``spec.routes`` entry.

Conversion also applies the controller's *dependency gating*: a twin lists what
it waits for (:attr:`Twin.waiting`) while its mesh is not Active, while a reference names an
object that does not exist or lives in another mesh, and — for a
VirtualService's provider, a route's targets and a GatewayRoute's gateway and
target — while the referenced object is not Active yet. A VirtualNode's
backends only need to exist, so nodes may call each other in cycles.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meshplane.manifests.admission import ref_namespace
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.model import kinds, naming

_RENAMES = {
    "certificateARN": "certificateArn",
    "certificateAuthorityARNs": "certificateAuthorityArns",
}


@dataclasses.dataclass(frozen=True)
class Twin:
    """The App Mesh resource(s) one manifest object stands for."""

    kind: kinds.Kind
    mesh: str
    """The mesh's App Mesh name (equal to ``name`` for a Mesh)."""
    name: str
    spec: dict[str, Any]
    parent: str = ""
    """The VirtualGateway's App Mesh name, for a GatewayRoute."""
    routes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """A VirtualRouter's routes: route name → RouteSpec, in manifest order."""
    mesh_owner: str | None = None
    waiting: tuple[str, ...] = ()
    """Why the twin cannot be written yet (empty: ready). Unresolved references are
    filled with the referenced object's Kubernetes name so the spec can still be checked."""


def is_active(obj: ManifestObject) -> bool:
    """Whether the object's ``<Kind>Active`` condition is True."""
    wanted = f"{obj.kind}Active"
    return any(
        c.get("type") == wanted and c.get("status") == "True"
        for c in obj.status.get("conditions") or []
    )


def renamed(value: Any) -> Any:
    """A deep copy with the CRD's spellings turned into the API's."""
    if isinstance(value, dict):
        return {_RENAMES.get(k, k): renamed(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [renamed(item) for item in value]
    return value


class _Converter:
    def __init__(self, obj: ManifestObject, catalog: Catalog) -> None:
        self.obj = obj
        self.catalog = catalog
        self.waiting: list[str] = []
        self.mesh: ManifestObject | None = None

    def wait(self, reason: str) -> None:
        if reason not in self.waiting:
            self.waiting.append(reason)

    def resolve_mesh(self) -> str:
        ref = self.obj.spec.get("meshRef")
        if ref is None:
            self.wait("not yet a member of a mesh")
            return ""
        mesh = self.catalog.get("Mesh", "", ref["name"])
        if mesh is None or mesh.uid != ref["uid"]:
            self.wait(f"mesh {ref['name']} (uid {ref['uid']}) not found")
            return str(ref["name"])
        if not is_active(mesh):
            self.wait(f"mesh {mesh.name} is not Active yet")
        self.mesh = mesh
        return str(mesh.spec["awsName"])

    def resolve(
        self, holder: dict[str, Any], kind: str, ref_field: str, arn_field: str, active: bool
    ) -> str:
        """The App Mesh name a ref or ARN points at; records why it is not usable yet."""
        if holder.get(arn_field) is not None:
            parsed = kinds.parse_arn(holder[arn_field])
            return parsed[2].name if parsed else ""
        ref = holder[ref_field]
        namespace = ref_namespace(ref, self.obj)
        target = self.catalog.get(kind, namespace, ref["name"])
        if target is None or target.deleting:
            self.wait(f"{kind} {namespace}/{ref['name']} not found")
            return str(ref["name"])
        if self.mesh is not None and target.spec.get("meshRef") != self.obj.spec.get("meshRef"):
            self.wait(f"{kind} {namespace}/{ref['name']} is not in mesh {self.mesh.name}")
        elif active and not is_active(target):
            self.wait(f"{kind} {namespace}/{ref['name']} is not Active yet")
        return str(
            target.spec.get("awsName") or naming.default_aws_name(kind, ref["name"], namespace)
        )

    def targets(self, action: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = renamed(action)
        weighted = []
        for target in action["weightedTargets"]:
            item: dict[str, Any] = {
                "virtualNode": self.resolve(
                    target, "VirtualNode", "virtualNodeRef", "virtualNodeARN", True
                ),
                "weight": target["weight"],
            }
            if target.get("port") is not None:
                item["port"] = target["port"]
            weighted.append(item)
        out["weightedTargets"] = weighted
        return out

    def done(self, twin: Twin) -> Twin:
        return dataclasses.replace(twin, waiting=tuple(self.waiting))


def convert(obj: ManifestObject, catalog: Catalog) -> Twin:
    """The App Mesh twin of ``obj``, with what it still waits for (dependency gating)."""
    conv = _Converter(obj, catalog)
    spec = obj.spec
    if obj.kind == "Mesh":
        return _mesh(obj)
    mesh = conv.resolve_mesh()
    name = str(spec["awsName"])
    if obj.kind == "VirtualNode":
        api = renamed(
            {
                k: v
                for k, v in spec.items()
                if k in {"listeners", "serviceDiscovery", "backendDefaults", "logging"}
            }
        )
        backends = []
        for backend in spec.get("backends") or []:
            service = backend["virtualService"]
            entry: dict[str, Any] = {
                "virtualServiceName": conv.resolve(
                    service, "VirtualService", "virtualServiceRef", "virtualServiceARN", False
                )
            }
            if service.get("clientPolicy") is not None:
                entry["clientPolicy"] = renamed(service["clientPolicy"])
            backends.append({"virtualService": entry})
        listed = {b["virtualService"]["virtualServiceName"] for b in backends}
        for service_name in _backend_groups(conv):
            if service_name not in listed:
                listed.add(service_name)
                backends.append({"virtualService": {"virtualServiceName": service_name}})
        if backends:
            api["backends"] = backends
        return conv.done(Twin(kinds.VIRTUAL_NODE, mesh, name, api))
    if obj.kind == "VirtualService":
        api = {}
        provider = spec.get("provider")
        if provider and provider.get("virtualNode") is not None:
            node = conv.resolve(
                provider["virtualNode"], "VirtualNode", "virtualNodeRef", "virtualNodeARN", True
            )
            api["provider"] = {"virtualNode": {"virtualNodeName": node}}
        elif provider and provider.get("virtualRouter") is not None:
            router = conv.resolve(
                provider["virtualRouter"],
                "VirtualRouter",
                "virtualRouterRef",
                "virtualRouterARN",
                True,
            )
            api["provider"] = {"virtualRouter": {"virtualRouterName": router}}
        return conv.done(Twin(kinds.VIRTUAL_SERVICE, mesh, name, api))
    if obj.kind == "VirtualRouter":
        return _router(conv, mesh, name)
    if obj.kind == "VirtualGateway":
        keep = {"listeners", "logging", "backendDefaults"}
        api = renamed({k: v for k, v in spec.items() if k in keep})
        return conv.done(Twin(kinds.VIRTUAL_GATEWAY, mesh, name, api))
    if obj.kind == "GatewayRoute":
        return _gateway_route(conv, mesh, name)
    raise ValueError(f"{obj.kind} has no App Mesh twin")


ALL_SERVICES = "*"
"""A backendGroups entry with this name stands for every VirtualService of its namespace."""


def _backend_groups(conv: _Converter) -> list[str]:
    """The App Mesh names of the VirtualServices a VirtualNode's ``backendGroups`` add.

    As the appmesh-controller expanded them with ``--enable-backend-groups``: each entry
    ``{name, namespace}`` (namespace defaulting to the node's) names a BackendGroup whose
    ``virtualservices`` refs (namespace defaulting to the group's) become backends; the name
    ``*`` adds every VirtualService of that namespace in the node's mesh instead. A group or
    member that does not exist makes the node wait, as a missing backend does.
    """
    found: list[str] = []
    for ref in conv.obj.spec.get("backendGroups") or []:
        namespace = ref_namespace(ref, conv.obj)
        if ref["name"] == ALL_SERVICES:
            found += [
                str(service.spec.get("awsName") or service.name)
                for service in conv.catalog.of_kind("VirtualService", namespace)
                if not service.deleting
                and service.spec.get("meshRef") == conv.obj.spec.get("meshRef")
            ]
            continue
        group = conv.catalog.get("BackendGroup", namespace, ref["name"])
        if group is None or group.deleting:
            conv.wait(f"BackendGroup {namespace}/{ref['name']} not found")
            continue
        for member in group.spec.get("virtualservices") or []:
            holder = {"virtualServiceRef": {**member, "namespace": ref_namespace(member, group)}}
            found.append(
                conv.resolve(
                    holder, "VirtualService", "virtualServiceRef", "virtualServiceARN", False
                )
            )
    return found


def _mesh(obj: ManifestObject) -> Twin:
    api: dict[str, Any] = {}
    if obj.spec.get("egressFilter") is not None:
        api["egressFilter"] = renamed(obj.spec["egressFilter"])
    if obj.spec.get("meshServiceDiscovery") is not None:
        api["serviceDiscovery"] = renamed(obj.spec["meshServiceDiscovery"])
    name = str(obj.spec["awsName"])
    return Twin(kinds.MESH, name, name, api, mesh_owner=obj.spec.get("meshOwner"))


def _router(conv: _Converter, mesh: str, name: str) -> Twin:
    spec = conv.obj.spec
    api = {"listeners": renamed(spec.get("listeners") or [])}
    routes: dict[str, dict[str, Any]] = {}
    for route in spec.get("routes") or []:
        out: dict[str, Any] = {}
        if route.get("priority") is not None:
            out["priority"] = route["priority"]
        for route_type in ("grpcRoute", "httpRoute", "http2Route", "tcpRoute"):
            body = route.get(route_type)
            if body is None:
                continue
            converted = renamed({k: v for k, v in body.items() if k != "action"})
            converted["action"] = conv.targets(body["action"])
            out[route_type] = converted
        routes[route["name"]] = out
    return conv.done(Twin(kinds.VIRTUAL_ROUTER, mesh, name, api, routes=routes))


def _gateway(conv: _Converter, ref: dict[str, Any] | None) -> str:
    """The App Mesh name of a GatewayRoute's gateway, gated like the controller gates it."""
    if ref is None:
        conv.wait("not yet attached to a virtual gateway")
        return "gateway"
    namespace = ref_namespace(ref, conv.obj)
    gateway = conv.catalog.get("VirtualGateway", namespace, ref["name"])
    if gateway is None or gateway.uid != ref["uid"]:
        conv.wait(f"VirtualGateway {namespace}/{ref['name']} not found")
        return str(ref["name"])
    if gateway.spec.get("meshRef") != conv.obj.spec.get("meshRef"):
        conv.wait(f"VirtualGateway {namespace}/{gateway.name} is not in the same mesh")
    elif not is_active(gateway):
        conv.wait(f"VirtualGateway {namespace}/{gateway.name} is not Active yet")
    default = naming.default_aws_name("VirtualGateway", gateway.name, namespace)
    return str(gateway.spec.get("awsName") or default)


def _gateway_route(conv: _Converter, mesh: str, name: str) -> Twin:
    obj = conv.obj
    parent = _gateway(conv, obj.spec.get("virtualGatewayRef"))
    api: dict[str, Any] = {}
    if obj.spec.get("priority") is not None:
        api["priority"] = obj.spec["priority"]
    for route_type in ("grpcRoute", "httpRoute", "http2Route"):
        body = obj.spec.get(route_type)
        if body is None:
            continue
        action = renamed(body["action"])
        target = body["action"]["target"]
        service = conv.resolve(
            target["virtualService"],
            "VirtualService",
            "virtualServiceRef",
            "virtualServiceARN",
            True,
        )
        action["target"] = {"virtualService": {"virtualServiceName": service}}
        if target.get("port") is not None:
            action["target"]["port"] = target["port"]
        api[route_type] = {"match": renamed(body["match"]), "action": action}
    return conv.done(Twin(kinds.GATEWAY_ROUTE, mesh, name, api, parent=parent))
