"""The one label-selector implementation: Kubernetes semantics and the old copies' drift cases."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import selectors

LABELS = {"app": "echo-backend", "version": "blue"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        # The old manifests copy raised KeyError on an expression without key or operator.
        ({"matchExpressions": [{"operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "app"}]}, False),
        # The old manifests copy ignored an unknown operator and selected everything.
        ({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["e"]}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "in", "values": ["echo-"]}]}, False),
        # Both copies read a null matchLabels value as matching an absent label.
        ({"matchLabels": {"tier": None}}, False),
        # In / NotIn without values are refused by the API server: select nothing.
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn"}]}, False),
        # NotIn holds for an absent key; Exists ignores values.
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists", "values": []}]}, True),
        # Every entry must hold.
        (
            {
                "matchExpressions": [
                    {"key": "app", "operator": "Exists"},
                    {"key": "version", "operator": "In", "values": ["green"]},
                ]
            },
            False,
        ),
        ({"matchLabels": {}, "matchExpressions": []}, True),
    ],
)
def test_drift_cases_follow_kubernetes(selector: dict[str, Any], expected: bool) -> None:
    """Malformed expressions select nothing; absent keys only satisfy NotIn and DoesNotExist."""
    assert selectors.matches(selector, LABELS) is expected


def test_selects_reads_absent_as_nothing_and_empty_as_everything() -> None:
    """App Mesh: no selector selects nothing, ``{}`` selects every label set."""
    assert selectors.selects(None, {}) is False
    assert selectors.selects({}, {}) is True
    assert selectors.selects({"matchLabels": {"app": "echo-backend"}}, LABELS) is True


def test_selecting_keeps_the_candidates_in_order() -> None:
    """The shared half of every designation: the selecting candidates, in the order given."""
    candidates = [
        ("b", {"matchLabels": {"app": "echo-backend"}}),
        ("none", None),
        ("a", {}),
        ("green", {"matchLabels": {"version": "green"}}),
    ]
    chosen = selectors.selecting(candidates, lambda item: item[1], LABELS)
    assert [name for name, _ in chosen] == ["b", "a"]


def test_gateway_designation_narrows_by_namespace_then_route_labels() -> None:
    """A gateway needs its namespaceSelector to select; an absent route selector narrows nothing."""
    gateways = [
        ("no-namespace-selector", None, None),
        ("all-routes", {}, None),
        ("blue-routes", {"matchLabels": {"mesh": "demos"}}, {"matchLabels": {"gw": "blue"}}),
        ("green-routes", {}, {"matchLabels": {"gw": "green"}}),
    ]
    chosen = selectors.gateways_for(
        gateways, lambda g: g[1], lambda g: g[2], {"mesh": "demos"}, {"gw": "blue"}
    )
    assert [name for name, _, _ in chosen] == ["all-routes", "blue-routes"]
    meshes = [("a", {"matchLabels": {"mesh": "demos"}}), ("b", None), ("c", {})]
    assert [m for m, _ in selectors.meshes_for(meshes, lambda m: m[1], {"mesh": "demos"})] == [
        "a",
        "c",
    ]
