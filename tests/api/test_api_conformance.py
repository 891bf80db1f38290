"""A walk over botocore's App Mesh model: what it specifies is what the server does.

Every operation is routed; every error meshplane can raise is one of the model's
exception shapes with the same HTTP status; every member a full walkthrough's
responses carry is declared by the model's output shapes, and every required one is
there. A botocore upgrade that changes the API makes these tests say so.
"""

from __future__ import annotations

import json
import re
from typing import Any

import walkthrough as wt

from conftest import make_client, send_signed
from meshplane.model import errors

DUMMY = {
    "meshName": "m",
    "virtualNodeName": "n",
    "virtualRouterName": "r",
    "routeName": "rt",
    "virtualServiceName": "s.local",
    "virtualGatewayName": "g",
    "gatewayRouteName": "gr",
}


def _model(client: Any) -> Any:
    return client.meta.service_model


def _send(
    live: Any, url: str, method: str, body: bytes | None
) -> tuple[int, dict[str, str], bytes]:
    status, headers, raw = send_signed(live, method, url, body)
    return status, dict(headers), raw


def test_every_operation_is_served(server: Any, client: Any) -> None:
    """All 38 operations' method and URI reach an operation, never the catch-all 404."""
    model = _model(client)
    assert len(model.operation_names) == 38
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = re.sub(r"\{(\w+)\}", lambda m: DUMMY[m.group(1)], http["requestUri"])
        body = b"{}" if http["method"] in ("PUT", "POST") else None
        status, headers, raw = _send(server, f"{server.url}{path}", http["method"], body)
        message = json.loads(raw).get("message", "") if raw else ""
        assert "No App Mesh operation" not in message, (name, status, message)
        assert headers.get("Content-Type", "").startswith("application/json"), name


def test_every_error_meshplane_raises_is_a_model_exception(client: Any) -> None:
    """Each leaf of meshplane's error tree is a model exception shape with the same status."""
    model = _model(client)
    declared = {
        name: model.shape_for(name).metadata["error"]["httpStatusCode"]
        for name in model.shape_names
        if model.shape_for(name).metadata.get("exception")
    }
    ours = {error.code: error.http_status for error in errors.ALL}
    assert ours == declared
    for error in errors.ALL:
        assert model.shape_for(error.code).members.keys() == {"message"}


def _shape_problems(shape: Any, value: Any, path: str) -> list[str]:
    """Members the model does not declare, and required members that are missing."""
    found: list[str] = []
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        for name in value:
            if name not in shape.members:
                found.append(f"{path}.{name}: not in {shape.name}")
        for name in shape.required_members:
            if name not in value:
                found.append(f"{path}.{name}: required by {shape.name} but missing")
        for name, item in value.items():
            if name in shape.members and item is not None:
                found += _shape_problems(shape.members[name], item, f"{path}.{name}")
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            found += _shape_problems(shape.member, item, f"{path}[{index}]")
    elif shape.type_name == "timestamp" and (
        not isinstance(value, int | float) or isinstance(value, bool)
    ):
        found.append(f"{path}: timestamp sent as {type(value).__name__}")
    return found


def _walk_everything(client: Any, mesh: str) -> None:
    """Call all 38 operations with realistic inputs, the walkthrough first."""
    wt.build(client, mesh)
    wt.shift(client, {wt.BLUE: 50, wt.GREEN: 50}, mesh)
    client.create_virtual_gateway(
        meshName=mesh,
        virtualGatewayName="gw",
        spec=wt.gateway_spec(),
        tags=[{"key": "a", "value": "b"}],
    )
    client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec(wt.SERVICE),
    )
    names = {"meshName": mesh}
    router = {**names, "virtualRouterName": wt.ROUTER}
    gateway = {**names, "virtualGatewayName": "gw"}
    client.describe_mesh(**names)
    client.update_mesh(**names, spec={"egressFilter": {"type": "ALLOW_ALL"}})
    client.list_meshes(limit=1)
    client.describe_virtual_node(**names, virtualNodeName=wt.BLUE)
    client.update_virtual_node(**names, virtualNodeName=wt.BLUE, spec=wt.node_spec("blue.local"))
    client.list_virtual_nodes(**names, limit=1)
    client.describe_virtual_router(**router)
    client.update_virtual_router(**router, spec=wt.router_spec())
    client.list_virtual_routers(**names)
    client.describe_route(**router, routeName=wt.ROUTE)
    client.list_routes(**router)
    client.describe_virtual_service(**names, virtualServiceName=wt.SERVICE)
    client.update_virtual_service(
        **names, virtualServiceName=wt.SERVICE, spec=wt.router_provider(wt.ROUTER)
    )
    client.list_virtual_services(**names)
    client.describe_virtual_gateway(**gateway)
    client.update_virtual_gateway(**gateway, spec=wt.gateway_spec(8080))
    client.list_virtual_gateways(**names)
    client.describe_gateway_route(**gateway, gatewayRouteName="gr")
    client.update_gateway_route(
        **gateway, gatewayRouteName="gr", spec=wt.gateway_route_spec(wt.SERVICE, "/x")
    )
    client.list_gateway_routes(**gateway)
    arn = client.describe_mesh(**names)["mesh"]["metadata"]["arn"]
    client.tag_resource(
        resourceArn=arn, tags=[{"key": "k", "value": "v"}, {"key": "j", "value": ""}]
    )
    client.list_tags_for_resource(resourceArn=arn, limit=1)
    client.untag_resource(resourceArn=arn, tagKeys=["k"])
    client.delete_gateway_route(**gateway, gatewayRouteName="gr")
    client.delete_virtual_gateway(**gateway)
    client.delete_virtual_node(**names, virtualNodeName=wt.FRONTEND)
    client.delete_virtual_service(**names, virtualServiceName=wt.SERVICE)
    client.delete_route(**router, routeName=wt.ROUTE)
    client.delete_virtual_router(**router)
    client.delete_virtual_node(**names, virtualNodeName=wt.BLUE)
    client.delete_virtual_node(**names, virtualNodeName=wt.GREEN)
    client.delete_mesh(**names)


def test_every_output_member_is_in_the_model(server: Any) -> None:
    """A full walk's response bodies hold only model members, and every required one."""
    client = make_client(server.url)
    seen: dict[str, list[Any]] = {}

    def record(http_response: Any, model: Any, **_: Any) -> None:
        assert http_response.status_code == 200, (model.name, http_response.content)
        body = json.loads(http_response.content) if http_response.content else {}
        seen.setdefault(model.name, []).append(body)

    client.meta.events.register("after-call", record)
    _walk_everything(client, "conform")
    model = _model(client)
    assert sorted(seen) == sorted(model.operation_names)
    problems: list[str] = []
    for name, bodies in seen.items():
        output = model.operation_model(name).output_shape
        payload = output.serialization.get("payload")
        for body in bodies:
            if payload:
                problems += _shape_problems(output.members[payload], body, name)
            elif output.members:
                problems += _shape_problems(output, body, name)
            else:
                assert body == {}, name
    assert problems == []
