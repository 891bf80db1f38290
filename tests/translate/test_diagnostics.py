"""Translation warnings as (resource, code, message) values."""

from __future__ import annotations

import pytest

from meshplane.model import kinds
from meshplane.model.kinds import ResourceKey
from meshplane.translate import diagnostics
from meshplane.translate.diagnostics import Warning


def test_a_warning_prints_its_message() -> None:
    """str() and logs show the message exactly; as_json carries all three facts."""
    warning = diagnostics.service(
        "demos", "vs-a", "service-not-found", "VirtualService vs-a: not found; backend skipped"
    )
    assert str(warning) == "VirtualService vs-a: not found; backend skipped"
    assert warning.as_json() == {
        "resource": "mesh/demos/virtualService/vs-a",
        "code": "service-not-found",
        "message": "VirtualService vs-a: not found; backend skipped",
    }


def test_resource_is_the_arn_path() -> None:
    """Routes name their router, as in their ARN and in node ids."""
    key = ResourceKey.of(kinds.ROUTE, "demos", "r", parent="vr")
    warning = diagnostics.of(key, "route-no-targets", "m")
    assert warning.resource == "mesh/demos/virtualRouter/vr/route/r"
    assert diagnostics.node("demos", "vn", "no-discovery", "m").resource == (
        "mesh/demos/virtualNode/vn"
    )


def test_an_unregistered_code_is_refused() -> None:
    """Every code a program can see is one of CODES."""
    with pytest.raises(ValueError, match="unknown warning code 'made-up'"):
        Warning("mesh/demos", "made-up", "m")
