"""The app freezes its start-up heap after the first publishing pass, and unfreezes on exit."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path

from meshplane.testing import ControlPlane, FakeAdsClient

KEY = "mesh/m/virtualNode/vn"


def test_the_heap_is_frozen_after_the_first_publish_and_unfrozen_when_the_plane_stops(
    tmp_path: Path,
) -> None:
    """Before any proxy nothing is frozen; a proxy's first snapshot freezes the heap; exit thaws."""
    gc.unfreeze()
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(KEY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        appmesh.create_virtual_node(meshName="m", virtualNodeName="vn", spec={})
        before = gc.get_freeze_count()  # serving the API and taking writes froze nothing

        async def run() -> int:
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                following = asyncio.create_task(envoy.follow(lambda _: None))
                await asyncio.to_thread(plane.wait_for_state, KEY, "SYNCED")
                frozen = gc.get_freeze_count()
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            return frozen

        during = asyncio.run(run())
    assert before == 0
    assert during > 0
    assert gc.get_freeze_count() == 0
