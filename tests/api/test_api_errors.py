"""Error mapping, duplicates, clientToken, references and delete ordering (§13 checks 5-9).

Every rejection is checked for its exact code, HTTP status, ``x-amzn-ErrorType``
header and a message naming the field or resource, and for leaving the store's
revision where it was.
"""

from __future__ import annotations

import json
from typing import Any

import walkthrough as wt

from conftest import send_signed

# -- check 5: error mapping ----------------------------------------------------------------


def test_describe_unknown_resources_is_not_found(client: Any, rejected: Any, mesh: str) -> None:
    """Unknown mesh, node and route (and unknown parents) give NotFoundException 404."""
    rejected(
        lambda: client.describe_mesh(meshName="nope"),
        "NotFoundException",
        404,
        "Mesh with name nope is not present for account 123456789012",
    )
    rejected(
        lambda: client.describe_virtual_node(meshName=mesh, virtualNodeName="ghost"),
        "NotFoundException",
        404,
        f"VirtualNode with name ghost is not present under mesh {mesh}",
    )
    rejected(
        lambda: client.describe_route(meshName=mesh, virtualRouterName="vr", routeName="r"),
        "NotFoundException",
        404,
        f"VirtualRouter with name vr is not present under mesh {mesh}",
    )
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    rejected(
        lambda: client.describe_route(meshName=mesh, virtualRouterName="vr", routeName="r"),
        "NotFoundException",
        404,
        f"Route with name r is not present under VirtualRouter vr in mesh {mesh}",
    )


def test_create_under_unknown_mesh_is_not_found(client: Any, rejected: Any) -> None:
    """CreateVirtualNode in a mesh that does not exist gives 404 naming the mesh."""
    rejected(
        lambda: client.create_virtual_node(meshName="absent", virtualNodeName="a", spec={}),
        "NotFoundException",
        404,
        "Mesh with name absent is not present",
    )


def _send(live: Any, url: str, method: str, body: bytes | None = None) -> tuple[int, Any, Any]:
    """A raw signed HTTP request: (status, headers, parsed JSON body), errors included."""
    status, headers, raw = send_signed(live, method, url, body)
    return status, headers, json.loads(raw)


def test_unknown_path_is_not_found_json(server: Any) -> None:
    """A path that is no operation answers a JSON NotFoundException, not an HTML page."""
    status, headers, body = _send(server, f"{server.url}/v20190125/nothing", "GET")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "NotFoundException"
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert "No App Mesh operation is served at GET /v20190125/nothing" in body["message"]


def test_malformed_json_body_is_bad_request(server: Any) -> None:
    """A body that is not JSON, or not an object, gives BadRequestException 400."""
    url = f"{server.url}/v20190125/meshes"
    status, headers, body = _send(server, url, "PUT", b"{not json")
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "BadRequestException"
    assert body["message"].startswith("The request body is not valid JSON")
    status, _, body = _send(server, url, "PUT", b"[1]")
    assert (status, body["message"]) == (400, "The request body must be a JSON object")
    status, _, body = _send(server, url, "PUT", b'{"meshName": "x", "colour": "red"}')
    assert status == 400
    assert body["message"].startswith("Invalid request: colour: unknown field for CreateMesh")


def test_hostile_bodies_are_bad_requests_not_server_errors(server: Any) -> None:
    """Absurdly nested JSON and a body over 4 MiB are 400s, and the store is untouched."""
    url = f"{server.url}/v20190125/meshes"
    before = server.revision()
    status, headers, body = _send(server, url, "PUT", b"[" * 100_000)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    assert body["message"].startswith("The request body is not valid JSON")
    status, headers, body = _send(server, url, "PUT", b" " * (4 * 1024 * 1024 + 1))
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    assert body["message"] == (
        "The request body is larger than the 4194304 bytes meshplane accepts"
    )
    assert server.revision() == before


def test_hostile_bodies_to_meshplane_endpoints_are_bad_requests(server: Any) -> None:
    """Absurdly nested JSON sent to the endpoint and manifest routes is a 400, not a 500."""
    nested = b"[" * 100_000 + b"]" * 100_000
    url = f"{server.url}/meshplane/v1/meshes/m/virtualNodes/vn/endpoints"
    status, headers, body = _send(server, url, "PUT", nested)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    assert body["message"].startswith("The request body is not valid JSON: maximum recursion")
    status, _, body = _send(server, f"{server.url}/meshplane/v1/manifests/apply", "POST", nested)
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["errors"][0].startswith("the request body is not valid JSON: maximum recursion")


def test_mesh_owner_of_another_account_is_not_found(client: Any, rejected: Any, mesh: str) -> None:
    """A meshOwner other than the served account sees nothing (404); its own id works."""
    rejected(
        lambda: client.describe_mesh(meshName=mesh, meshOwner="210987654321"),
        "NotFoundException",
        404,
        "meshOwner 210987654321",
    )
    assert client.describe_mesh(meshName=mesh, meshOwner="123456789012")["mesh"]["meshName"] == mesh


# -- check 6: duplicates -------------------------------------------------------------------


def test_duplicate_creates_conflict_and_leave_original(
    client: Any, rejected: Any, mesh: str
) -> None:
    """Re-creating a mesh, node or route (fresh tokens) is a Conflict; the original stays."""
    client.update_mesh(meshName=mesh, spec={"egressFilter": {"type": "ALLOW_ALL"}})
    client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("a.local"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"vn": 100})
    )
    rejected(
        lambda: client.create_mesh(meshName=mesh, spec={"egressFilter": {"type": "DROP_ALL"}}),
        "ConflictException",
        409,
        f"Mesh {mesh} already exists",
    )
    rejected(
        lambda: client.create_virtual_node(
            meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("b.local")
        ),
        "ConflictException",
        409,
        f"VirtualNode vn in mesh {mesh} already exists",
    )
    rejected(
        lambda: client.create_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"vn": 1})
        ),
        "ConflictException",
        409,
        f"Route rt in VirtualRouter vr in mesh {mesh} already exists",
    )
    kept = client.describe_mesh(meshName=mesh)["mesh"]
    assert kept["spec"] == {"egressFilter": {"type": "ALLOW_ALL"}}
    assert kept["metadata"]["version"] == 2
    node = client.describe_virtual_node(meshName=mesh, virtualNodeName="vn")["virtualNode"]
    assert node["spec"] == wt.node_spec("a.local")
    assert node["metadata"]["version"] == 1
    route = client.describe_route(meshName=mesh, virtualRouterName="vr", routeName="rt")["route"]
    assert route["spec"] == wt.route_spec({"vn": 100})
    assert [
        n["virtualNodeName"] for n in client.list_virtual_nodes(meshName=mesh)["virtualNodes"]
    ] == ["vn"]


# -- check 7: clientToken ------------------------------------------------------------------


def test_client_token_replay_returns_first_result(client: Any, server: Any, mesh: str) -> None:
    """The same token and body twice: one node, same uid and version, no new revision."""
    first = client.create_virtual_node(
        meshName=mesh, virtualNodeName="vn", spec={}, clientToken="tok-1"
    )["virtualNode"]
    revision = server.revision()
    second = client.create_virtual_node(
        meshName=mesh, virtualNodeName="vn", spec={}, clientToken="tok-1"
    )["virtualNode"]
    assert second == first
    assert server.revision() == revision
    assert len(client.list_virtual_nodes(meshName=mesh)["virtualNodes"]) == 1
    updated = client.update_virtual_node(
        meshName=mesh, virtualNodeName="vn", spec={"backends": []}, clientToken="tok-2"
    )["virtualNode"]
    replayed = client.update_virtual_node(
        meshName=mesh, virtualNodeName="vn", spec={"backends": []}, clientToken="tok-2"
    )["virtualNode"]
    assert updated["metadata"]["version"] == replayed["metadata"]["version"] == 2


def test_client_token_with_other_body_conflicts(client: Any, rejected: Any, mesh: str) -> None:
    """The same token with a different spec gives ConflictException 409 naming the token."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec={}, clientToken="t-9")
    rejected(
        lambda: client.create_virtual_node(
            meshName=mesh, virtualNodeName="vn", spec={"backends": []}, clientToken="t-9"
        ),
        "ConflictException",
        409,
        "clientToken t-9 was already used for a different CreateVirtualNode request",
    )


# -- check 8: referential integrity --------------------------------------------------------


def test_references_to_missing_resources_are_not_found(
    client: Any, rejected: Any, mesh: str
) -> None:
    """Route → missing node, VS → missing router/node, gateway route → missing VS: 404."""
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    rejected(
        lambda: client.create_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"gone": 1})
        ),
        "NotFoundException",
        404,
        "spec.httpRoute.action.weightedTargets[0].virtualNode: VirtualNode with name gone",
    )
    rejected(
        lambda: client.create_virtual_service(
            meshName=mesh, virtualServiceName="s.local", spec=wt.router_provider("nor")
        ),
        "NotFoundException",
        404,
        "spec.provider.virtualRouter.virtualRouterName: VirtualRouter with name nor",
    )
    rejected(
        lambda: client.create_virtual_service(
            meshName=mesh, virtualServiceName="s.local", spec=wt.node_provider("non")
        ),
        "NotFoundException",
        404,
        "spec.provider.virtualNode.virtualNodeName: VirtualNode with name non",
    )
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    rejected(
        lambda: client.create_gateway_route(
            meshName=mesh,
            virtualGatewayName="gw",
            gatewayRouteName="gr",
            spec=wt.gateway_route_spec("missing.local"),
        ),
        "NotFoundException",
        404,
        "VirtualService with name missing.local",
    )


def test_update_to_missing_target_is_not_found(client: Any, rejected: Any, mesh: str) -> None:
    """UpdateRoute naming a node that does not exist gives 404 and keeps version 1."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec={})
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"vn": 1})
    )
    rejected(
        lambda: client.update_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"x": 1})
        ),
        "NotFoundException",
        404,
        "VirtualNode with name x",
    )
    route = client.describe_route(meshName=mesh, virtualRouterName="vr", routeName="rt")["route"]
    assert route["metadata"]["version"] == 1


def test_backend_may_name_a_service_that_does_not_exist_yet(client: Any, mesh: str) -> None:
    """A node's backend is not a keep-alive reference: an absent VS is accepted (R13)."""
    made = client.create_virtual_node(
        meshName=mesh, virtualNodeName="fe", spec=wt.node_spec("fe.local", backends=("later",))
    )["virtualNode"]
    assert made["spec"]["backends"] == [{"virtualService": {"virtualServiceName": "later"}}]


# -- check 9: delete ordering --------------------------------------------------------------


def test_delete_of_used_resources_is_refused_and_teardown_works(
    client: Any, rejected: Any, mesh: str
) -> None:
    """Each ResourceInUse case refuses and keeps the resource; teardown in order succeeds."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec=wt.node_spec("vn.l"))
    client.create_virtual_node(meshName=mesh, virtualNodeName="pv", spec=wt.node_spec("pv.l"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"vn": 1})
    )
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr2", spec=wt.router_spec())
    client.create_virtual_service(
        meshName=mesh, virtualServiceName="by-router", spec=wt.router_provider("vr2")
    )
    client.create_virtual_service(
        meshName=mesh, virtualServiceName="by-node", spec=wt.node_provider("pv")
    )
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec("by-router"),
    )
    cases = [
        (lambda: client.delete_mesh(meshName=mesh), f"Mesh with name {mesh} cannot be deleted"),
        (
            lambda: client.delete_virtual_node(meshName=mesh, virtualNodeName="vn"),
            "VirtualNode with name vn cannot be deleted because it is the target of one or "
            "more routes: vr/rt",
        ),
        (
            lambda: client.delete_virtual_node(meshName=mesh, virtualNodeName="pv"),
            "VirtualNode with name pv cannot be deleted because it is a VirtualService "
            "provider: by-node",
        ),
        (
            lambda: client.delete_virtual_router(meshName=mesh, virtualRouterName="vr"),
            "VirtualRouter with name vr cannot be deleted because it has routes",
        ),
        (
            lambda: client.delete_virtual_router(meshName=mesh, virtualRouterName="vr2"),
            "VirtualRouter with name vr2 cannot be deleted because it is a VirtualService "
            "provider: by-router",
        ),
        (
            lambda: client.delete_virtual_service(meshName=mesh, virtualServiceName="by-router"),
            "VirtualService with name by-router cannot be deleted because it is referenced by "
            "gateway routes: gw/gr",
        ),
        (
            lambda: client.delete_virtual_gateway(meshName=mesh, virtualGatewayName="gw"),
            "VirtualGateway with name gw cannot be deleted because it has gateway routes",
        ),
    ]
    for call, message in cases:
        rejected(call, "ResourceInUseException", 409, message)
    assert client.describe_virtual_node(meshName=mesh, virtualNodeName="vn")["virtualNode"]
    assert client.describe_virtual_router(meshName=mesh, virtualRouterName="vr2")["virtualRouter"]
    assert client.describe_virtual_gateway(meshName=mesh, virtualGatewayName="gw")

    deleted = client.delete_gateway_route(
        meshName=mesh, virtualGatewayName="gw", gatewayRouteName="gr"
    )["gatewayRoute"]
    assert deleted["status"] == {"status": "DELETED"}
    assert deleted["gatewayRouteName"] == "gr"
    client.delete_virtual_gateway(meshName=mesh, virtualGatewayName="gw")
    client.delete_virtual_service(meshName=mesh, virtualServiceName="by-router")
    client.delete_virtual_service(meshName=mesh, virtualServiceName="by-node")
    client.delete_route(meshName=mesh, virtualRouterName="vr", routeName="rt")
    for router in ("vr", "vr2"):
        client.delete_virtual_router(meshName=mesh, virtualRouterName=router)
    for node in ("vn", "pv"):
        client.delete_virtual_node(meshName=mesh, virtualNodeName=node)
    gone = client.delete_mesh(meshName=mesh)["mesh"]
    assert gone["status"] == {"status": "DELETED"}
    rejected(lambda: client.describe_mesh(meshName=mesh), "NotFoundException", 404, mesh)


def test_backend_reference_does_not_block_service_delete(client: Any, mesh: str) -> None:
    """Being some node's backend does not keep a virtual service alive (R16)."""
    client.create_virtual_service(meshName=mesh, virtualServiceName="svc", spec={})
    client.create_virtual_node(
        meshName=mesh, virtualNodeName="fe", spec=wt.node_spec("fe.l", backends=("svc",))
    )
    out = client.delete_virtual_service(meshName=mesh, virtualServiceName="svc")
    assert out["virtualService"]["status"] == {"status": "DELETED"}
