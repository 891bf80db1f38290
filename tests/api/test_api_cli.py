"""The walkthrough's ``aws appmesh`` commands print what App Mesh printed.

The mesh is built through boto3 (as the walkthrough's controller would through the
API); the checks are the exact commands users ran, parsed from the CLI's JSON.
"""

from __future__ import annotations

from typing import Any

import pytest
import walkthrough as wt

from conftest import ACCOUNT, make_client

ARN = f"arn:aws:appmesh:us-west-2:{ACCOUNT}:mesh/{wt.MESH}"

pytestmark = pytest.mark.integration


def _weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
    return [(t["virtualNode"], t["weight"]) for t in targets]


def test_walkthrough_commands_print_app_mesh_output(start_server: Any, aws_cli_for: Any) -> None:
    """list/describe of meshes, nodes, routers, routes and services, before and after 50/50."""
    live = start_server()
    aws = aws_cli_for(live)
    wt.build(make_client(live.url))

    meshes = aws("list-meshes")["meshes"]
    assert [(m["meshName"], m["arn"], m["version"]) for m in meshes] == [(wt.MESH, ARN, 1)]
    assert meshes[0]["meshOwner"] == meshes[0]["resourceOwner"] == ACCOUNT

    mesh = aws("describe-mesh", "--mesh-name", wt.MESH)["mesh"]
    assert mesh["spec"] == {"egressFilter": {"type": "DROP_ALL"}}
    assert mesh["status"] == {"status": "ACTIVE"}
    assert mesh["metadata"]["version"] == 1

    nodes = aws("list-virtual-nodes", "--mesh-name", wt.MESH)["virtualNodes"]
    assert [(n["virtualNodeName"], n["version"]) for n in nodes] == [
        (wt.BLUE, 1),
        (wt.GREEN, 1),
        (wt.FRONTEND, 1),
    ]
    assert nodes[0]["arn"] == f"{ARN}/virtualNode/{wt.BLUE}"

    frontend = aws(
        "describe-virtual-node", "--mesh-name", wt.MESH, "--virtual-node-name", wt.FRONTEND
    )["virtualNode"]
    assert frontend["spec"]["backends"] == [{"virtualService": {"virtualServiceName": wt.SERVICE}}]
    assert frontend["spec"]["listeners"] == [{"portMapping": {"port": 80, "protocol": "http"}}]
    assert frontend["status"] == {"status": "ACTIVE"}

    routers = aws("list-virtual-routers", "--mesh-name", wt.MESH)["virtualRouters"]
    assert [(r["virtualRouterName"], r["version"]) for r in routers] == [(wt.ROUTER, 1)]

    routes = aws("list-routes", "--mesh-name", wt.MESH, "--virtual-router-name", wt.ROUTER)
    assert [(r["routeName"], r["version"]) for r in routes["routes"]] == [(wt.ROUTE, 1)]
    route_args = ("--mesh-name", wt.MESH, "--virtual-router-name", wt.ROUTER)
    route = aws("describe-route", *route_args, "--route-name", wt.ROUTE)["route"]
    assert _weights(route) == [(wt.BLUE, 100), (wt.GREEN, 0)]
    assert route["spec"]["httpRoute"]["match"] == {"prefix": "/"}
    assert route["metadata"]["version"] == 1

    services = aws("list-virtual-services", "--mesh-name", wt.MESH)["virtualServices"]
    assert [(s["virtualServiceName"], s["version"]) for s in services] == [(wt.SERVICE, 1)]
    assert services[0]["arn"] == f"{ARN}/virtualService/{wt.SERVICE}"

    # The walkthrough's shift, done with the CLI itself.
    shifted = aws(
        "update-route",
        *route_args,
        "--route-name",
        wt.ROUTE,
        "--spec",
        '{"httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": ['
        f'{{"virtualNode": "{wt.BLUE}", "weight": 50}}, '
        f'{{"virtualNode": "{wt.GREEN}", "weight": 50}}]}}}}}}',
    )["route"]
    assert shifted["metadata"]["version"] == 2
    route = aws("describe-route", *route_args, "--route-name", wt.ROUTE)["route"]
    assert _weights(route) == [(wt.BLUE, 50), (wt.GREEN, 50)]
    assert route["metadata"]["version"] == 2
    assert route["metadata"]["createdAt"] == shifted["metadata"]["createdAt"]
    routes = aws("list-routes", *route_args)["routes"]
    assert [(r["routeName"], r["version"]) for r in routes] == [(wt.ROUTE, 2)]


def test_cli_reports_app_mesh_errors(start_server: Any, aws_cli_for: Any) -> None:
    """``aws appmesh describe-mesh`` of a missing mesh fails with NotFoundException."""
    done = aws_cli_for(start_server()).run("describe-mesh", "--mesh-name", "nope")
    assert done.returncode == 255
    assert "NotFoundException" in done.stderr
    assert "Mesh with name nope is not present for account 123456789012" in done.stderr
