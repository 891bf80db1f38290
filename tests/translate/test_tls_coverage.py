"""Every TLS-related member of botocore's App Mesh model is translated or explicitly warned.

The defect this guards against is a security setting accepted, stored and then silently
ignored. The model is the specification: each member of a shape whose name speaks of TLS,
certificates, validation or SANs (and each value of such an enum) must occur in a golden
case — whose translation is reviewed and validated by real Envoy — or be listed in
:data:`WARNED` with the warning code translation emits for it. A new member in a botocore
upgrade fails this test until someone decides.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import yaml

from meshplane.translate import diagnostics

from . import casefiles

TLS_SHAPE = re.compile(r"Tls|Certificate|Validation|SubjectAlternativeName")
ROOTS = {
    "virtualNodes": "VirtualNodeSpec",
    "virtualGateways": "VirtualGatewaySpec",
    "virtualServices": "VirtualServiceSpec",
    "virtualRouters": "VirtualRouterSpec",
    "routes": "RouteSpec",
    "gatewayRoutes": "GatewayRouteSpec",
}
WARNED: dict[tuple[str, str], str] = {}
"""(shape, member or enum value) → the warning code emitted instead of a translation."""


def _model() -> Any:
    return botocore.session.get_session().get_service_model("appmesh")


def _required(model: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for name in model.shape_names:
        if not TLS_SHAPE.search(name):
            continue
        shape = model.shape_for(name)
        if shape.type_name == "structure":
            found |= {(name, member) for member in shape.members}
        elif shape.type_name == "string" and shape.enum:
            found |= {(name, value) for value in shape.enum}
    return found


def _walk(shape: Any, value: Any, seen: set[tuple[str, str]]) -> None:
    if shape.type_name == "structure" and isinstance(value, dict):
        for member, child in value.items():
            seen.add((shape.name, member))
            _walk(shape.members[member], child, seen)
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            _walk(shape.member, item, seen)
    elif shape.type_name == "string" and shape.enum and isinstance(value, str):
        seen.add((shape.name, value))


def _covered(model: Any) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for name in casefiles.case_names():
        data = yaml.safe_load((casefiles.CASES / f"{name}.yaml").read_text())
        for key, root in ROOTS.items():
            for item in data.get(key, []):
                _walk(model.shape_for(root), item.get("spec", {}), seen)
    return seen


def test_every_tls_member_of_the_model_is_in_a_golden_or_warned() -> None:
    """No TLS member or mode of botocore's model is left neither translated nor warned."""
    model = _model()
    required = _required(model)
    missing = sorted(required - _covered(model) - set(WARNED))
    assert missing == []
    assert len(required) > 60  # the filter really selects the TLS shapes


def test_warned_members_name_registered_codes_of_real_members() -> None:
    """Each explicitly warned member exists in the model and its code is registered."""
    required = _required(_model())
    assert set(WARNED) <= required
    assert set(WARNED.values()) <= diagnostics.CODES
