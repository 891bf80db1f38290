"""Accepted-but-untranslated fields: a FieldsIgnored condition in status and describe only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.manifests.frontdoor import FrontDoor

from .live import Cli, Server, appmesh

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n  labels: {mesh: demos}\n"
MESH = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demos}\n"
    "spec: {namespaceSelector: {matchLabels: {mesh: demos}}}\n"
)
HEALTH_CHECK = (
    "    healthCheck: {protocol: http, path: /ping, healthyThreshold: 2, unhealthyThreshold: 2,\n"
    "                  intervalMillis: 5000, timeoutMillis: 2000}\n"
)
NOTE = (
    "a gateway's own health check was the load balancer's business; meshplane's publish "
    "forwarder sends traffic to every ready gateway replica without probing it"
)


def gateway(health_check: bool) -> str:
    """VirtualGateway gw, with or without its listener's (untranslated) health check."""
    return (
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway\n"
        "metadata: {name: gw, namespace: demos}\nspec:\n"
        "  namespaceSelector: {matchLabels: {mesh: demos}}\n"
        "  podSelector: {matchLabels: {app: gw}}\n"
        "  listeners:\n"
        "  - portMapping: {port: 8088, protocol: http}\n" + (HEALTH_CHECK if health_check else "")
    )


@pytest.fixture
def door(tmp_path: Path) -> FrontDoor:
    clock, ids = FakeClock(), counting_ids()
    plane = app.build(settings.load(environ={}, data_dir=tmp_path), clock, ids)
    return FrontDoor(plane.services.resources, clock, ids)


def _conditions(door: FrontDoor) -> list[dict[str, Any]]:
    return list(door.get("VirtualGateway", "demos", "gw").status["conditions"])


def test_status_carries_fields_ignored_while_the_field_is_there(door: FrontDoor) -> None:
    """Active first, then FieldsIgnored naming the path and why; removing the field removes it."""
    door.apply([("f.yaml", NAMESPACE + "---\n" + MESH + "---\n" + gateway(True))], "demos")
    active, ignored = _conditions(door)
    assert (active["type"], active["status"]) == ("VirtualGatewayActive", "True")
    assert {k: v for k, v in ignored.items() if k != "lastTransitionTime"} == {
        "type": "FieldsIgnored",
        "status": "True",
        "reason": "AcceptedNotTranslated",
        "message": f"spec.listeners[0].healthCheck: {NOTE}",
    }
    door.apply([("f.yaml", gateway(False))], "demos")
    assert [c["type"] for c in _conditions(door)] == ["VirtualGatewayActive"]


@pytest.mark.integration
def test_describe_shows_the_condition_and_the_api_adds_nothing(cli: Cli, server: Server) -> None:
    """`meshplane describe` lists FieldsIgnored; the App Mesh API's status stays App Mesh's."""
    applied = cli("apply", "-f", "-", stdin=NAMESPACE + "---\n" + MESH + "---\n" + gateway(True))
    assert applied.code == 0, applied.err
    assert f"spec.listeners[0].healthCheck is accepted but not translated: {NOTE}" in applied.err
    page = cli.ok("describe", "virtualgateway", "gw", "-n", "demos").splitlines()
    start = page.index("    Type:                  FieldsIgnored")
    assert page[start + 1] == "    Status:                True"
    assert page[start + 3 : start + 5] == [
        "    Reason:                AcceptedNotTranslated",
        f"    Message:               spec.listeners[0].healthCheck: {NOTE}",
    ]
    described = appmesh(server).describe_virtual_gateway(
        meshName="demos", virtualGatewayName="gw_demos"
    )["virtualGateway"]
    assert described["status"] == {"status": "ACTIVE"}
    assert described["spec"]["listeners"][0]["healthCheck"]["path"] == "/ping"
