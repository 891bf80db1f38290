"""The front door over a real store and domain service: batches, reconcile, events, finalizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.manifests.frontdoor import FrontDoor, NotFoundError
from meshplane.manifests.objects import ManifestError
from meshplane.model import errors, kinds

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "echo"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n  labels: {mesh: demos}\n"


def node(name: str, namespace: str = "demos", aws_name: str = "") -> str:
    aws = f"\n  awsName: {aws_name}" if aws_name else ""
    return (
        f"apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:{aws}\n"
        "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
        f"  serviceDiscovery: {{dns: {{hostname: {name}}}}}\n"
    )


@pytest.fixture
def door(tmp_path: Path) -> FrontDoor:
    clock, ids = FakeClock(), counting_ids()
    plane = app.build(settings.load(environ={}, data_dir=tmp_path), clock, ids)
    return FrontDoor(plane.services.resources, clock, ids)


def apply(door: FrontDoor, *texts: str, namespace: str | None = "demos") -> list[str]:
    return [
        o.line() for o in door.apply([(f"f{i}.yaml", t) for i, t in enumerate(texts)], namespace)
    ]


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_a_bad_document_changes_nothing(door: FrontDoor) -> None:
    """All documents are checked first: one bad one and nothing of the batch is stored."""
    bad = node("b").replace("port: 80", "port: 0")
    with pytest.raises(ManifestError) as caught:
        apply(
            door,
            NAMESPACE + "---\n" + example("demos-mesh.yaml") + "---\n" + node("a") + "---\n" + bad,
        )
    assert caught.value.problems == [
        "f0.yaml document 4: spec.listeners[0].portMapping.port: value 0 is below the minimum 1"
    ]
    assert door.catalog().all() == []
    assert door.service.list_refs(kinds.MESH)["meshes"] == []


def test_spec_app_mesh_would_refuse_is_caught_at_apply(door: FrontDoor) -> None:
    """The converted spec is checked against App Mesh's rules with the document's index."""
    pooled = node("a").replace(
        "protocol: http}}]", "protocol: http}, connectionPool: {tcp: {maxConnections: 1}}}]"
    )
    with pytest.raises(ManifestError) as caught:
        apply(door, NAMESPACE, example("demos-mesh.yaml"), pooled)
    assert caught.value.problems == [
        "f2.yaml document 1: App Mesh refuses the converted VirtualNodeSpec: "
        "spec.listeners[0].connectionPool: a http listener takes connectionPool.http, "
        "not connectionPool.tcp"
    ]


def test_missing_namespace_is_refused(door: FrontDoor) -> None:
    """A namespaced object needs its namespace, as kubectl does."""
    with pytest.raises(ManifestError) as caught:
        apply(door, node("a", namespace="nowhere"), namespace=None)
    assert caught.value.problems == [
        'f0.yaml document 1: metadata.namespace: namespaces "nowhere" not found'
    ]


def test_two_objects_may_not_twin_one_resource(door: FrontDoor) -> None:
    """Two nodes mapping to one awsName in one mesh are refused, naming the other."""
    other = NAMESPACE.replace("name: demos", "name: other")
    apply(door, NAMESPACE, other, example("demos-mesh.yaml"), node("a", aws_name="shared"))
    with pytest.raises(ManifestError) as caught:
        apply(door, node("b", namespace="other", aws_name="shared"), namespace=None)
    assert caught.value.problems == [
        "f0.yaml document 1: spec.awsName: VirtualNode 'shared' in mesh demos is already the "
        "awsName of VirtualNode demos/a; each App Mesh resource twins one object"
    ]


def test_aws_name_is_immutable_through_apply(door: FrontDoor) -> None:
    """Re-applying with another awsName is refused; without one, the stored one stays."""
    apply(door, NAMESPACE, example("demos-mesh.yaml"), node("a"))
    with pytest.raises(ManifestError) as caught:
        apply(door, node("a", aws_name="renamed"))
    assert caught.value.problems == [
        "f0.yaml document 1: spec.awsName: VirtualNode update may not change these fields: "
        "spec.awsName"
    ]
    assert apply(door, node("a")) == ["virtualnode.appmesh.k8s.aws/a unchanged"]
    assert door.get("VirtualNode", "demos", "a").spec["awsName"] == "a_demos"


def test_waiting_reasons_become_one_event_each(door: FrontDoor) -> None:
    """A router waiting for a missing node says so once in events, and in its condition."""
    router = example("vr-echo-backend.yaml")
    apply(door, NAMESPACE, example("demos-mesh.yaml"), node("vn-echo-backend-blue", aws_name="b"))
    outcome = door.apply([("vr.yaml", router)], "demos")[0]
    reason = "VirtualNode demos/vn-echo-backend-green not found"
    assert outcome.warnings == (f"virtualrouter/vr-echo-backend is not Active: {reason}",)
    apply(door, router)  # reconciling again does not repeat the event
    obj = door.get("VirtualRouter", "demos", "vr-echo-backend")
    assert [(e.type, e.reason, e.message, e.count) for e in door.events(obj)] == [
        ("Warning", "Waiting", reason, 1)
    ]
    condition = obj.status["conditions"][0]
    assert (condition["type"], condition["status"], condition["message"]) == (
        "VirtualRouterActive",
        "False",
        reason,
    )
    apply(door, node("vn-echo-backend-green", aws_name="g"))
    obj = door.get("VirtualRouter", "demos", "vr-echo-backend")
    assert obj.status["conditions"][0]["status"] == "True"
    route = door.service.describe(
        kinds.ROUTE, "demos", "vrr-echo-backend", parent="vr-echo-backend"
    )
    assert route["spec"]["httpRoute"]["action"]["weightedTargets"] == [
        {"virtualNode": "b", "weight": 100},
        {"virtualNode": "g", "weight": 0},
    ]


def test_deletion_waits_like_the_finalizers(door: FrontDoor) -> None:
    """A mesh waits for its members, a route target for its router; then both twins go."""
    apply(door, NAMESPACE, example("demos-mesh.yaml"))
    apply(door, example("vn-echo-backend-blue.yaml"), example("vn-echo-backend-green.yaml"))
    apply(door, example("vr-echo-backend.yaml"))
    mesh = door.delete("Mesh", "", "demos")
    assert mesh.warnings == (
        "mesh/demos waits: objects belonging to this mesh exist, delete them to proceed: "
        "virtualRouter: 1, virtualNode: 2",
    )
    blue = door.delete("VirtualNode", "demos", "vn-echo-backend-blue")
    assert blue.warnings == (
        "virtualnode/vn-echo-backend-blue waits: ResourceInUseException: VirtualNode with name "
        "vn-echo-backend-blue cannot be deleted because it is the target of one or more routes: "
        "vr-echo-backend/vrr-echo-backend",
    )
    assert door.get("VirtualNode", "demos", "vn-echo-backend-blue").deleting
    with pytest.raises(ManifestError) as caught:
        apply(door, example("vn-echo-backend-blue.yaml"))
    assert caught.value.problems == [
        "f0.yaml document 1: virtualnode/vn-echo-backend-blue is being deleted; "
        "wait until it is gone"
    ]
    assert door.delete("VirtualRouter", "demos", "vr-echo-backend").warnings == ()
    # The router's deletion unblocked the node; only the green node keeps the mesh now.
    with pytest.raises(NotFoundError):
        door.get("VirtualNode", "demos", "vn-echo-backend-blue")
    assert door.get("Mesh", "", "demos").deleting
    assert door.delete("VirtualNode", "demos", "vn-echo-backend-green").warnings == ()
    with pytest.raises(NotFoundError) as missing:
        door.get("Mesh", "", "demos")
    assert str(missing.value) == 'meshes.appmesh.k8s.aws "demos" not found'
    with pytest.raises(errors.NotFoundException):
        door.service.describe(kinds.MESH, "demos", "demos")
    events = door.events(door.get("Namespace", "", "demos"))
    assert events == []


def test_gateway_route_joins_its_gateway(door: FrontDoor) -> None:
    """A GatewayRoute is attached to the one VirtualGateway selecting it, under its awsName."""
    gateway = (
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway\nmetadata: {name: gw}\n"
        "spec:\n  namespaceSelector: {matchLabels: {mesh: demos}}\n"
        "  listeners: [{portMapping: {port: 8080, protocol: http}}]\n"
    )
    route = (
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: gr}\n"
        "spec:\n  httpRoute:\n    match: {prefix: /}\n"
        "    action: {target: {virtualService: {virtualServiceRef: {name: vs-echo-backend}}}}\n"
    )
    apply(door, NAMESPACE, example("demos-mesh.yaml"), example("vn-echo-backend-blue.yaml"))
    apply(door, example("vn-echo-backend-green.yaml"), example("vr-echo-backend.yaml"))
    apply(door, example("vs-echo-backend.yaml"), gateway, route)
    stored = door.get("GatewayRoute", "demos", "gr")
    assert stored.spec["virtualGatewayRef"] == {
        "name": "gw",
        "namespace": "demos",
        "uid": door.get("VirtualGateway", "demos", "gw").uid,
    }
    assert stored.status["gatewayRouteARN"] == (
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualGateway/gw_demos/gatewayRoute/gr_demos"
    )
    data = door.service.describe(kinds.GATEWAY_ROUTE, "demos", "gr_demos", parent="gw_demos")
    assert data["spec"]["httpRoute"]["action"] == {
        "target": {
            "virtualService": {"virtualServiceName": "vs-echo-backend.demos.svc.cluster.local"}
        }
    }
    gone = door.delete("VirtualGateway", "demos", "gw")
    assert gone.warnings == (
        "virtualgateway/gw waits: gatewayRoutes attached to this gateway exist, delete them to "
        "proceed: gatewayRoute: 1",
    )


def test_label_overwrite_and_removal(door: FrontDoor) -> None:
    """Labels are set, refused without --overwrite when changed, and removed with key-."""
    apply(door, NAMESPACE)
    with pytest.raises(ManifestError) as caught:
        door.label("demos", {"mesh": "other"}, overwrite=False)
    assert caught.value.problems == ["'mesh' already has a value (demos), and --overwrite is false"]
    door.label("demos", {"team": "a", "mesh": None}, overwrite=False)
    assert door.get("Namespace", "", "demos").labels == {"team": "a"}


def test_apply_warns_about_acm_references_at_once(door: FrontDoor) -> None:
    """An ACM certificate cannot be fetched off AWS: apply says so, naming the path."""
    acm_node = node("vn-acm").replace(
        "  listeners: [{portMapping: {port: 80, protocol: http}}]\n",
        "  listeners:\n"
        "    - portMapping: {port: 80, protocol: http}\n"
        "      tls:\n"
        "        mode: STRICT\n"
        "        certificate: {acm: {certificateARN: 'arn:aws:acm:us-west-2:1:certificate/x'}}\n",
    )
    outcomes = door.apply([("f.yaml", NAMESPACE), ("g.yaml", acm_node)], "demos")
    acm_warnings = [w for o in outcomes for w in o.warnings if "ACM" in w]
    assert acm_warnings == [
        "virtualnode/vn-acm: spec.listeners[0].tls.certificate.acm: ACM is unreachable off AWS; "
        "meshplane serves it from its built-in CA (clients must trust <data-dir>/ca/ca.pem)"
    ]


def test_apply_warns_about_each_accepted_field_translation_ignores(door: FrontDoor) -> None:
    """A Cloud Map VirtualNode applies, with a warning naming what its emulation lacks."""
    cloud_map = (
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
        "metadata: {name: blue, namespace: demos}\nspec:\n"
        "  podSelector: {matchLabels: {color: blue}}\n"
        "  listeners:\n"
        "  - portMapping: {port: 8080, protocol: http}\n"
        "    healthCheck: {protocol: http, path: /ping, port: 8080, healthyThreshold: 2,\n"
        "                  unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000}\n"
        "  serviceDiscovery:\n"
        "    awsCloudMap: {namespaceName: demo.local, serviceName: color,\n"
        "                  attributes: [{key: color, value: blue}]}\n"
    )
    outcomes = door.apply(
        [("f.yaml", NAMESPACE + "---\n" + example("demos-mesh.yaml") + "---\n" + cloud_map)],
        "demos",
    )
    warned = {outcome.line(): list(outcome.warnings) for outcome in outcomes}
    assert warned == {
        "namespace/demos created": [],
        "mesh.appmesh.k8s.aws/demos created": [],
        "virtualnode.appmesh.k8s.aws/blue created": [
            "virtualnode/blue: spec.serviceDiscovery.awsCloudMap (service color in namespace "
            "demo.local) is emulated by meshplane: its instances are the endpoints registered "
            "for this mesh's VirtualNodes naming the same Cloud Map namespace and service (local "
            "replicas, Ready pods); instances registered in AWS Cloud Map by anything else, "
            "Cloud Map health checks and the namespace's DNS records are not available",
        ],
    }
