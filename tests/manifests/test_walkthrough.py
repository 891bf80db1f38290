"""The blue-green walkthrough replayed with its own files; `meshplane` and boto3 agree each step."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .live import EXAMPLES, Cli, Server, appmesh, table

pytestmark = pytest.mark.integration

ACCOUNT_ARN = "arn:aws:appmesh:us-west-2:123456789012"
WAITING = "failed to find matching mesh for namespace: demos, expecting 1 but found 0"


def weights(route: dict[str, Any]) -> dict[str, int]:
    targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
    return {t["virtualNode"]: t["weight"] for t in targets}


def names(page: dict[str, Any], key: str, member: str) -> list[str]:
    return sorted(item[member] for item in page[key])


def test_walkthrough_twins_every_object(cli: Cli, server: Server, tmp_path: Path) -> None:
    """Each walkthrough step shows the same state through `meshplane get` and boto3."""
    api = appmesh(server)
    files = tmp_path / "echo"
    shutil.copytree(EXAMPLES, files)
    # The walkthrough labels the namespace as its last step; start from it unlabelled.
    (files / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n", encoding="utf-8"
    )

    # 1. The namespace, unlabelled.
    assert cli.ok("apply", "-f", str(files / "namespace.yaml")) == "namespace/demos created\n"
    (row,) = table(cli.ok("get", "namespaces"))
    assert (row["NAME"], row["STATUS"]) == ("demos", "Active")

    # 2. The mesh: Active at once, visible through the App Mesh API.
    assert cli.ok("apply", "-f", str(files / "demos-mesh.yaml")) == (
        "mesh.appmesh.k8s.aws/demos created\n"
    )
    (row,) = table(cli.ok("get", "mesh"))
    assert (row["NAME"], row["ARN"], row["ACTIVE"]) == (
        "demos",
        f"{ACCOUNT_ARN}:mesh/demos",
        "True",
    )
    mesh = api.describe_mesh(meshName="demos")["mesh"]
    assert (mesh["spec"], mesh["status"]["status"]) == (
        {"egressFilter": {"type": "ALLOW_ALL"}},
        "ACTIVE",
    )

    # 3.-6. Backend nodes, router (100/0), service + Service, frontend node: accepted, waiting
    # because no mesh selects the unlabelled namespace; nothing reaches App Mesh yet.
    steps = [
        (
            ["vn-echo-backend-blue.yaml", "vn-echo-backend-green.yaml"],
            [
                "virtualnode.appmesh.k8s.aws/vn-echo-backend-blue created",
                "virtualnode.appmesh.k8s.aws/vn-echo-backend-green created",
            ],
        ),
        (["vr-echo-backend.yaml"], ["virtualrouter.appmesh.k8s.aws/vr-echo-backend created"]),
        (
            ["vs-echo-backend.yaml", "vs-echo-backend-service.yaml"],
            [
                "virtualservice.appmesh.k8s.aws/vs-echo-backend created",
                "service/vs-echo-backend created",
            ],
        ),
        (
            ["vn-echo-frontend-blue.yaml"],
            ["virtualnode.appmesh.k8s.aws/vn-echo-frontend-blue created"],
        ),
    ]
    for step_files, lines in steps:
        args = ["apply", "-n", "demos"]
        for name in step_files:
            args += ["-f", str(files / name)]
        result = cli(*args)
        assert (result.code, result.out.splitlines()) == (0, lines)
        assert WAITING in result.err
    rows = table(cli.ok("get", "virtualnodes", "-n", "demos"))
    assert [(r["NAME"], r["ARN"], r["ACTIVE"]) for r in rows] == [
        ("vn-echo-backend-blue", "", "False"),
        ("vn-echo-backend-green", "", "False"),
        ("vn-echo-frontend-blue", "", "False"),
    ]
    page = cli.ok("describe", "virtualnode", "vn-echo-backend-blue", "-n", "demos")
    assert f"    Message:               {WAITING}" in page.splitlines()
    assert any(
        line.split()[:2] == ["Warning", "Waiting"] and WAITING in line for line in page.splitlines()
    )
    assert api.list_virtual_nodes(meshName="demos")["virtualNodes"] == []
    assert api.list_virtual_routers(meshName="demos")["virtualRouters"] == []
    assert (table(cli.ok("get", "svc", "-n", "demos"))[0]["PORT(S)"]) == "80/TCP"

    # 7. Label the namespace: everything joins mesh demos and becomes Active, in both views.
    assert cli.ok("label", "namespace", "demos", "mesh=demos") == "namespace/demos labeled\n"
    rows = table(cli.ok("get", "vn", "-n", "demos"))
    assert [(r["NAME"], r["ARN"], r["ACTIVE"]) for r in rows] == [
        (n, f"{ACCOUNT_ARN}:mesh/demos/virtualNode/{n}", "True")
        for n in ("vn-echo-backend-blue", "vn-echo-backend-green", "vn-echo-frontend-blue")
    ]
    assert names(api.list_virtual_nodes(meshName="demos"), "virtualNodes", "virtualNodeName") == [
        "vn-echo-backend-blue",
        "vn-echo-backend-green",
        "vn-echo-frontend-blue",
    ]
    (row,) = table(cli.ok("get", "virtualrouter", "-A", "-o", "wide"))
    assert (row["NAMESPACE"], row["NAME"], row["ACTIVE"], row["MESH"], row["ROUTES"]) == (
        "demos",
        "vr-echo-backend",
        "True",
        "demos",
        "vrr-echo-backend",
    )
    assert row["WEIGHTS"] == "vrr-echo-backend: vn-echo-backend-blue=100,vn-echo-backend-green=0"
    route = api.describe_route(
        meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
    )["route"]
    assert (route["metadata"]["version"], weights(route)) == (
        1,
        {"vn-echo-backend-blue": 100, "vn-echo-backend-green": 0},
    )
    service = api.describe_virtual_service(
        meshName="demos", virtualServiceName="vs-echo-backend.demos.svc.cluster.local"
    )["virtualService"]
    assert service["spec"] == {
        "provider": {"virtualRouter": {"virtualRouterName": "vr-echo-backend"}}
    }
    frontend = api.describe_virtual_node(meshName="demos", virtualNodeName="vn-echo-frontend-blue")
    assert frontend["virtualNode"]["spec"]["backends"] == [
        {"virtualService": {"virtualServiceName": "vs-echo-backend.demos.svc.cluster.local"}}
    ]
    page = cli.ok("describe", "vr", "vr-echo-backend", "-n", "demos")
    route_arn = f"{ACCOUNT_ARN}:mesh/demos/virtualRouter/vr-echo-backend/route/vrr-echo-backend"
    assert f"    vrr-echo-backend: {route_arn}" in page.splitlines()

    # 8. Weights edited to 50/50 and re-applied: the route's version goes 1 -> 2.
    router = files / "vr-echo-backend.yaml"
    router.write_text(
        router.read_text().replace("weight: 100", "weight: 50").replace("weight: 0", "weight: 50")
    )
    assert cli.ok("apply", "-n", "demos", "-f", str(router)) == (
        "virtualrouter.appmesh.k8s.aws/vr-echo-backend configured\n"
    )
    route = api.describe_route(
        meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
    )["route"]
    assert (route["metadata"]["version"], weights(route)) == (
        2,
        {"vn-echo-backend-blue": 50, "vn-echo-backend-green": 50},
    )
    yaml_view = cli.ok("get", "vr", "vr-echo-backend", "-n", "demos", "-o", "yaml")
    assert "  generation: 2\n" in yaml_view
    assert "  observedGeneration: 2\n" in yaml_view

    # 9. The same file again changes nothing.
    assert cli.ok("apply", "-n", "demos", "-f", str(router)) == (
        "virtualrouter.appmesh.k8s.aws/vr-echo-backend unchanged\n"
    )
    route = api.describe_route(
        meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
    )["route"]
    assert route["metadata"]["version"] == 2


def test_objects_survive_a_restart(cli: Cli, server: Server) -> None:
    """Objects and their status live in the store: a restarted server still shows them."""
    cli.ok("apply", "-f", str(EXAMPLES / "namespace.yaml"), "-f", str(EXAMPLES / "demos-mesh.yaml"))
    cli.ok("label", "ns", "demos", "mesh=demos")
    cli.ok("apply", "-n", "demos", "-f", str(EXAMPLES / "vn-echo-backend-blue.yaml"))
    before = table(cli.ok("get", "vn", "-n", "demos", "-o", "wide"))
    server.stop()
    server.start()
    after = table(cli.ok("get", "vn", "-n", "demos", "-o", "wide"))
    assert [{**row, "AGE": ""} for row in after] == [{**row, "AGE": ""} for row in before]
    assert [(r["NAME"], r["ACTIVE"], r["MESH"]) for r in after] == [
        ("vn-echo-backend-blue", "True", "demos")
    ]
    assert table(cli.ok("get", "ns", "-o", "wide"))[0]["LABELS"] == "mesh=demos"
    node = appmesh(server).describe_virtual_node(
        meshName="demos", virtualNodeName="vn-echo-backend-blue"
    )
    assert node["virtualNode"]["status"]["status"] == "ACTIVE"
