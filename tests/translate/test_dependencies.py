"""What a translation reports it read, and which changes that makes it sensitive to."""

from __future__ import annotations

from meshplane.model.kinds import ResourceKey
from meshplane.translate import build
from meshplane.translate.dependencies import ANY, Reads

from . import casefiles


def _keys(reads: Reads) -> list[tuple[str, str, str]]:
    return sorted((key.kind, key.parent, key.name) for key in reads.keys)


def test_a_sidecar_reads_its_node_services_router_routes_targets_and_their_endpoints() -> None:
    """The blue-green frontend reads exactly its chain: node, service, router, routes, targets."""
    case = casefiles.load("bluegreen-100-0")
    reads = build(case.snapshot, case.node).reads
    assert _keys(reads) == [
        ("mesh", "", "demos"),
        ("route", "vr-echo-backend", ANY),
        ("virtualNode", "", "vn-echo-backend-blue"),
        ("virtualNode", "", "vn-echo-backend-green"),
        ("virtualNode", "", "vn-echo-frontend-blue"),
        ("virtualRouter", "", "vr-echo-backend"),
        ("virtualService", "", "vs-echo-backend"),
    ]
    assert sorted(reads.endpoints) == ["vn-echo-backend-blue", "vn-echo-backend-green"]


def test_a_gateway_reads_its_routes_and_every_target_service_even_a_missing_one() -> None:
    """Gateway routes are a dependency on the gateway; vs-missing is read though absent."""
    case = casefiles.load("gateway")
    reads = build(case.snapshot, case.node).reads
    assert _keys(reads) == [
        ("gatewayRoute", "vg-ingress", ANY),
        ("mesh", "", "demos"),
        ("route", "vr-echo-backend", ANY),
        ("virtualGateway", "", "vg-ingress"),
        ("virtualNode", "", "vn-echo-backend-blue"),
        ("virtualNode", "", "vn-echo-backend-green"),
        ("virtualRouter", "", "vr-echo-backend"),
        ("virtualService", "", "vs-echo-backend"),
        ("virtualService", "", "vs-green"),
        ("virtualService", "", "vs-missing"),
    ]


def test_affected_by_matches_exact_keys_children_endpoints_and_the_mesh() -> None:
    """A read key, a new child of a walked parent, read endpoints and the mesh count; others not."""
    reads = Reads(
        frozenset(
            {
                ResourceKey("virtualService", "m", "", "vs-a"),
                ResourceKey("route", "m", "vr-a", ANY),
            }
        ),
        frozenset({"vn-a"}),
    )
    assert reads.affected_by(ResourceKey("virtualService", "m", "", "vs-a"), "create") is True
    assert reads.affected_by(ResourceKey("virtualService", "m", "", "vs-b"), "create") is False
    assert reads.affected_by(ResourceKey("route", "m", "vr-a", "new"), "create") is True
    assert reads.affected_by(ResourceKey("route", "m", "vr-b", "new"), "create") is False
    assert reads.affected_by(ResourceKey("virtualNode", "m", "", "vn-a"), "endpoints") is True
    assert reads.affected_by(ResourceKey("virtualNode", "m", "", "vn-a"), "update") is False
    assert reads.affected_by(ResourceKey("virtualNode", "m", "", "vn-b"), "endpoints") is False
    assert reads.affected_by(ResourceKey("mesh", "m", "", "m"), "update") is True
    walked = Reads(frozenset({ResourceKey("virtualNode", "m", ANY, ANY)}), frozenset({ANY}))
    assert walked.affected_by(ResourceKey("virtualNode", "m", "", "any"), "create") is True
    assert walked.affected_by(ResourceKey("virtualNode", "m", "", "any"), "endpoints") is True


def test_a_cloud_map_caller_reads_every_node_and_the_endpoints_of_its_service() -> None:
    """Any node may join a Cloud Map service: all nodes are read, and each member's endpoints."""
    case = casefiles.load("cloudmap")
    reads = build(case.snapshot, case.node).reads
    assert ResourceKey("virtualNode", "howto-k8s-cloudmap", ANY, ANY) in reads.keys
    assert sorted(reads.endpoints) == [
        "colorapp-all",
        "colorapp-blue",
        "colorapp-canary",
        "colorapp-red",
        "vn-other",
    ]
    assert reads.affected_by(ResourceKey("virtualNode", "howto-k8s-cloudmap", "", "new"), "create")
    assert reads.affected_by(
        ResourceKey("virtualNode", "howto-k8s-cloudmap", "", "colorapp-red"), "endpoints"
    )
