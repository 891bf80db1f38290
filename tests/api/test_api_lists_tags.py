"""Pagination, tags, quotas and versions (§13 checks 13-15)."""

from __future__ import annotations

from typing import Any

import walkthrough as wt

from conftest import Rejection, make_client

BAD = ("BadRequestException", 400)

# -- check 13: pagination ------------------------------------------------------------------


def test_five_meshes_page_two_two_one(start_server: Any) -> None:
    """limit=2 over 5 meshes gives pages of 2/2/1, tokens on the first two pages only."""
    live = start_server()
    client = make_client(live.url)
    names = [f"p{i}" for i in range(5)]
    for name in names:
        client.create_mesh(meshName=name)
    pages, token = [], None
    while True:
        kwargs = {"limit": 2, **({"nextToken": token} if token else {})}
        page = client.list_meshes(**kwargs)
        pages.append(page)
        token = page.get("nextToken")
        if token is None:
            break
    assert [len(p["meshes"]) for p in pages] == [2, 2, 1]
    assert ["nextToken" in p for p in pages] == [True, True, False]
    assert [m["meshName"] for p in pages for m in p["meshes"]] == names


def test_all_eight_paginators_walk_every_item(client: Any, mesh: str) -> None:
    """boto3's paginator works for all eight list operations, page size 1."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_node(meshName=mesh, virtualNodeName="b", spec=wt.node_spec("b"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    for name in ("r1", "r2"):
        client.create_route(
            meshName=mesh,
            virtualRouterName="vr",
            routeName=name,
            spec=wt.route_spec({"a": 1}, prefix=f"/{name}"),
        )
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr2", spec=wt.router_spec())
    for name in ("s1", "s2"):
        client.create_virtual_service(meshName=mesh, virtualServiceName=name, spec={})
    for name in ("g1", "g2"):
        client.create_virtual_gateway(
            meshName=mesh, virtualGatewayName=name, spec=wt.gateway_spec()
        )
    for name in ("gr1", "gr2"):
        client.create_gateway_route(
            meshName=mesh,
            virtualGatewayName="g1",
            gatewayRouteName=name,
            spec=wt.gateway_route_spec("s1", prefix=f"/{name}"),
        )
    arn = client.describe_mesh(meshName=mesh)["mesh"]["metadata"]["arn"]
    client.tag_resource(
        resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    )
    cases: list[tuple[str, dict[str, Any], str, str, list[str]]] = [
        ("list_virtual_nodes", {"meshName": mesh}, "virtualNodes", "virtualNodeName", ["a", "b"]),
        (
            "list_virtual_routers",
            {"meshName": mesh},
            "virtualRouters",
            "virtualRouterName",
            ["vr", "vr2"],
        ),
        (
            "list_routes",
            {"meshName": mesh, "virtualRouterName": "vr"},
            "routes",
            "routeName",
            ["r1", "r2"],
        ),
        (
            "list_virtual_services",
            {"meshName": mesh},
            "virtualServices",
            "virtualServiceName",
            ["s1", "s2"],
        ),
        (
            "list_virtual_gateways",
            {"meshName": mesh},
            "virtualGateways",
            "virtualGatewayName",
            ["g1", "g2"],
        ),
        (
            "list_gateway_routes",
            {"meshName": mesh, "virtualGatewayName": "g1"},
            "gatewayRoutes",
            "gatewayRouteName",
            ["gr1", "gr2"],
        ),
        ("list_tags_for_resource", {"resourceArn": arn}, "tags", "key", ["a", "b"]),
    ]
    for operation, kwargs, key, member, expected in cases:
        pages = list(
            client.get_paginator(operation).paginate(**kwargs, PaginationConfig={"PageSize": 1})
        )
        assert [len(p[key]) for p in pages] == [1, 1], operation
        assert [item[member] for p in pages for item in p[key]] == expected, operation
    meshes = [
        m["meshName"]
        for p in client.get_paginator("list_meshes").paginate(PaginationConfig={"PageSize": 3})
        for m in p["meshes"]
    ]
    assert mesh in meshes
    assert len(meshes) == len(set(meshes))


def test_garbage_and_foreign_tokens_are_bad_requests(client: Any, rejected: Any, mesh: str) -> None:
    """A garbage token, or one from another list, is a 400; ListTags limit=51 too."""
    for name in ("a", "b"):
        client.create_virtual_node(meshName=mesh, virtualNodeName=name, spec={})
    token = client.list_virtual_nodes(meshName=mesh, limit=1)["nextToken"]
    rejected(
        lambda: client.list_virtual_nodes(meshName=mesh, nextToken="garbage!!"),
        *BAD,
        "nextToken: the token is not valid for this list",
    )
    rejected(
        lambda: client.list_virtual_routers(meshName=mesh, nextToken=token),
        *BAD,
        "nextToken: the token is not valid for this list",
    )
    arn = client.describe_mesh(meshName=mesh)["mesh"]["metadata"]["arn"]
    rejected(
        lambda: client.list_tags_for_resource(resourceArn=arn, limit=51),
        *BAD,
        "limit: value 51 is above the maximum 50",
    )


def test_pages_survive_deletion_of_the_last_served_item(client: Any, mesh: str) -> None:
    """Deleting the item a token points after neither repeats nor skips the rest."""
    for name in ("a", "b", "c"):
        client.create_virtual_node(meshName=mesh, virtualNodeName=name, spec={})
    first = client.list_virtual_nodes(meshName=mesh, limit=1)
    client.delete_virtual_node(meshName=mesh, virtualNodeName="a")
    rest = client.list_virtual_nodes(meshName=mesh, nextToken=first["nextToken"])
    assert [n["virtualNodeName"] for n in rest["virtualNodes"]] == ["b", "c"]
    assert "nextToken" not in rest


# -- check 14: tags -------------------------------------------------------------------------


def _tags(client: Any, arn: str) -> list[tuple[str, str]]:
    return [(t["key"], t["value"]) for t in client.list_tags_for_resource(resourceArn=arn)["tags"]]


def test_tags_upsert_by_key_and_untag(client: Any, server: Any, mesh: str) -> None:
    """Create-time tags, overwrite by key (one entry per key), untag; tags change no revision."""
    made = client.create_virtual_node(
        meshName=mesh,
        virtualNodeName="vn",
        spec={},
        tags=[{"key": "team", "value": "a"}, {"key": "env", "value": "dev"}],
    )
    arn = made["virtualNode"]["metadata"]["arn"]
    assert _tags(client, arn) == [("team", "a"), ("env", "dev")]
    revision = server.revision()
    client.tag_resource(
        resourceArn=arn, tags=[{"key": "team", "value": "b"}, {"key": "tier", "value": "1"}]
    )
    assert _tags(client, arn) == [("team", "b"), ("env", "dev"), ("tier", "1")]
    client.untag_resource(resourceArn=arn, tagKeys=["env", "absent"])
    assert _tags(client, arn) == [("team", "b"), ("tier", "1")]
    assert server.revision() == revision
    node = client.describe_virtual_node(meshName=mesh, virtualNodeName="vn")["virtualNode"]
    assert node["metadata"]["version"] == 1


def test_fifty_first_tag_is_too_many_and_applies_nothing(
    client: Any, rejected: Any, mesh: str
) -> None:
    """50 tags fit; one more overall gives TooManyTagsException and nothing changes."""
    arn = client.describe_mesh(meshName=mesh)["mesh"]["metadata"]["arn"]
    fifty = [{"key": f"k{i}", "value": str(i)} for i in range(50)]
    client.tag_resource(resourceArn=arn, tags=fifty)
    rejected(
        lambda: client.tag_resource(
            resourceArn=arn, tags=[{"key": "k0", "value": "new"}, {"key": "k50", "value": "x"}]
        ),
        "TooManyTagsException",
        400,
        "tags: the resource would carry 51 tags; the limit is 50 and nothing was applied",
    )
    tags = dict(_tags_all(client, arn))
    assert len(tags) == 50
    assert tags["k0"] == "0"


def _tags_all(client: Any, arn: str) -> list[tuple[str, str]]:
    pages = client.get_paginator("list_tags_for_resource").paginate(resourceArn=arn)
    return [(t["key"], t["value"]) for p in pages for t in p["tags"]]


def test_fifty_one_tags_in_one_request_are_too_many(client: Any, rejected: Any, mesh: str) -> None:
    """51 tags: TooManyTagsException from TagResource, a BadRequest from Create*; nothing applied.

    Only TagResource declares TooManyTagsException; for Create* the TagList max is a
    validation error like any other, as the model states it.
    """
    arn = client.describe_mesh(meshName=mesh)["mesh"]["metadata"]["arn"]
    many = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    too_many = (
        "TooManyTagsException",
        400,
        "tags: 51 tags in one request; a resource can carry at most 50 and nothing was applied",
    )
    too_long = (
        "BadRequestException",
        400,
        "Invalid request: tags: list length 51 is above the maximum 50",
    )
    rejected(lambda: client.tag_resource(resourceArn=arn, tags=many), *too_many)
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="vn", spec={}, tags=many),
        *too_long,
    )
    rejected(lambda: client.create_mesh(meshName=f"{mesh}-tagged", tags=many), *too_long)
    assert _tags(client, arn) == []
    assert client.list_virtual_nodes(meshName=mesh)["virtualNodes"] == []


def test_too_many_tags_in_create_is_listed_with_other_problems(
    client: Any, rejected: Any, mesh: str
) -> None:
    """51 tags (even repeating keys) and a bad spec in Create*: one BadRequest naming both."""
    many = [{"key": f"k{i % 50}", "value": "v"} for i in range(51)]
    error = rejected(
        lambda: client.create_virtual_router(
            meshName=mesh, virtualRouterName="vr", spec=wt.router_spec(70000), tags=many
        ),
        "BadRequestException",
        400,
    )
    assert error.response["Error"]["Message"] == (
        "2 validation errors: "
        "spec.listeners[0].portMapping.port: value 70000 is above the maximum 65535; "
        "tags: list length 51 is above the maximum 50"
    )


def test_fifty_tags_in_one_create_fit(client: Any, mesh: str) -> None:
    """Exactly 50 tags in a Create* request are accepted and all listed."""
    fifty = [{"key": f"k{i}", "value": str(i)} for i in range(50)]
    made = client.create_virtual_service(
        meshName=mesh, virtualServiceName="fifty.local", spec={}, tags=fifty
    )
    arn = made["virtualService"]["metadata"]["arn"]
    assert _tags_all(client, arn) == [(t["key"], t["value"]) for t in fifty]


def test_unknown_arn_is_not_found(client: Any, rejected: Any) -> None:
    """Tag operations on an ARN nothing has give NotFoundException 404 naming the ARN."""
    arn = "arn:aws:appmesh:us-west-2:123456789012:mesh/none"
    rejected(
        lambda: client.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}]),
        "NotFoundException",
        404,
        f"resourceArn: no App Mesh resource has the ARN {arn}",
    )
    rejected(
        lambda: client.untag_resource(resourceArn=arn, tagKeys=["a"]), "NotFoundException", 404
    )
    rejected(
        lambda: client.list_tags_for_resource(resourceArn="not-an-arn"), "NotFoundException", 404
    )


def test_tags_go_with_the_resource(client: Any, rejected: Any, mesh: str) -> None:
    """A deleted and re-created resource starts without the old tags."""
    made = client.create_virtual_service(
        meshName=mesh, virtualServiceName="s.local", spec={}, tags=[{"key": "a", "value": "1"}]
    )
    arn = made["virtualService"]["metadata"]["arn"]
    client.delete_virtual_service(meshName=mesh, virtualServiceName="s.local")
    rejected(lambda: client.list_tags_for_resource(resourceArn=arn), "NotFoundException", 404)
    client.create_virtual_service(meshName=mesh, virtualServiceName="s.local", spec={})
    assert _tags(client, arn) == []


# -- check 15: quotas and versions ----------------------------------------------------------


def test_sixteenth_mesh_exceeds_default_quota(start_server: Any) -> None:
    """App Mesh's default of 15 meshes holds: the 16th is LimitExceededException 400."""
    live = start_server()
    client = make_client(live.url)
    for i in range(15):
        client.create_mesh(meshName=f"q{i}")
    Rejection(live)(
        lambda: client.create_mesh(meshName="q15"),
        "LimitExceededException",
        400,
        "meshes in this account: the limit of 15 is reached",
    )


def test_quotas_come_from_the_environment(start_server: Any) -> None:
    """MESHPLANE_QUOTA_* on the server process sets the limits: 3 meshes, 2 nodes, 4 backends."""
    live = start_server(
        {
            "MESHPLANE_QUOTA_MESHES": "3",
            "MESHPLANE_QUOTA_VIRTUAL_NODES": "2",
            "MESHPLANE_QUOTA_BACKENDS": "4",
            "MESHPLANE_QUOTA_ROUTES": "1",
        }
    )
    client, rejected = make_client(live.url), Rejection(live)
    for i in range(3):
        client.create_mesh(meshName=f"q{i}")
    rejected(lambda: client.create_mesh(meshName="q3"), "LimitExceededException", 400, "limit of 3")
    client.create_virtual_node(meshName="q0", virtualNodeName="a", spec={"backends": _backends(4)})
    rejected(
        lambda: client.update_virtual_node(
            meshName="q0", virtualNodeName="a", spec={"backends": _backends(5)}
        ),
        "LimitExceededException",
        400,
        "spec.backends: 5 backends exceed the limit of 4 per virtual node",
    )
    client.create_virtual_node(meshName="q0", virtualNodeName="b", spec={})
    rejected(
        lambda: client.create_virtual_node(meshName="q0", virtualNodeName="c", spec={}),
        "LimitExceededException",
        400,
        "virtual nodes in mesh q0: the limit of 2 is reached",
    )
    client.create_virtual_node(meshName="q1", virtualNodeName="c", spec={})
    client.create_virtual_router(meshName="q0", virtualRouterName="vr", spec={})
    client.create_route(
        meshName="q0", virtualRouterName="vr", routeName="r1", spec=wt.route_spec({"a": 1})
    )
    rejected(
        lambda: client.create_route(
            meshName="q0", virtualRouterName="vr", routeName="r2", spec=wt.route_spec({"a": 1})
        ),
        "LimitExceededException",
        400,
        "routes in vr: the limit of 1 is reached",
    )


def _backends(count: int) -> list[dict[str, Any]]:
    return [{"virtualService": {"virtualServiceName": f"s{i}"}} for i in range(count)]


def test_fifty_one_backends_exceed_default_quota(client: Any, rejected: Any, mesh: str) -> None:
    """The default backends quota is 50 per node: 51 is LimitExceededException."""
    client.create_virtual_node(
        meshName=mesh, virtualNodeName="ok", spec={"backends": _backends(50)}
    )
    rejected(
        lambda: client.create_virtual_node(
            meshName=mesh, virtualNodeName="vn", spec={"backends": _backends(51)}
        ),
        "LimitExceededException",
        400,
        "spec.backends: 51 backends exceed the limit of 50",
    )


def test_each_update_bumps_version_by_one_and_reads_never_do(client: Any, mesh: str) -> None:
    """Every Update* adds exactly 1 to version; Describe and List leave it alone."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())
    client.create_route(
        meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"a": 1})
    )
    client.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={})
    client.create_virtual_gateway(meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec())
    client.create_gateway_route(
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="gr",
        spec=wt.gateway_route_spec("s"),
    )
    updates = [
        ("mesh", lambda: client.update_mesh(meshName=mesh, spec={})),
        (
            "virtualNode",
            lambda: client.update_virtual_node(
                meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a")
            ),
        ),
        (
            "virtualRouter",
            lambda: client.update_virtual_router(
                meshName=mesh, virtualRouterName="vr", spec=wt.router_spec()
            ),
        ),
        (
            "route",
            lambda: client.update_route(
                meshName=mesh, virtualRouterName="vr", routeName="rt", spec=wt.route_spec({"a": 2})
            ),
        ),
        (
            "virtualService",
            lambda: client.update_virtual_service(meshName=mesh, virtualServiceName="s", spec={}),
        ),
        (
            "virtualGateway",
            lambda: client.update_virtual_gateway(
                meshName=mesh, virtualGatewayName="gw", spec=wt.gateway_spec()
            ),
        ),
        (
            "gatewayRoute",
            lambda: client.update_gateway_route(
                meshName=mesh,
                virtualGatewayName="gw",
                gatewayRouteName="gr",
                spec=wt.gateway_route_spec("s"),
            ),
        ),
    ]
    for round_ in (2, 3):
        for kind, update in updates:
            assert update()[kind]["metadata"]["version"] == round_, kind
    assert client.describe_mesh(meshName=mesh)["mesh"]["metadata"]["version"] == 3
    routes = client.list_routes(meshName=mesh, virtualRouterName="vr")["routes"]
    assert [r["version"] for r in routes] == [3]
    assert (
        client.describe_route(meshName=mesh, virtualRouterName="vr", routeName="rt")["route"][
            "metadata"
        ]["version"]
        == 3
    )
    deleted = client.delete_route(meshName=mesh, virtualRouterName="vr", routeName="rt")
    assert deleted["route"]["metadata"]["version"] == 3
