"""`meshplane proxy-status` exits non-zero when any proxy is not SYNCED."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli.main import cli
from meshplane.envoy import resources
from meshplane.testing import ControlPlane, FakeAdsClient

KEY = "mesh/m/virtualNode/vn"


def test_proxy_status_exit_code_follows_the_proxies_states(tmp_path: Path) -> None:
    """No proxy: 0; a synced proxy: 0; a NACKing one: 1 with the reason on stderr."""
    runner = CliRunner()
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(KEY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        appmesh.create_virtual_node(meshName="m", virtualNodeName="vn", spec={})
        server = ["--server", plane.endpoint]
        admin = {
            "AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file),
            "AWS_PROFILE": "meshplane",
        }
        empty = runner.invoke(cli, ["proxy-status", *server, "-o", "json"], env=admin)
        assert (empty.exit_code, json.loads(empty.stdout)["proxies"]) == (0, [])

        async def run(reject: bool) -> tuple[int, str, str]:
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                rejects = (
                    (lambda r: "no" if r.type_url == resources.LISTENER else None)
                    if reject
                    else (lambda _: None)
                )
                following = asyncio.create_task(envoy.follow(rejects))
                state = "NACKED" if reject else "SYNCED"
                await asyncio.to_thread(plane.wait_for_state, KEY, state)
                done = await asyncio.to_thread(
                    runner.invoke, cli, ["proxy-status", *server], env=admin
                )
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            return done.exit_code, done.stdout, done.stderr

        code, out, err = asyncio.run(run(reject=False))
        assert (code, err) == (0, "")
        assert "SYNCED" in out
        code, out, err = asyncio.run(run(reject=True))
    assert code == 1
    assert err == f"1 of 1 proxies not SYNCED: {KEY} (NACKED)\n"
    assert "NACKED" in out


GATEWAY = "mesh/m/virtualGateway/gw"


def test_proxy_status_notes_name_an_accepted_but_untranslated_field(tmp_path: Path) -> None:
    """A gateway listener's health check (not translated) is a note on that gateway's proxy."""
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(GATEWAY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        health = {
            "protocol": "http",
            "path": "/ping",
            "healthyThreshold": 2,
            "unhealthyThreshold": 2,
            "intervalMillis": 5000,
            "timeoutMillis": 2000,
        }
        listener = {"portMapping": {"port": 8088, "protocol": "http"}, "healthCheck": health}
        appmesh.create_virtual_gateway(
            meshName="m", virtualGatewayName="gw", spec={"listeners": [listener]}
        )

        async def run() -> dict[str, object]:
            async with FakeAdsClient(plane.xds_port, GATEWAY, credential=token) as envoy:
                following = asyncio.create_task(envoy.follow(lambda _: None))
                view = await asyncio.to_thread(plane.wait_for_state, GATEWAY, "SYNCED")
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            return view

        view = asyncio.run(run())
    assert view["warnings"] == [
        "VirtualGateway gw: spec.listeners[0].healthCheck is accepted but not translated: a "
        "gateway's own health check was the load balancer's business; meshplane's publish "
        "forwarder sends traffic to every ready gateway replica without probing it"
    ]
