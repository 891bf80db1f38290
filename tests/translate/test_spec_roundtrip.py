"""Every golden case's specs survive the typed spec classes unchanged."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshplane.model import specs_generated as g

from . import casefiles

_SPEC_OF = {
    "virtualNodes": g.VirtualNodeSpec,
    "virtualServices": g.VirtualServiceSpec,
    "virtualRouters": g.VirtualRouterSpec,
    "routes": g.RouteSpec,
    "virtualGateways": g.VirtualGatewaySpec,
    "gatewayRoutes": g.GatewayRouteSpec,
}


def _specs(name: str) -> list[tuple[Any, dict[str, Any]]]:
    data = yaml.safe_load((casefiles.CASES / f"{name}.yaml").read_text())
    found: list[tuple[Any, dict[str, Any]]] = [(g.MeshSpec, data["mesh"].get("spec", {}))]
    for member, cls in _SPEC_OF.items():
        found += [(cls, item.get("spec", {})) for item in data.get(member, [])]
    return found


@pytest.mark.parametrize("name", casefiles.case_names())
def test_golden_case_specs_round_trip(name: str) -> None:
    """Every spec of every golden case parses and writes back to exactly the same JSON."""
    for cls, spec in _specs(name):
        assert cls.from_wire(spec, "spec").to_wire() == spec
