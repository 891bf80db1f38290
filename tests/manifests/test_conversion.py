"""Conversion of v1beta2 objects to App Mesh API specs, with dependency gating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshplane.manifests import admission, conversion, documents
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "echo"
MESH_REF = {"name": "demos", "uid": "uid-mesh"}


def active(obj: ManifestObject) -> ManifestObject:
    obj.status = {"conditions": [{"type": f"{obj.kind}Active", "status": "True"}]}
    return obj


def example(name: str, *, member: bool = True, is_active: bool = True) -> ManifestObject:
    (doc,) = documents.parse((EXAMPLES / name).read_text(), name, "demos")
    obj, problems = admission.admit(doc.obj, None)
    assert problems == []
    obj.uid = f"uid-{obj.name}"
    if obj.kind == "Mesh":
        obj.uid = "uid-mesh"
    elif member:
        obj.spec["meshRef"] = dict(MESH_REF)
    return active(obj) if is_active else obj


def walkthrough() -> Catalog:
    files = [
        "demos-mesh.yaml",
        "vn-echo-backend-blue.yaml",
        "vn-echo-backend-green.yaml",
        "vr-echo-backend.yaml",
        "vs-echo-backend.yaml",
        "vn-echo-frontend-blue.yaml",
    ]
    return Catalog(example(name) for name in files)


def test_mesh() -> None:
    """A Mesh keeps egressFilter and renames meshServiceDiscovery; selectors are dropped."""
    mesh = example("demos-mesh.yaml")
    mesh.spec["meshServiceDiscovery"] = {"ipPreference": "IPv4_ONLY"}
    twin = conversion.convert(mesh, Catalog())
    assert (twin.kind.key, twin.mesh, twin.name) == ("mesh", "demos", "demos")
    assert twin.spec == {
        "egressFilter": {"type": "ALLOW_ALL"},
        "serviceDiscovery": {"ipPreference": "IPv4_ONLY"},
    }


def test_virtual_node_backend_becomes_the_service_aws_name() -> None:
    """A backend ref becomes the VS's awsName; podSelector and meshRef are dropped."""
    catalog = walkthrough()
    twin = conversion.convert(catalog.get("VirtualNode", "demos", "vn-echo-frontend-blue"), catalog)  # type: ignore[arg-type]
    assert (twin.mesh, twin.name) == ("demos", "vn-echo-frontend-blue")
    assert twin.spec == {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "echo-frontend-blue"}},
        "backends": [
            {"virtualService": {"virtualServiceName": "vs-echo-backend.demos.svc.cluster.local"}}
        ],
    }


def test_virtual_router_becomes_router_plus_one_route_per_entry() -> None:
    """Routes keep their names; weighted targets name the nodes' awsNames."""
    catalog = walkthrough()
    twin = conversion.convert(catalog.get("VirtualRouter", "demos", "vr-echo-backend"), catalog)  # type: ignore[arg-type]
    assert twin.spec == {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}
    assert twin.routes == {
        "vrr-echo-backend": {
            "httpRoute": {
                "match": {"prefix": "/"},
                "action": {
                    "weightedTargets": [
                        {"virtualNode": "vn-echo-backend-blue", "weight": 100},
                        {"virtualNode": "vn-echo-backend-green", "weight": 0},
                    ]
                },
            }
        }
    }


def test_virtual_service_provider() -> None:
    """A router provider becomes virtualRouterName."""
    catalog = walkthrough()
    twin = conversion.convert(catalog.get("VirtualService", "demos", "vs-echo-backend"), catalog)  # type: ignore[arg-type]
    assert (twin.name, twin.spec) == (
        "vs-echo-backend.demos.svc.cluster.local",
        {"provider": {"virtualRouter": {"virtualRouterName": "vr-echo-backend"}}},
    )


def test_tls_spellings_are_the_apis() -> None:
    """certificateARN and certificateAuthorityARNs take the API's spelling."""
    spec: dict[str, Any] = {
        "listeners": [
            {
                "portMapping": {"port": 443, "protocol": "http"},
                "tls": {"mode": "STRICT", "certificate": {"acm": {"certificateARN": "arn:c"}}},
            }
        ],
        "serviceDiscovery": {"dns": {"hostname": "h"}},
        "backendDefaults": {
            "clientPolicy": {
                "tls": {"validation": {"trust": {"acm": {"certificateAuthorityARNs": ["arn:ca"]}}}}
            }
        },
        "awsName": "n",
        "meshRef": MESH_REF,
    }
    catalog = walkthrough()
    twin = conversion.convert(ManifestObject("VirtualNode", "demos", "n", spec=spec), catalog)
    assert twin.spec["listeners"][0]["tls"]["certificate"] == {"acm": {"certificateArn": "arn:c"}}
    assert twin.spec["backendDefaults"]["clientPolicy"]["tls"]["validation"]["trust"] == {
        "acm": {"certificateAuthorityArns": ["arn:ca"]}
    }


def test_arn_references_use_the_name_in_the_arn() -> None:
    """An ARN reference points outside the cluster: its name is used, nothing is awaited."""
    spec = {
        "awsName": "vs",
        "meshRef": MESH_REF,
        "provider": {
            "virtualNode": {
                "virtualNodeARN": "arn:aws:appmesh:us-west-2:1:mesh/demos/virtualNode/ext"
            }
        },
    }
    twin = conversion.convert(
        ManifestObject("VirtualService", "demos", "vs", spec=spec), walkthrough()
    )
    assert twin.spec == {"provider": {"virtualNode": {"virtualNodeName": "ext"}}}


def test_gating_waits_for_mesh_membership() -> None:
    """An object without a meshRef is not a member of any mesh yet."""
    node = example("vn-echo-backend-blue.yaml", member=False)
    twin = conversion.convert(node, walkthrough())
    assert list(twin.waiting) == ["not yet a member of a mesh"]


def test_gating_router_waits_for_active_targets() -> None:
    """A router waits until every target node exists and is Active."""
    catalog = walkthrough()
    catalog.remove(("VirtualNode", "demos", "vn-echo-backend-green"))
    catalog.get("VirtualNode", "demos", "vn-echo-backend-blue").status = {}  # type: ignore[union-attr]
    twin = conversion.convert(catalog.get("VirtualRouter", "demos", "vr-echo-backend"), catalog)  # type: ignore[arg-type]
    assert list(twin.waiting) == [
        "VirtualNode demos/vn-echo-backend-blue is not Active yet",
        "VirtualNode demos/vn-echo-backend-green not found",
    ]


def test_gating_node_backends_need_only_exist() -> None:
    """A node's backend services need not be Active (cycles are allowed), only present."""
    catalog = walkthrough()
    catalog.get("VirtualService", "demos", "vs-echo-backend").status = {}  # type: ignore[union-attr]
    frontend = catalog.get("VirtualNode", "demos", "vn-echo-frontend-blue")
    assert conversion.convert(frontend, catalog).name == "vn-echo-frontend-blue"  # type: ignore[arg-type]
    catalog.remove(("VirtualService", "demos", "vs-echo-backend"))
    twin = conversion.convert(frontend, catalog)  # type: ignore[arg-type]
    assert list(twin.waiting) == ["VirtualService demos/vs-echo-backend not found"]


def test_gating_inactive_mesh_and_other_mesh() -> None:
    """Members wait for their mesh to be Active and refuse refs into another mesh."""
    catalog = walkthrough()
    catalog.get("Mesh", "", "demos").status = {}  # type: ignore[union-attr]
    blue = catalog.get("VirtualNode", "demos", "vn-echo-backend-blue")
    blue.status = {}  # type: ignore[union-attr]
    catalog.get("VirtualNode", "demos", "vn-echo-backend-green").spec["meshRef"] = {
        "name": "demos",
        "uid": "old",
    }  # type: ignore[union-attr]
    twin = conversion.convert(catalog.get("VirtualRouter", "demos", "vr-echo-backend"), catalog)  # type: ignore[arg-type]
    assert list(twin.waiting) == [
        "mesh demos is not Active yet",
        "VirtualNode demos/vn-echo-backend-blue is not Active yet",
        "VirtualNode demos/vn-echo-backend-green is not in mesh demos",
    ]


def test_gateway_route_target_and_gateway() -> None:
    """A GatewayRoute names its gateway's awsName as parent and its target VS by awsName."""
    catalog = walkthrough()
    gateway = active(
        ManifestObject(
            "VirtualGateway",
            "demos",
            "gw",
            spec={"awsName": "gw_demos", "meshRef": MESH_REF},
            uid="uid-gw",
        )
    )
    catalog.put(gateway)
    spec = {
        "awsName": "gr_demos",
        "meshRef": MESH_REF,
        "priority": 5,
        "virtualGatewayRef": {"name": "gw", "namespace": "demos", "uid": "uid-gw"},
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {
                "target": {
                    "virtualService": {"virtualServiceRef": {"name": "vs-echo-backend"}},
                    "port": 80,
                }
            },
        },
    }
    twin = conversion.convert(ManifestObject("GatewayRoute", "demos", "gr", spec=spec), catalog)
    assert (twin.parent, twin.name) == ("gw_demos", "gr_demos")
    assert twin.spec == {
        "priority": 5,
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {
                "target": {
                    "virtualService": {
                        "virtualServiceName": "vs-echo-backend.demos.svc.cluster.local"
                    },
                    "port": 80,
                }
            },
        },
    }


def test_a_target_without_aws_name_converts_to_the_webhook_default() -> None:
    """A stored target without an awsName resolves to model.naming's default, not its name."""
    catalog = walkthrough()
    node = catalog.get("VirtualNode", "demos", "vn-echo-backend-blue")
    assert node is not None
    del node.spec["awsName"]
    router = catalog.get("VirtualRouter", "demos", "vr-echo-backend")
    assert router is not None
    twin = conversion.convert(router, catalog)
    targets = twin.routes["vrr-echo-backend"]["httpRoute"]["action"]["weightedTargets"]
    assert [t["virtualNode"] for t in targets] == [
        "vn-echo-backend-blue_demos",
        "vn-echo-backend-green",
    ]
