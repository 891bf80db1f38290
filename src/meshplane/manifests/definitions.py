"""CustomResourceDefinitions for the seven ``appmesh.k8s.aws/v1beta2`` kinds, from :mod:`crds`.

A Kubernetes API server needs each kind as an ``apiextensions.k8s.io/v1``
CustomResourceDefinition with a *structural* OpenAPI v3 schema: every node
typed, ``required`` lists beside ``properties``, free-form maps as
``additionalProperties``. meshplane already states every field, type,
requiredness, enum and range once, in :mod:`meshplane.manifests.crds`, for its
own admission; this module only translates those nodes, so the schema the API
server enforces and the one ``meshplane apply`` enforces cannot drift.

As the controller's CRDs do (``appmesh-controller.md`` §1.1): one version
``v1beta2``, served and stored; the status subresource; printer columns ``ARN``
(the status ARN) and ``AGE``; Mesh cluster-scoped, the others namespaced and in
the ``all`` category. Parts meshplane keeps but does not interpret (an open
:class:`~meshplane.manifests.schema.Struct`) keep unknown fields.
"""

from __future__ import annotations

from typing import Any

import yaml

from meshplane.manifests import crds
from meshplane.manifests.schema import ListOf, MapOf, Node, Scalar, Struct

KINDS = (
    "Mesh",
    "VirtualNode",
    "VirtualService",
    "VirtualRouter",
    "VirtualGateway",
    "GatewayRoute",
    "BackendGroup",
)

# The status member holding the App Mesh ARN, per kind (BackendGroup has no twin).
_ARN_FIELD = {
    "Mesh": "meshARN",
    "VirtualNode": "virtualNodeARN",
    "VirtualService": "virtualServiceARN",
    "VirtualRouter": "virtualRouterARN",
    "VirtualGateway": "virtualGatewayARN",
    "GatewayRoute": "gatewayRouteARN",
}

_CONDITION = {
    "type": "object",
    "required": ["status", "type"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}


def schema(node: Node) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one node."""
    if isinstance(node, Struct):
        out: dict[str, Any] = {"type": "object"}
        if node.fields:
            out["properties"] = {name: schema(child) for name, child in node.fields.items()}
        if node.required:
            out["required"] = sorted(node.required)
        if node.open:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out
    if isinstance(node, ListOf):
        out = {"type": "array", "items": schema(node.item)}
        _bounds(out, node.low, node.high, "minItems", "maxItems")
        return out
    if isinstance(node, MapOf):
        return {"type": "object", "additionalProperties": schema(node.value)}
    return _scalar(node)


def _scalar(node: Scalar) -> dict[str, Any]:
    out: dict[str, Any] = {"type": node.type}
    if node.enum:
        out["enum"] = list(node.enum)
    if node.type == "string":
        _bounds(out, node.low, node.high, "minLength", "maxLength")
    else:
        _bounds(out, node.low, node.high, "minimum", "maximum")
    return out


def _bounds(out: dict[str, Any], low: int | None, high: int | None, lo: str, hi: str) -> None:
    if low is not None:
        out[lo] = low
    if high is not None:
        out[hi] = high


def _status(kind: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "conditions": {"type": "array", "items": _CONDITION},
        "observedGeneration": {"type": "integer", "format": "int64"},
    }
    if kind in _ARN_FIELD:
        properties[_ARN_FIELD[kind]] = {"type": "string"}
    if kind == "VirtualRouter":
        properties["routeARNs"] = {"type": "object", "additionalProperties": {"type": "string"}}
    return {"type": "object", "properties": properties}


def definition(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of one v1beta2 kind."""
    info = crds.BY_KIND[kind]
    columns: list[dict[str, Any]] = []
    if kind in _ARN_FIELD:
        columns.append(
            {
                "name": "ARN",
                "type": "string",
                "description": "The AppMesh resource object's Amazon Resource Name",
                "jsonPath": f".status.{_ARN_FIELD[kind]}",
            }
        )
    columns.append({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": info.singular,
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.namespaced:
        names["categories"] = ["all"]
    root = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema(info.spec),
            "status": _status(kind),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.resource},
        "spec": {
            "group": crds.GROUP,
            "names": names,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [
                {
                    "name": "v1beta2",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes a shared sub-schema out in full each time: API servers want no YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - PyYAML's signature
        return True


def render(kind: str) -> str:
    """One CRD as a YAML document, keys in the order written above."""
    return yaml.dump(definition(kind), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def render_all() -> str:
    """Every CRD as one multi-document YAML stream."""
    return "---\n" + "---\n".join(render(kind) for kind in KINDS)


def file_name(kind: str) -> str:
    """The file a CRD goes to, named as kubebuilder names it: ``appmesh.k8s.aws_meshes.yaml``."""
    return f"{crds.GROUP}_{crds.BY_KIND[kind].plural}.yaml"
