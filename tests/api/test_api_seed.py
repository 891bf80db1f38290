"""The walkthrough through boto3, the raw wire format, ARNs and uids (appmesh-api.md §13 1-4)."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import walkthrough as wt

from conftest import ACCOUNT, REGION, send_signed

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ARN = f"arn:aws:appmesh:{REGION}:{ACCOUNT}:mesh"


def _raw_get(live: Any, url: str) -> tuple[int, Any, bytes]:
    return send_signed(live, "GET", url)


def test_seed_scenario_end_to_end(client: Any) -> None:
    """The walkthrough builds, and the 100/0 → 50/50 shift bumps only the route's version."""
    made = wt.build(client)
    route = made[wt.ROUTE]
    assert route["metadata"]["version"] == 1
    assert route["spec"]["httpRoute"]["action"]["weightedTargets"] == [
        {"virtualNode": wt.BLUE, "weight": 100},
        {"virtualNode": wt.GREEN, "weight": 0},
    ]
    service = client.describe_virtual_service(meshName=wt.MESH, virtualServiceName=wt.SERVICE)
    assert service["virtualService"]["spec"] == {
        "provider": {"virtualRouter": {"virtualRouterName": wt.ROUTER}}
    }
    assert service["virtualService"]["status"] == {"status": "ACTIVE"}
    frontend = client.describe_virtual_node(meshName=wt.MESH, virtualNodeName=wt.FRONTEND)
    assert frontend["virtualNode"]["spec"]["backends"] == [
        {"virtualService": {"virtualServiceName": wt.SERVICE}}
    ]

    shifted = wt.shift(client, {wt.BLUE: 50, wt.GREEN: 50})
    before, after = route["metadata"], shifted["metadata"]
    assert after["version"] == 2
    assert after["uid"] == before["uid"]
    assert after["createdAt"] == before["createdAt"]
    assert after["lastUpdatedAt"] >= before["lastUpdatedAt"]
    described = client.describe_route(
        meshName=wt.MESH, virtualRouterName=wt.ROUTER, routeName=wt.ROUTE
    )["route"]
    assert described["metadata"]["version"] == 2
    assert described["spec"]["httpRoute"]["action"]["weightedTargets"] == [
        {"virtualNode": wt.BLUE, "weight": 50},
        {"virtualNode": wt.GREEN, "weight": 50},
    ]
    listed = client.list_routes(meshName=wt.MESH, virtualRouterName=wt.ROUTER)["routes"]
    assert [(r["routeName"], r["version"]) for r in listed] == [(wt.ROUTE, 2)]
    nodes = client.list_virtual_nodes(meshName=wt.MESH)["virtualNodes"]
    assert [(n["virtualNodeName"], n["version"]) for n in nodes] == [
        (wt.BLUE, 1),
        (wt.GREEN, 1),
        (wt.FRONTEND, 1),
    ]


def test_short_virtual_service_name(client: Any, mesh: str) -> None:
    """A VS may also be named by its short name; the name is echoed and used in the ARN."""
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    made = client.create_virtual_service(
        meshName=mesh, virtualServiceName=wt.SHORT_SERVICE, spec=wt.router_provider("vr")
    )["virtualService"]
    assert made["virtualServiceName"] == wt.SHORT_SERVICE
    assert made["metadata"]["arn"] == f"{ARN}/{mesh}/virtualService/{wt.SHORT_SERVICE}"


def test_raw_describe_is_bare_payload_with_epoch_numbers(server: Any, client: Any) -> None:
    """A raw GET answers 200 application/json with the bare MeshData and numeric timestamps."""
    client.create_mesh(meshName="wire", spec={"egressFilter": {"type": "DROP_ALL"}})
    status, headers, raw = _raw_get(server, f"{server.url}/v20190125/meshes/wire")
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert UUID.match(headers["x-amzn-RequestId"])
    body = json.loads(raw)
    assert sorted(body) == ["meshName", "metadata", "spec", "status"]
    assert body["meshName"] == "wire"
    assert body["spec"] == {"egressFilter": {"type": "DROP_ALL"}}
    assert body["status"] == {"status": "ACTIVE"}
    meta = body["metadata"]
    assert sorted(meta) == [
        "arn",
        "createdAt",
        "lastUpdatedAt",
        "meshOwner",
        "resourceOwner",
        "uid",
        "version",
    ]
    assert isinstance(meta["createdAt"], float)
    assert isinstance(meta["lastUpdatedAt"], float)
    assert round(meta["createdAt"], 3) == meta["createdAt"]
    assert meta["version"] == 1
    described = client.describe_mesh(meshName="wire")
    created = described["mesh"]["metadata"]["createdAt"]
    assert created.tzinfo is not None
    assert created == datetime.datetime.fromtimestamp(meta["createdAt"], datetime.UTC)
    assert UUID.match(described["ResponseMetadata"]["RequestId"])


def test_raw_list_has_items_and_no_token_on_last_page(server: Any, client: Any) -> None:
    """A raw list answers ``{"virtualNodes": [...]}`` with no nextToken on the only page."""
    client.create_mesh(meshName="wirelist")
    client.create_virtual_node(meshName="wirelist", virtualNodeName="a", spec={})
    _, _, raw = _raw_get(server, f"{server.url}/v20190125/meshes/wirelist/virtualNodes")
    body = json.loads(raw)
    assert list(body) == ["virtualNodes"]
    assert [item["virtualNodeName"] for item in body["virtualNodes"]] == ["a"]
    assert "uid" not in body["virtualNodes"][0]


def _all_kinds(client: Any, mesh: str) -> dict[str, Any]:
    """One resource of each of the seven kinds; returns each payload by kind."""
    made = {"mesh": client.describe_mesh(meshName=mesh)["mesh"]}
    made["virtualNode"] = client.create_virtual_node(
        meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("vn.local")
    )["virtualNode"]
    made["virtualRouter"] = client.create_virtual_router(
        meshName=mesh, virtualRouterName="vr", spec=wt.router_spec()
    )["virtualRouter"]
    made["route"] = client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"vn": 1})
    )["route"]
    made["virtualService"] = client.create_virtual_service(
        meshName=mesh, virtualServiceName="svc.example.local", spec=wt.router_provider("vr")
    )["virtualService"]
    made["virtualGateway"] = client.create_virtual_gateway(
        meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec()
    )["virtualGateway"]
    made["gatewayRoute"] = client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec("svc.example.local"),
    )["gatewayRoute"]
    return made


def test_arns_and_owners_of_all_seven_kinds(client: Any, mesh: str) -> None:
    """Each kind's ARN has App Mesh's exact form; both owners are the 12-digit account."""
    made = _all_kinds(client, mesh)
    arns = {kind: data["metadata"]["arn"] for kind, data in made.items()}
    assert arns == {
        "mesh": f"{ARN}/{mesh}",
        "virtualNode": f"{ARN}/{mesh}/virtualNode/vn",
        "virtualRouter": f"{ARN}/{mesh}/virtualRouter/vr",
        "route": f"{ARN}/{mesh}/virtualRouter/vr/route/rt",
        "virtualService": f"{ARN}/{mesh}/virtualService/svc.example.local",
        "virtualGateway": f"{ARN}/{mesh}/virtualGateway/gw",
        "gatewayRoute": f"{ARN}/{mesh}/virtualGateway/gw/gatewayRoute/gr",
    }
    for data in made.values():
        assert data["metadata"]["meshOwner"] == ACCOUNT
        assert data["metadata"]["resourceOwner"] == ACCOUNT


def test_uids_distinct_stable_and_new_after_recreate(client: Any, mesh: str) -> None:
    """Every resource has its own uid, Describe repeats it, and a re-create gets a new one."""
    made = _all_kinds(client, mesh)
    uids = [data["metadata"]["uid"] for data in made.values()]
    assert len(set(uids)) == 7
    assert all(UUID.match(uid) for uid in uids)
    again = client.describe_virtual_node(meshName=mesh, virtualNodeName="vn")["virtualNode"]
    assert again["metadata"]["uid"] == made["virtualNode"]["metadata"]["uid"]
    client.delete_gateway_route(meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr")
    recreated = client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec("svc.example.local"),
    )["gatewayRoute"]
    assert recreated["metadata"]["uid"] not in uids
    assert recreated["metadata"]["version"] == 1
    refs = client.list_gateway_routes(meshName=mesh, virtualGatewayName="gw")["gatewayRoutes"]
    assert "uid" not in refs[0]
