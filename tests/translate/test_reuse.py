"""Translation with shared pieces returns exactly what translation without them returns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshplane.model.kinds import ResourceKey
from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import build
from meshplane.translate.reuse import SharedTranslations
from meshplane.translate.routes import SerializedRouteConfiguration

from . import casefiles


@pytest.mark.parametrize("name", casefiles.case_names())
def test_a_case_built_with_shared_pieces_matches_its_golden_cold_and_warm(name: str) -> None:
    """First build fills the table, the second reuses it: both render the golden, same reads."""
    case = casefiles.load(name)
    shared = SharedTranslations()
    golden = (casefiles.GOLDENS / f"{name}.json").read_text()
    alone = build(case.snapshot, case.node)
    for _ in range(2):
        built = build(case.snapshot, case.node, shared)
        assert casefiles.render(built) == golden
        assert built.warnings == alone.warnings
        assert built.reads == alone.reads


@pytest.mark.parametrize("name", casefiles.case_names())
def test_egress_route_configurations_from_shared_pieces_are_the_messages_bytes(name: str) -> None:
    """Each egress route configuration built as bytes is the deterministic bytes of the message."""
    case = casefiles.load(name)
    alone = {r.name: r for r in build(case.snapshot, case.node).routes_as_built}
    built = build(case.snapshot, case.node, SharedTranslations())
    serialized = [r for r in built.routes_as_built if isinstance(r, SerializedRouteConfiguration)]
    assert [r.name for r in serialized] == sorted(n for n in alone if n.startswith("rds_egress_"))
    for wired in serialized:
        message = alone[wired.name]
        assert not isinstance(message, SerializedRouteConfiguration)
        assert wired.body == message.SerializeToString(deterministic=True)
        assert wired.message() == message


def _data(name: str) -> dict[str, Any]:
    return yaml.safe_load(Path(casefiles.CASES / f"{name}.yaml").read_text())


def _snapshot(data: dict[str, Any], revision: int) -> MeshSnapshot:
    return dataclasses.replace(casefiles.snapshot_of(data), revision=revision)


ROUTE = ResourceKey("route", "demos", "vr-echo-backend", "vrr-echo-backend")


def test_two_callers_of_one_service_share_its_plan_routes_and_clusters() -> None:
    """The second caller of vs-echo-backend builds no piece: service, routes, its targets.

    Pieces: the plan, its routes and their serialization (built from the routes piece,
    looked up inside), its targets (looking the plan up inside: a hit on the first build
    too) and each of its 2 target clusters. The second caller hits the plan, the
    serialized routes and the targets.
    """
    data = _data("bluegreen-100-0")
    case = casefiles.load("bluegreen-100-0")
    other = dataclasses.replace(case.node, name="vn-echo-backend-blue")
    data["virtualNodes"] = [
        {**n, "spec": {**n["spec"], "backends": case_backends(data)}}
        if n["virtualNodeName"] == other.name
        else n
        for n in data["virtualNodes"]
    ]
    snapshot = _snapshot(data, 1)
    shared = SharedTranslations()
    build(snapshot, case.node, shared)
    assert (shared.misses, shared.hits) == (6, 2)
    second = build(snapshot, other, shared)
    assert (shared.misses, shared.hits) == (6, 5)
    assert second == build(snapshot, other)


def case_backends(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The frontend's backends (vs-echo-backend)."""
    frontend = next(
        n for n in data["virtualNodes"] if n["virtualNodeName"] == "vn-echo-frontend-blue"
    )
    return list(frontend["spec"]["backends"])


def test_a_changed_route_drops_only_the_pieces_that_read_it() -> None:
    """After a weight change the plan, routes (and their serialization) and target list are
    rebuilt; clusters reused."""
    data = _data("bluegreen-100-0")
    case = casefiles.load("bluegreen-100-0")
    shared = SharedTranslations()
    build(_snapshot(data, 1), case.node, shared)
    targets = data["routes"][0]["spec"]["httpRoute"]["action"]["weightedTargets"]
    targets[0]["weight"], targets[1]["weight"] = 30, 70
    changed = _snapshot(data, 2)
    shared.advance(changed, [(ROUTE, "update")])
    assert len(shared) == 2  # the two target clusters
    built = build(changed, case.node, shared)
    assert (shared.misses, shared.hits) == (10, 6)
    assert built == build(changed, case.node)
    assert casefiles.render(built) == casefiles.render(build(changed, case.node))


def test_registered_endpoints_drop_that_targets_cluster_only() -> None:
    """An endpoints change of the green node rebuilds green's cluster; blue's and the plan stay."""
    data = _data("bluegreen-100-0")
    case = casefiles.load("bluegreen-100-0")
    shared = SharedTranslations()
    build(_snapshot(data, 1), case.node, shared)
    data["endpoints"] = {
        **(data.get("endpoints") or {}),
        "vn-echo-backend-green": [{"listenerPort": 80, "address": "127.0.0.9", "port": 9}],
    }
    changed = _snapshot(data, 2)
    green = ResourceKey("virtualNode", "demos", "", "vn-echo-backend-green")
    shared.advance(changed, [(green, "endpoints")])
    assert len(shared) == 4  # the plan, its routes and their serialization, blue's cluster
    built = build(changed, case.node, shared)
    assert built == build(changed, case.node)
    assert casefiles.render(built) == casefiles.render(build(changed, case.node))


def test_a_snapshot_the_table_does_not_follow_starts_it_afresh() -> None:
    """Given a revision it was not advanced to, the table rebuilds every piece (never stale)."""
    data = _data("bluegreen-100-0")
    case = casefiles.load("bluegreen-100-0")
    shared = SharedTranslations()
    build(_snapshot(data, 1), case.node, shared)
    targets = data["routes"][0]["spec"]["httpRoute"]["action"]["weightedTargets"]
    targets[0]["weight"], targets[1]["weight"] = 0, 100
    changed = _snapshot(data, 3)
    built = build(changed, case.node, shared)
    assert (shared.misses, shared.hits) == (12, 4)
    assert casefiles.render(built) == casefiles.render(build(changed, case.node))


def test_a_tcp_port_skipped_for_another_backend_brings_no_cluster_with_shared_pieces() -> None:
    """A service's TCP port that another service takes adds no cluster, shared pieces or not.

    vn-db-d provides dbc.demos on 5432 (db.demos has it) and 7000: only 7000's cluster.
    """
    data = _data("protocols")
    ports = (
        {"portMapping": {"port": 5432, "protocol": "tcp"}},
        {"portMapping": {"port": 7000, "protocol": "tcp"}},
    )
    data["virtualNodes"].append(
        {
            "virtualNodeName": "vn-db-d",
            "spec": {
                "listeners": list(ports),
                "serviceDiscovery": {"dns": {"hostname": "dbd.demos.svc.cluster.local"}},
            },
        }
    )
    skipped = next(s for s in data["virtualServices"] if s["virtualServiceName"] == "dbc.demos")
    skipped["spec"] = {"provider": {"virtualNode": {"virtualNodeName": "vn-db-d"}}}
    case = casefiles.load("protocols")
    snapshot = _snapshot(data, 1)
    alone = build(snapshot, case.node)
    assert [w.code for w in alone.warnings].count("tcp-port-taken") == 1
    assert [c.name for c in alone.clusters if "vn-db-d" in c.name] == [
        "cds_egress_demos_vn-db-d_tcp_7000"
    ]
    shared = SharedTranslations()
    for _ in range(2):
        assert build(snapshot, case.node, shared) == alone
