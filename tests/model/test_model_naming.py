"""awsName defaults and node ids, defined once for the manifests, the runtime and translate."""

from __future__ import annotations

import pytest

from meshplane.model import naming
from meshplane.model.naming import NodeRef


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Mesh", "demos"),
        ("VirtualService", "demos.prod"),
        ("VirtualNode", "demos_prod"),
        ("VirtualRouter", "demos_prod"),
        ("VirtualGateway", "demos_prod"),
        ("GatewayRoute", "demos_prod"),
    ],
)
def test_default_aws_name_is_the_webhooks(kind: str, expected: str) -> None:
    """Mesh keeps its name, VirtualService gets a dot, the rest an underscore."""
    assert naming.default_aws_name(kind, "demos", "prod") == expected


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [
        ("mesh/demos/virtualNode/vn-a", NodeRef("demos", "virtualNode", "vn-a")),
        ("mesh/demos/virtualGateway/gw", NodeRef("demos", "virtualGateway", "gw")),
        (
            "mesh/demos@111122223333/virtualNode/vn-a",
            NodeRef("demos", "virtualNode", "vn-a", "111122223333"),
        ),
        (
            "arn:aws:appmesh:us-west-2:111122223333:mesh/demos/virtualNode/vn-a",
            NodeRef("demos", "virtualNode", "vn-a"),
        ),
        ("mesh/demos@/virtualNode/vn-a", NodeRef("demos", "virtualNode", "vn-a")),
        ("mesh/demos/virtualRouter/vr", None),
        ("mesh//virtualNode/vn-a", None),
        ("mesh/demos/virtualNode/", None),
        ("mesh/demos/virtualNode/vn-a/extra", None),
        ("arn:aws:appmesh:mesh/demos/virtualNode/vn-a", None),
    ],
)
def test_parse_node_id(node_id: str, expected: NodeRef | None) -> None:
    """Short form, owner suffix and ARN form parse; other kinds and shapes do not."""
    assert naming.parse_node_id(node_id) == expected


def test_node_id_round_trips_with_owner() -> None:
    """Building and parsing agree, the owner included."""
    built = naming.node_id("demos", "virtualGateway", "gw", owner="111122223333")
    assert built == "mesh/demos@111122223333/virtualGateway/gw"
    assert naming.parse_node_id(built) == NodeRef("demos", "virtualGateway", "gw", "111122223333")
    assert naming.node_id("demos", "virtualNode", "vn-a") == "mesh/demos/virtualNode/vn-a"
