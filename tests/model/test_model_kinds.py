"""model.kinds: App Mesh ARNs for the seven kinds, both ways."""

from __future__ import annotations

import pytest

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey

BASE = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"
CASES = [
    (ResourceKey("mesh", "demos", "", "demos"), BASE),
    (ResourceKey("virtualNode", "demos", "", "vn"), f"{BASE}/virtualNode/vn"),
    (ResourceKey("virtualRouter", "demos", "", "vr"), f"{BASE}/virtualRouter/vr"),
    (ResourceKey("route", "demos", "vr", "rt"), f"{BASE}/virtualRouter/vr/route/rt"),
    (
        ResourceKey("virtualService", "demos", "", "vs.demos.svc.cluster.local"),
        f"{BASE}/virtualService/vs.demos.svc.cluster.local",
    ),
    (ResourceKey("virtualGateway", "demos", "", "gw"), f"{BASE}/virtualGateway/gw"),
    (ResourceKey("gatewayRoute", "demos", "gw", "gr"), f"{BASE}/virtualGateway/gw/gatewayRoute/gr"),
]


@pytest.mark.parametrize(("key", "expected"), CASES)
def test_arn_round_trip(key: ResourceKey, expected: str) -> None:
    """arn() writes App Mesh's form and parse_arn() reads it back."""
    assert kinds.arn("us-west-2", "123456789012", key) == expected
    assert kinds.parse_arn(expected) == ("us-west-2", "123456789012", key)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:appmesh:us-west-2:123456789012:demos",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualNode",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/bogus/x",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/route/rt",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualRouter/vr/gatewayRoute/x",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualRouter/vr/route",
        "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/mesh/x",
    ],
)
def test_parse_arn_rejects_non_app_mesh_arns(value: str) -> None:
    """Anything that is not one of the seven ARN forms parses to None."""
    assert kinds.parse_arn(value) is None


def test_kind_members_and_order() -> None:
    """Kinds know their API member names, parents come first, and describe() reads well."""
    assert [k.key for k in kinds.ALL] == [
        "mesh",
        "virtualNode",
        "virtualService",
        "virtualRouter",
        "route",
        "virtualGateway",
        "gatewayRoute",
    ]
    assert kinds.ROUTE.name_member == "routeName"
    assert kinds.ROUTE.parent_member == "virtualRouterName"
    assert kinds.MESH.parent_member is None
    assert (
        ResourceKey("route", "m", "vr", "rt").describe() == "Route rt in VirtualRouter vr in mesh m"
    )
    assert ResourceKey("mesh", "m", "", "m").describe() == "Mesh m"
