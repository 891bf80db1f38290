"""``/meshplane/v1/proxyCredentials`` and scoped, leased endpoint registration over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane import client
from meshplane.testing import ControlPlane

SPEC = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "blue.local"}},
}
PATH = "/meshplane/v1/meshes/demos/virtualNodes/vn-blue/endpoints"
ENDPOINT = {"listenerPort": 80, "address": "127.0.0.1", "port": 8080}


def _refusal(mp: client.MeshplaneClient, body: object) -> tuple[int, str, str]:
    with pytest.raises(client.ControlPlaneError) as refused:
        mp.call("PUT", PATH, body)
    answer = refused.value.body
    assert isinstance(answer, dict)
    return refused.value.status, str(answer.get("__type", "")), refused.value.message


def test_a_replica_registers_only_with_its_own_credential(tmp_path: Path) -> None:
    """Another replica's, another node's, a forged or a missing credential → 403, nothing
    registered; its own → 200 with the lease the control plane grants."""
    with ControlPlane(tmp_path, endpoint_lease_ttl=9) as plane:
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="demos")
        appmesh.create_virtual_node(meshName="demos", virtualNodeName="vn-blue", spec=SPEC)
        mp = plane.client()
        own = mp.issue_proxy_credential("mesh/demos/virtualNode/vn-blue", "blue-0")
        assert (own.node_id, own.replica) == ("mesh/demos/virtualNode/vn-blue", "blue-0")
        sibling = mp.issue_proxy_credential("mesh/demos/virtualNode/vn-blue", "blue-1").token
        other = mp.issue_proxy_credential("mesh/demos/virtualNode/vn-green", "blue-0").token
        body = {"source": "blue-0", "endpoints": [ENDPOINT]}
        assert _refusal(mp, {**body, "credential": sibling}) == (
            403,
            "ForbiddenException",
            "The credential is for replica 'blue-1', not 'blue-0': "
            "a replica registers and withdraws only its own endpoints",
        )
        assert _refusal(mp, {**body, "credential": other}) == (
            403,
            "ForbiddenException",
            "The credential is for mesh/demos/virtualNode/vn-green, "
            "not mesh/demos/virtualNode/vn-blue",
        )
        assert _refusal(mp, {**body, "credential": own.token + "x"}) == (
            403,
            "ForbiddenException",
            "Invalid proxy credential: the credential's signature does not match",
        )
        assert _refusal(mp, body) == (
            403,
            "ForbiddenException",
            "Registering endpoints needs the replica's proxy credential (body field credential)",
        )
        assert mp.endpoints("demos") == {}
        answer = mp.call("PUT", PATH, {**body, "credential": own.token})
        assert answer == {"endpoints": [ENDPOINT], "leaseSeconds": 9}
        assert mp.endpoints("demos") == {"vn-blue": [client.Endpoint(80, "127.0.0.1", 8080)]}


def test_a_credential_needs_a_node_id_of_app_meshs_form(tmp_path: Path) -> None:
    """A nodeId that is no virtual node or gateway is a 400 naming the form."""
    with ControlPlane(tmp_path) as plane:
        with pytest.raises(client.ControlPlaneError) as refused:
            plane.client().issue_proxy_credential("demos/vn-blue", "blue-0")
        assert refused.value.status == 400
        assert refused.value.message == (
            "Invalid request: nodeId: must be mesh/<mesh>/virtualNode/<name> "
            "or mesh/<mesh>/virtualGateway/<name>"
        )
