"""The `meshplane.dev/mirror` extension tag through boto3: checked like a spec field."""

from __future__ import annotations

from typing import Any

from walkthrough import BLUE, GREEN, ROUTE, ROUTER, build, route_spec

MIRROR = "meshplane.dev/mirror"


def _route_arn(client: Any, mesh: str) -> str:
    return str(
        client.describe_route(meshName=mesh, virtualRouterName=ROUTER, routeName=ROUTE)["route"][
            "metadata"
        ]["arn"]
    )


def test_a_mirror_tag_is_stored_and_changes_the_data_plane(client: Any, server: Any) -> None:
    """Tagging a route with a mirror adds one change to the feed; a plain tag adds none."""
    build(client, "mirror-ok")
    arn = _route_arn(client, "mirror-ok")
    before = server.revision()
    client.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "payments"}])
    assert server.revision() == before
    client.tag_resource(resourceArn=arn, tags=[{"key": MIRROR, "value": f"{GREEN}=25"}])
    assert server.revision() == before + 1
    tags = client.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [
        (MIRROR, f"{GREEN}=25"),
        ("team", "payments"),
    ]
    client.untag_resource(resourceArn=arn, tagKeys=[MIRROR])
    assert server.revision() == before + 2


def test_a_route_can_be_created_with_its_mirror(client: Any) -> None:
    """CreateRoute accepts the mirror among its tags."""
    build(client, "mirror-create")
    route = client.create_route(
        meshName="mirror-create",
        virtualRouterName=ROUTER,
        routeName="shadowed",
        spec=route_spec({BLUE: 100}),
        tags=[{"key": MIRROR, "value": f"{GREEN}:80=100"}],
    )["route"]
    tags = client.list_tags_for_resource(resourceArn=route["metadata"]["arn"])["tags"]
    assert tags == [{"key": MIRROR, "value": f"{GREEN}:80=100"}]


def test_bad_mirror_tags_are_refused_with_the_rule(client: Any, rejected: Any) -> None:
    """Malformed value, missing node, wrong port, wrong kind: each refused, nothing changed."""
    made = build(client, "mirror-bad")
    arn = _route_arn(client, "mirror-bad")

    def tag(resource: str, value: str) -> Any:
        return lambda: client.tag_resource(
            resourceArn=resource, tags=[{"key": MIRROR, "value": value}]
        )

    rejected(
        tag(arn, GREEN),
        "BadRequestException",
        400,
        f"tags[{MIRROR}]: '{GREEN}' is not <virtualNode>[:<port>]=<percent>",
    )
    rejected(
        tag(arn, "vn-missing=10"),
        "NotFoundException",
        404,
        f"tags[{MIRROR}]: VirtualNode with name vn-missing is not present under mesh mirror-bad",
    )
    rejected(
        tag(arn, f"{GREEN}:81=10"),
        "BadRequestException",
        400,
        f"tags[{MIRROR}]: 81 is not a listener port of virtual node {GREEN}",
    )
    rejected(
        tag(made[BLUE]["metadata"]["arn"], f"{GREEN}=10"),
        "BadRequestException",
        400,
        f"tags[{MIRROR}]: only valid on route resources, not virtualNode",
    )
