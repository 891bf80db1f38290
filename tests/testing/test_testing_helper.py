"""meshplane.testing: users test their own mesh configuration against a real control plane."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from meshplane.envoy import CLUSTER
from meshplane.testing import ControlPlane, ControlPlaneError, FakeAdsClient

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


def test_the_helper_signs_as_the_administrator_and_others_are_refused(tmp_path: Path) -> None:
    """appmesh()/client() sign with the written admin profile; other keys get a 403 code."""
    with ControlPlane(tmp_path / "data") as plane:
        assert plane.credentials_file == tmp_path / "data" / "credentials"
        assert plane.credentials_file.stat().st_mode & 0o777 == 0o600
        assert plane.appmesh().list_meshes()["meshes"] == []
        assert plane.client().credentials()[0]["name"] == "meshplane"
        stranger = plane.appmesh(aws_access_key_id="AKIASTRANGER", aws_secret_access_key="x" * 40)
        with pytest.raises(ClientError) as refused:
            stranger.list_meshes()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_auth_none_needs_no_credentials(tmp_path: Path) -> None:
    """ControlPlane(..., auth="none") writes no credentials and takes any signature."""
    with ControlPlane(tmp_path / "data", auth="none") as plane:
        assert plane.signer() is None
        assert not plane.credentials_file.exists()
        plane.appmesh().create_mesh(meshName="throwaway")
        assert [m["meshName"] for m in plane.appmesh().list_meshes()["meshes"]] == ["throwaway"]


def test_a_fake_envoy_with_the_helpers_credential_is_served(tmp_path: Path) -> None:
    """proxy_credential() issues the token a stream of that node and replica is admitted with."""
    node = "mesh/demos/virtualNode/vn-echo-backend-blue"
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(EXAMPLE)
        token = plane.proxy_credential(node, "blue-0")

        async def first_clusters() -> str:
            async with (
                asyncio.timeout(30),
                FakeAdsClient(plane.xds_port, node, "blue-0", credential=token) as envoy,
            ):
                await envoy.request(CLUSTER)
                return (await envoy.receive()).type_url

        assert asyncio.run(first_clusters()) == CLUSTER
