"""The API defects the model-driven fuzzer found, each a 400 now (they answered 500 before)."""

from __future__ import annotations

import base64
import json
from typing import Any

import walkthrough as wt

BAD = ("BadRequestException", 400)
WIDE = "\U0001f600"  # four UTF-8 bytes, twelve once percent-encoded


def test_lone_surrogates_in_names_and_client_tokens_are_bad_requests(
    client: Any, rejected: Any
) -> None:
    """A lone surrogate in meshName or clientToken is a 400 naming the field."""
    rejected(
        lambda: client.create_mesh(meshName="m\ud800"),
        *BAD,
        "Invalid request: meshName: contains a lone UTF-16 surrogate (U+D800) at position 1, "
        "which is not text",
    )
    rejected(
        lambda: client.create_mesh(meshName="fine", clientToken="\udc00"),
        *BAD,
        "Invalid request: clientToken: contains a lone UTF-16 surrogate (U+DC00) at position 0",
    )


def test_forged_next_tokens_are_bad_requests(client: Any, rejected: Any, mesh: str) -> None:
    """An unsigned token with a huge position, or a real token altered, is a 400."""
    forged = base64.urlsafe_b64encode(json.dumps({"v": 1, "s": "x", "a": 10**30}).encode()).decode()
    for call in (
        lambda: client.list_meshes(nextToken=forged),
        lambda: client.list_virtual_nodes(meshName=mesh, nextToken=forged + ".AAAA"),
    ):
        rejected(call, *BAD, "nextToken: the token is not valid for this list")


def test_next_tokens_are_signed_and_still_page(client: Any, mesh: str) -> None:
    """A token the server signed pages on; its last character changed, it is refused."""
    for name in ("a", "b", "c"):
        client.create_virtual_service(meshName=mesh, virtualServiceName=name, spec={})
    first = client.list_virtual_services(meshName=mesh, limit=2)
    token = first["nextToken"]
    assert "." in token
    rest = client.list_virtual_services(meshName=mesh, limit=2, nextToken=token)
    assert [s["virtualServiceName"] for s in rest["virtualServices"]] == ["c"]


def test_regexes_re2_refuses_are_bad_requests(client: Any, rejected: Any, mesh: str) -> None:
    """Lookbehind, a backreference, a repetition over 1000 and one of 2**32 are judged by RE2."""
    client.create_virtual_node(meshName=mesh, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=mesh, virtualRouterName="vr", spec=wt.router_spec())

    def route(regex: str) -> Any:
        spec = wt.route_spec({"a": 1})
        spec["httpRoute"]["match"] = {"path": {"regex": regex}}
        return lambda: client.create_route(
            meshName=mesh, virtualRouterName="vr", routeName="rt", spec=spec
        )

    rejected(
        route("(?<=/api)/v1"),
        *BAD,
        "Invalid request: spec.httpRoute.match.path.regex: '(?<=/api)/v1' is not a valid regular "
        "expression: RE2 refuses it (invalid perl operator: (?<=)",
    )
    rejected(route("(a)\\1"), *BAD, "RE2 refuses it (invalid escape sequence: \\1)")
    rejected(route("a{1001}"), *BAD, "RE2 refuses it (invalid repetition size: {1001})")
    # Python's re overflowed on this count (a 500); RE2, like Envoy, reads it as literal text.
    made = route("/a{4294967296}")()
    assert made["route"]["spec"]["httpRoute"]["match"]["path"] == {"regex": "/a{4294967296}"}


def test_names_that_would_share_an_arn_are_refused(client: Any, rejected: Any, mesh: str) -> None:
    """A '/' in a name (two resources, one ARN) and '.'/'..' (resolved away in paths) are 400s."""
    rejected(
        lambda: client.create_mesh(meshName=f"{mesh}/virtualNode/x"),
        *BAD,
        f"Invalid request: meshName: '{mesh}/virtualNode/x' contains '/', which App Mesh ARNs use "
        "as the separator",
    )
    rejected(
        lambda: client.create_virtual_node(meshName=mesh, virtualNodeName="..", spec={}),
        *BAD,
        "Invalid request: virtualNodeName: '..' is a path segment every HTTP client and server "
        "resolves away",
    )
    assert client.list_virtual_nodes(meshName=mesh)["virtualNodes"] == []


def test_a_name_too_long_for_its_uri_is_refused_at_create(
    client: Any, rejected: Any, mesh: str
) -> None:
    """A virtual service name whose URI form passes 4096 bytes is refused, not made unreachable."""
    rejected(
        lambda: client.create_virtual_service(
            meshName=mesh, virtualServiceName=WIDE * 400, spec={}
        ),
        *BAD,
        "Invalid request: virtualServiceName: its URI form (percent-encoded UTF-8) is 4800 bytes; "
        "at most 4096 fit in a request line",
    )


def test_the_widest_names_stay_describable_and_deletable(client: Any, mesh: str) -> None:
    """Mesh, router and route named with 255 four-byte characters: describe and delete work."""
    wide = WIDE * 255
    client.create_mesh(meshName=wide)
    client.create_virtual_node(meshName=wide, virtualNodeName="a", spec=wt.node_spec("a"))
    client.create_virtual_router(meshName=wide, virtualRouterName=wide, spec=wt.router_spec())
    client.create_route(
        meshName=wide, virtualRouterName=wide, routeName=wide, spec=wt.route_spec({"a": 1})
    )
    described = client.describe_route(meshName=wide, virtualRouterName=wide, routeName=wide)
    assert described["route"]["routeName"] == wide
    deleted = client.delete_route(meshName=wide, virtualRouterName=wide, routeName=wide)
    assert deleted["route"]["status"] == {"status": "DELETED"}
    client.delete_virtual_router(meshName=wide, virtualRouterName=wide)
    client.delete_virtual_node(meshName=wide, virtualNodeName="a")
    assert client.delete_mesh(meshName=wide)["mesh"]["status"] == {"status": "DELETED"}
