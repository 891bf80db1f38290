"""meshplane.client against an in-process control plane: every typed call, and its errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from meshplane import client
from meshplane.testing import ControlPlane

NODE = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "blue"}},
}


def test_health_endpoints_and_the_proxies_report(tmp_path: Path) -> None:
    """Registration round-trips; the report and waitForRevision answer with no proxy connected."""
    with ControlPlane(tmp_path / "data") as plane:
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="demos")
        appmesh.create_virtual_node(meshName="demos", virtualNodeName="vn-blue", spec=NODE)
        mp = plane.client()
        assert mp.health() == client.Health("ok", 2)
        endpoint = client.Endpoint(80, "127.0.0.1", 40123)
        assert mp.register_endpoints("demos", "vn-blue", "blue-0", [endpoint]) == [endpoint]
        assert mp.endpoints("demos") == {"vn-blue": [endpoint]}
        revision = mp.health().revision
        assert mp.proxies() == client.ProxiesReport(revision, True, [])
        assert mp.wait_for_revision(revision, timeout=5) == client.ProxiesReport(revision, True, [])
        assert mp.register_endpoints("demos", "vn-blue", "blue-0", []) == []
        assert mp.endpoints("demos") == {}


def test_refusals_keep_the_status_and_the_servers_words(tmp_path: Path) -> None:
    """A bad waitForRevision is a 400 and an unknown node a 404, each with App Mesh's message."""
    with ControlPlane(tmp_path / "data") as plane:
        mp = plane.client()
        with pytest.raises(client.ControlPlaneError) as bad:
            mp.call("GET", "/meshplane/v1/proxies", query={"waitForRevision": "soon"})
        assert (bad.value.status, bad.value.message) == (
            400,
            "waitForRevision must be an integer and timeout a number of seconds",
        )
        with pytest.raises(client.ControlPlaneError) as missing:
            mp.register_endpoints("nope", "vn", "r-0", [])
        assert missing.value.status == 404
        assert missing.value.phrase == "Not Found"
        assert str(missing.value).startswith(
            "PUT /meshplane/v1/meshes/nope/virtualNodes/vn/endpoints: 404 "
        )


def test_an_unreachable_control_plane_is_an_oserror() -> None:
    """Nothing listening: UnreachableError (an OSError) naming the URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(client.UnreachableError) as caught:
        client.connect(url, timeout=2, trust_env=False).health()
    assert str(caught.value).startswith(f"GET {url}/healthz: ")
