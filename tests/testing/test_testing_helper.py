"""meshplane.testing: users test their own mesh configuration against a real control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane.testing import ControlPlane, ControlPlaneError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo"


def test_the_walkthrough_applies_and_boto3_sees_its_route(tmp_path: Path) -> None:
    """apply() twins the manifests; the bound boto3 client describes the route at 100/0."""
    with ControlPlane(tmp_path / "data") as plane:
        lines = plane.apply(EXAMPLE)
        assert "virtualrouter.appmesh.k8s.aws/vr-echo-backend created" in lines
        route = plane.appmesh().describe_route(
            meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
        )["route"]
        targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
        assert [(t["virtualNode"], t["weight"]) for t in targets] == [
            ("vn-echo-backend-blue", 100),
            ("vn-echo-backend-green", 0),
        ]
        assert plane.xds_port > 0


def test_a_refused_manifest_raises_with_the_servers_words(tmp_path: Path) -> None:
    """A manifest the front door refuses raises ControlPlaneError naming the field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\n"
        "spec: {egressFilter: {type: NOPE}}\n",
        encoding="utf-8",
    )
    with ControlPlane(tmp_path / "data") as plane, pytest.raises(ControlPlaneError) as caught:
        plane.apply(bad)
    assert "spec.egressFilter.type" in str(caught.value)
