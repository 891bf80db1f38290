"""The `meshplane.dev/mtls` mesh tag through boto3: checked like a spec field."""

from __future__ import annotations

from typing import Any

MTLS = "meshplane.dev/mtls"


def test_the_mtls_tag_is_accepted_on_a_mesh_and_changes_the_data_plane(
    client: Any, server: Any
) -> None:
    """CreateMesh takes it; TagResource with another mode is one change in the feed."""
    mesh = client.create_mesh(meshName="mtls-ok", tags=[{"key": MTLS, "value": "PERMISSIVE"}])
    arn = mesh["mesh"]["metadata"]["arn"]
    before = server.revision()
    client.tag_resource(resourceArn=arn, tags=[{"key": MTLS, "value": "STRICT"}])
    assert server.revision() == before + 1
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": MTLS, "value": "STRICT"}
    ]


def test_a_bad_mtls_tag_is_refused_with_the_rule(client: Any, rejected: Any) -> None:
    """A value other than STRICT/PERMISSIVE, or the tag on a virtual node, is a 400."""
    rejected(
        lambda: client.create_mesh(meshName="mtls-bad", tags=[{"key": MTLS, "value": "ON"}]),
        "BadRequestException",
        400,
        f"tags[{MTLS}]: 'ON' is not one of STRICT, PERMISSIVE",
    )
    client.create_mesh(meshName="mtls-node")
    node = client.create_virtual_node(
        meshName="mtls-node",
        virtualNodeName="vn-a",
        spec={
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": "a.mtls-node"}},
        },
    )["virtualNode"]
    rejected(
        lambda: client.tag_resource(
            resourceArn=node["metadata"]["arn"], tags=[{"key": MTLS, "value": "STRICT"}]
        ),
        "BadRequestException",
        400,
        f"tags[{MTLS}]: only valid on mesh resources, not virtualNode",
    )
