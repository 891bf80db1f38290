"""The app freezes its start-up heap once serving and after the first publishing pass; exit thaws.

With the freeze the young generation's threshold is raised, and restored on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path

from meshplane.app import YOUNG_COLLECTION_THRESHOLD
from meshplane.testing import ControlPlane, FakeAdsClient

KEY = "mesh/m/virtualNode/vn"


def test_the_heap_is_frozen_after_the_first_publish_and_unfrozen_when_the_plane_stops(
    tmp_path: Path,
) -> None:
    """Serving freezes start-up; the first snapshot freezes again, raising the young threshold."""
    gc.unfreeze()
    thresholds = gc.get_threshold()
    with ControlPlane(tmp_path) as plane:
        token = plane.proxy_credential(KEY)
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="m")
        appmesh.create_virtual_node(meshName="m", virtualNodeName="vn", spec={})
        before = gc.get_freeze_count()  # serving the API froze the start-up heap
        young_before = gc.get_threshold()[0]

        async def run() -> tuple[int, int]:
            async with FakeAdsClient(plane.xds_port, KEY, credential=token) as envoy:
                following = asyncio.create_task(envoy.follow(lambda _: None))
                await asyncio.to_thread(plane.wait_for_state, KEY, "SYNCED")
                frozen = gc.get_freeze_count()
                young = gc.get_threshold()[0]
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            return frozen, young

        during, young_during = asyncio.run(run())
    assert before > 0
    assert young_before == thresholds[0]
    assert during > before
    assert young_during == YOUNG_COLLECTION_THRESHOLD
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
