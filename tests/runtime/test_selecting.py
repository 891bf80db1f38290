"""podSelector matching, VirtualNode objects from files or the control plane, and the node id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshplane.model import selectors
from meshplane.runtime import selecting, sidecars, virtualnodes
from meshplane.runtime.selecting import Binding, SelectionError, VirtualNodeView
from meshplane.runtime.workloads import Workload

LABELS = {"app": "echo-backend", "version": "blue"}


def _workload(labels: dict[str, str] = LABELS, namespace: str = "demos") -> Workload:
    return Workload("blue", namespace, labels, ("app",), {}, 80)


def _node(
    name: str, selector: dict[str, Any] | None, mesh: str | None = "demos"
) -> VirtualNodeView:
    return VirtualNodeView("demos", name, name, mesh, selector, (80,))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),
        ({"matchLabels": {"app": "echo-backend"}}, True),
        ({"matchLabels": {"app": "echo-backend", "version": "blue"}}, True),
        ({"matchLabels": {"app": "echo-backend", "version": "green"}}, False),
        ({"matchLabels": {"tier": "web"}}, False),
        (
            {"matchExpressions": [{"key": "version", "operator": "In", "values": ["blue", "x"]}]},
            True,
        ),
        ({"matchExpressions": [{"key": "version", "operator": "In", "values": ["green"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, False),
        (
            {"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["blue"]}]},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["e"]}]}, False),
        (
            {
                "matchLabels": {"app": "echo-backend"},
                "matchExpressions": [{"key": "version", "operator": "In", "values": ["green"]}],
            },
            False,
        ),
    ],
)
def test_label_selectors_follow_kubernetes(selector: dict[str, Any], expected: bool) -> None:
    """matchLabels and every matchExpressions operator, all of which must hold."""
    assert selectors.matches(selector, LABELS) is expected


def test_absent_selector_selects_nothing_and_empty_everything() -> None:
    """App Mesh: a VirtualNode without podSelector has no pods; ``{}`` has them all."""
    assert selectors.selects(None, LABELS) is False
    assert selectors.selects({}, {}) is True


def test_a_workload_binds_to_the_one_node_selecting_it_in_its_namespace() -> None:
    """Only nodes of the workload's namespace count; the node id is App Mesh's short form."""
    other_namespace = VirtualNodeView("prod", "vn-x", "vn-x", "demos", {}, (80,))
    nodes = [_node("vn-blue", {"matchLabels": {"version": "blue"}}), other_namespace]
    binding = selecting.bind(_workload(), nodes)
    assert binding == Binding("demos", "vn-blue", (80,))
    assert binding.node_id == "mesh/demos/virtualNode/vn-blue"
    assert selecting.bind(_workload(namespace="prod"), [nodes[0]]) is None


def test_no_match_means_no_sidecar() -> None:
    """A workload nothing selects is outside the mesh: bind returns None."""
    assert selecting.bind(_workload(), [_node("vn-green", {"matchLabels": {"v": "g"}})]) is None


def test_several_matches_are_refused_as_the_injector_did() -> None:
    """Two selecting nodes is an error naming both, sorted."""
    nodes = [_node("vn-b", {}), _node("vn-a", {"matchLabels": {"app": "echo-backend"}})]
    with pytest.raises(SelectionError) as caught:
        selecting.bind(_workload(), nodes)
    assert str(caught.value) == (
        "workload demos/blue: found multiple matching VirtualNodes: vn-a, vn-b"
    )


def test_a_node_without_mesh_keeps_the_workload_waiting() -> None:
    """A selecting node whose namespace joined no Mesh yet is 'not found yet'."""
    with pytest.raises(SelectionError) as caught:
        selecting.bind(_workload(), [_node("vn-blue", {}, mesh=None)])
    assert str(caught.value) == (
        "workload demos/blue: VirtualNode vn-blue belongs to no mesh yet (does a Mesh's "
        "namespaceSelector match namespace demos's labels?)"
    )


RAW = """\
apiVersion: v1
kind: Namespace
metadata: {name: demos, labels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: demos}
spec: {awsName: demos-mesh, namespaceSelector: {matchLabels: {mesh: demos}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-blue}
spec:
  awsName: vn-echo-backend-blue
  podSelector: {matchLabels: {app: echo-backend-blue}}
  listeners: [{portMapping: {port: 80, protocol: http}}, {portMapping: {port: 9000, protocol: tcp}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-other, namespace: elsewhere}
spec: {listeners: []}
"""


def test_raw_manifests_resolve_aws_name_and_mesh(tmp_path: Path) -> None:
    """From files: namespace from -n, awsName default, mesh by the namespace's labels."""
    (tmp_path / "mesh.yaml").write_text(RAW)
    (tmp_path / "workloads.yaml").write_text("not: [a manifest\n")  # skipped, never parsed
    (tmp_path / "notes.txt").write_text("ignored")
    found = virtualnodes.read_directory(tmp_path, default_namespace="demos")
    assert found == [
        VirtualNodeView(
            "demos",
            "vn-blue",
            "vn-echo-backend-blue",
            "demos-mesh",
            {"matchLabels": {"app": "echo-backend-blue"}},
            (80, 9000),
        ),
        VirtualNodeView("elsewhere", "vn-other", "vn-other_elsewhere", None, None, ()),
    ]


def test_stored_objects_take_mesh_and_name_from_the_twin_arn() -> None:
    """From the control plane: status.virtualNodeARN wins, then meshRef, then namespace labels."""
    stored = [
        {
            "kind": "VirtualNode",
            "metadata": {"name": "vn-a", "namespace": "demos"},
            "spec": {"awsName": "ignored", "meshRef": {"name": "m"}, "podSelector": {}},
            "status": {
                "virtualNodeARN": "arn:aws:appmesh:us-west-2:123456789012:"
                "mesh/demos/virtualNode/vn-a_demos"
            },
        },
        {
            "kind": "VirtualNode",
            "metadata": {"name": "vn-b", "namespace": "demos"},
            "spec": {"awsName": "vn-b", "meshRef": {"name": "m"}},
        },
        {"kind": "Mesh", "metadata": {"name": "m"}, "spec": {"awsName": "m-aws"}},
    ]
    assert [(v.name, v.aws_name, v.mesh) for v in virtualnodes.views(stored)] == [
        ("vn-a", "vn-a_demos", "demos"),
        ("vn-b", "vn-b", "m-aws"),
    ]


def test_the_echo_manifests_select_the_echo_workloads() -> None:
    """The walkthrough's VirtualNodes (if present on this branch) each select one workload."""
    example = Path(__file__).resolve().parents[2] / "examples" / "echo"
    nodes = virtualnodes.read_directory(example, default_namespace="demos")
    if not nodes:
        pytest.skip("the walkthrough's manifests are not on this branch yet")
    from meshplane.runtime import workloads  # noqa: PLC0415

    for workload in workloads.load(example):
        assert [n.name for n in selecting.selecting(workload, nodes)] == [f"vn-{workload.name}"]


def test_a_gateway_workload_binds_to_the_virtual_gateway_selecting_it() -> None:
    """No command: only VirtualGateways are candidates, and the node id names the gateway."""
    gateway_workload = Workload("gw", "demos", {"app": "gw"}, (), {}, 0)
    selector = {"matchLabels": {"app": "gw"}}
    node = VirtualNodeView("demos", "vn-gw", "vn-gw_demos", "demos", selector, (80,))
    gateway = VirtualNodeView(
        "demos", "ingress-gw", "ingress-gw_demos", "demos", selector, (8088, 8089), "virtualGateway"
    )
    binding = selecting.bind(gateway_workload, [node, gateway])
    assert binding == Binding("demos", "ingress-gw_demos", (8088, 8089), "virtualGateway")
    assert (binding.node_id, binding.is_gateway) == (
        "mesh/demos/virtualGateway/ingress-gw_demos",
        True,
    )
    assert selecting.bind(_workload(selector["matchLabels"]), [node, gateway]) == Binding(
        "demos", "vn-gw_demos", (80,)
    )
    with pytest.raises(SelectionError) as caught:
        selecting.bind(gateway_workload, [node])
    assert str(caught.value) == (
        "workload demos/gw has no command, so it runs a gateway, but no VirtualGateway's "
        "podSelector selects its labels yet"
    )


def test_virtual_gateway_documents_become_gateway_views() -> None:
    """A stored VirtualGateway reads as a view of kind virtualGateway, its ARN giving the name."""
    document = {
        "kind": "VirtualGateway",
        "metadata": {"name": "ingress-gw", "namespace": "demos"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "gw"}},
            "listeners": [{"portMapping": {"port": 8088, "protocol": "http"}}],
        },
        "status": {
            "virtualGatewayARN": "arn:aws:appmesh:us-west-2:1:mesh/demos/virtualGateway/gw_demos"
        },
    }
    assert virtualnodes.views([document]) == [
        VirtualNodeView(
            "demos",
            "ingress-gw",
            "gw_demos",
            "demos",
            {"matchLabels": {"app": "gw"}},
            (8088,),
            "virtualGateway",
        )
    ]


ARN_PREFIX = "arn:aws:appmesh:us-west-2:111122223333:"


def test_tcp_backends_are_the_services_whose_provider_has_a_tcp_listener() -> None:
    """A service whose provider (router or node) has a tcp listener is a TCP backend."""

    def doc(kind: str, name: str, spec: dict[str, Any], namespace: str = "demos") -> Any:
        return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    tcp_listener = {"listeners": [{"portMapping": {"port": 7000, "protocol": "tcp"}}]}
    http_listener = {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]}
    documents = [
        doc("Mesh", "demos", {"namespaceSelector": {}}),
        doc("VirtualRouter", "vr-echo", tcp_listener),
        doc("VirtualNode", "vn-db", tcp_listener),
        doc("VirtualNode", "vn-web", http_listener),
        doc(
            "VirtualService",
            "echo",
            {"provider": {"virtualRouter": {"virtualRouterRef": {"name": "vr-echo"}}}},
        ),
        doc(
            "VirtualService",
            "db",
            {
                "awsName": "db.other",
                "provider": {"virtualNode": {"virtualNodeRef": {"name": "vn-db"}}},
            },
        ),
        doc(
            "VirtualService",
            "web",
            {"provider": {"virtualNode": {"virtualNodeRef": {"name": "vn-web"}}}},
        ),
        doc(
            "VirtualNode",
            "vn-client",
            {
                "backends": [
                    {"virtualService": {"virtualServiceRef": {"name": "echo"}}},
                    {
                        "virtualService": {
                            "virtualServiceARN": ARN_PREFIX + "mesh/demos/virtualService/db.other"
                        }
                    },
                    {"virtualService": {"virtualServiceRef": {"name": "web"}}},
                    {
                        "virtualService": {
                            "virtualServiceRef": {"name": "echo", "namespace": "elsewhere"}
                        }
                    },
                ]
            },
        ),
    ]
    found = {view.name: view.tcp_backends for view in virtualnodes.views(documents)}
    assert found == {
        "vn-client": ("db.other", "echo.demos"),
        "vn-db": (),
        "vn-web": (),
    }


def test_backend_variable_names_follow_the_service_name() -> None:
    """Upper-cased, every character but A-Z and 0-9 an underscore, between prefix and _ADDR."""
    assert sidecars.backend_variable("echo.tcp.svc.cluster.local") == (
        "MESHPLANE_BACKEND_ECHO_TCP_SVC_CLUSTER_LOCAL_ADDR"
    )
    assert sidecars.backend_variable("db-a_1.démo") == "MESHPLANE_BACKEND_DB_A_1_D_MO_ADDR"
    ports = sidecars.SidecarPorts(admin=0, egress=1, ingress={}, tcp={"b.x": 41001, "a.x": 41000})
    assert sidecars.backend_environment(ports) == {
        "MESHPLANE_BACKEND_A_X_ADDR": "127.0.0.1:41000",
        "MESHPLANE_BACKEND_B_X_ADDR": "127.0.0.1:41001",
    }
