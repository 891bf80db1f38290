"""Nothing silently ignored: every App Mesh spec member is in a golden case or in the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
import yaml

from meshplane.translate import coverage

from . import casefiles

ROOTS = {
    "Mesh": "MeshSpec",
    "VirtualNode": "VirtualNodeSpec",
    "VirtualRouter": "VirtualRouterSpec",
    "Route": "RouteSpec",
    "VirtualService": "VirtualServiceSpec",
    "VirtualGateway": "VirtualGatewaySpec",
    "GatewayRoute": "GatewayRouteSpec",
}
SECTIONS = {
    "mesh": "Mesh",
    "virtualNodes": "VirtualNode",
    "virtualRouters": "VirtualRouter",
    "routes": "Route",
    "virtualServices": "VirtualService",
    "virtualGateways": "VirtualGateway",
    "gatewayRoutes": "GatewayRoute",
}


def _members(shape: Any, path: str) -> Iterator[str]:
    """Every member path below ``shape``, lists transparent (the model has no recursion)."""
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            yield f"{path}.{name}"
            yield from _members(member, f"{path}.{name}")
    elif shape.type_name == "list":
        yield from _members(shape.member, path)


def model_members() -> list[str]:
    """Every spec member of the seven resources in botocore's App Mesh model."""
    model = botocore.session.get_session().get_service_model("appmesh")
    return [m for res, root in ROOTS.items() for m in _members(model.shape_for(root), res)]


def _keys(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}"
            yield from _keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, path)


def golden_members() -> set[str]:
    """Every member path some golden case's input sets."""
    found: set[str] = set()
    for name in casefiles.case_names():
        data = yaml.safe_load((casefiles.CASES / f"{name}.yaml").read_text())
        for section, resource in SECTIONS.items():
            items = data.get(section) or []
            for item in [items] if isinstance(items, dict) else items:
                found.update(_keys(item.get("spec") or {}, resource))
    return found


def test_every_model_member_is_in_a_golden_case_or_the_registry() -> None:
    """A member neither exercised by a golden case nor registered fails, named."""
    covered = golden_members()
    orphans = [m for m in model_members() if m not in covered and coverage.status(m) is None]
    assert orphans == []


def test_registry_entries_name_real_members() -> None:
    """A registry path that is not a member of the model (a typo, a renamed field) fails."""
    members = set(model_members())
    assert sorted(path for path in coverage.REGISTRY if path not in members) == []


def test_every_untranslated_member_says_why() -> None:
    """Each entry has a state from the three and a sentence users can act on."""
    states = {coverage.TRANSLATED, coverage.NOT_TRANSLATED, coverage.TLS}
    assert {entry.state for entry in coverage.REGISTRY.values()} <= states
    assert [path for path, entry in coverage.REGISTRY.items() if len(entry.note) < 20] == []


@pytest.mark.parametrize(
    ("resource", "spec", "expected"),
    [
        (
            "VirtualNode",
            {
                "listeners": [
                    {"portMapping": {"port": 80, "protocol": "http"}},
                    {"healthCheck": {"port": 80, "path": "/"}},
                ],
                "serviceDiscovery": {"awsCloudMap": {"namespaceName": "n", "serviceName": "s"}},
            },
            [],  # Cloud Map is translated (translate.cloudmap), its emulation warned apart
        ),
        (
            "VirtualGateway",
            {"listeners": [{"healthCheck": {"path": "/"}}]},
            ["spec.listeners[0].healthCheck"],
        ),
        ("VirtualNode", {"listeners": [{"tls": {"mode": "STRICT"}}]}, []),
        ("Route", {"httpRoute": {"match": {"prefix": "/"}}}, []),
    ],
)
def test_untranslated_names_each_ignored_field_once(
    resource: str, spec: dict[str, Any], expected: list[str]
) -> None:
    """Present untranslated members are named with list indices; translated/TLS ones are not."""
    assert [path for path, _ in coverage.untranslated(resource, spec)] == expected
