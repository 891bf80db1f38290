"""A proxy is judged against its own mesh: another mesh's change leaves it SYNCED."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from meshplane.testing import ControlPlane, FakeAdsClient

KEY = "mesh/m/virtualNode/vn"


def test_a_change_in_another_mesh_does_not_make_a_synced_proxy_stale(tmp_path: Path) -> None:
    """Mesh m's proxy is SYNCED; creating mesh other moves the store revision, and the server
    still reports the proxy SYNCED at that revision (the wait converges, not times out)."""
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(KEY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        appmesh.create_virtual_node(meshName="m", virtualNodeName="vn", spec={})

        async def run() -> tuple[int, list[tuple[str, str, int]]]:
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                following = asyncio.create_task(envoy.follow(lambda _: None))
                await asyncio.to_thread(plane.wait_for_state, KEY, "SYNCED")
                await asyncio.to_thread(appmesh.create_mesh, meshName="other")
                client = plane.client()
                revision = (await asyncio.to_thread(client.health)).revision
                report = await asyncio.to_thread(client.wait_for_revision, revision, 30)
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            views = [(p["key"], p["state"], p["revision"]) for p in report.proxies]
            return revision, views

        revision, views = asyncio.run(run())
    assert revision == 3
    assert views == [(KEY, "SYNCED", 3)]
