"""Cloud Map instances chosen by translate.cloudmap: attributes, services and IP preference."""

from __future__ import annotations

import dataclasses

from meshplane.model import specs_generated as g
from meshplane.model.snapshot import Endpoint
from meshplane.translate import cloudmap

from . import casefiles


def _addresses(endpoints: tuple[Endpoint, ...]) -> list[str]:
    return [e.address for e in endpoints]


def test_instances_match_every_attribute_of_the_node() -> None:
    """blue: both blue pods; canary: the one with track=canary; all: every colorapp instance."""
    snapshot = casefiles.load("cloudmap").snapshot
    nodes = snapshot.virtual_nodes
    assert _addresses(cloudmap.instances(snapshot, nodes["colorapp-blue"])) == [
        "10.0.1.11",
        "10.0.1.12",
    ]
    assert _addresses(cloudmap.instances(snapshot, nodes["colorapp-canary"])) == ["10.0.1.12"]
    assert _addresses(cloudmap.instances(snapshot, nodes["colorapp-all"])) == [
        "10.0.1.11",
        "10.0.1.12",
        "10.0.2.21",
    ]


def test_an_ip_only_preference_keeps_that_family() -> None:
    """IPv6_ONLY on the node drops IPv4 instances; IPv4_ONLY on the mesh drops IPv6 ones."""
    snapshot = casefiles.load("cloudmap").snapshot
    red = snapshot.virtual_nodes["colorapp-red"]
    six = Endpoint(8080, "fd00::21", 8080, (("color", "red"),))
    endpoints = {**snapshot.endpoints, "colorapp-red": (*snapshot.endpoints["colorapp-red"], six)}
    snapshot = dataclasses.replace(snapshot, endpoints=endpoints)
    assert _addresses(cloudmap.instances(snapshot, red)) == ["10.0.2.21", "fd00::21"]
    own = red.spec.service_discovery
    assert own is not None
    assert own.aws_cloud_map is not None
    v6 = dataclasses.replace(own.aws_cloud_map, ip_preference="IPv6_ONLY")
    red_v6 = dataclasses.replace(
        red,
        spec=dataclasses.replace(red.spec, service_discovery=g.ServiceDiscovery(aws_cloud_map=v6)),
    )
    assert _addresses(cloudmap.instances(snapshot, red_v6)) == ["fd00::21"]
    mesh = dataclasses.replace(
        snapshot.mesh,
        spec=dataclasses.replace(
            snapshot.mesh.spec, service_discovery=g.MeshServiceDiscovery(ip_preference="IPv4_ONLY")
        ),
    )
    assert _addresses(cloudmap.instances(dataclasses.replace(snapshot, mesh=mesh), red)) == [
        "10.0.2.21"
    ]
