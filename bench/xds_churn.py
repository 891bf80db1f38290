"""Memory under node-id churn: 1,000 unique proxies connect, are served and leave.

Against an in-process control plane (so its structures can be counted), a raw
ADS client per unique node id connects, requests clusters, receives them and
disconnects, ten at a time. Printed before and after: the process's RSS, the
entries of the status board, the snapshot cache and the sync stage's proxies.

Run: ``python -m bench.xds_churn [PROXIES]``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
from pathlib import Path

from meshplane.envoy import CLUSTER
from meshplane.testing import ControlPlane
from meshplane.testing.ads import FakeAdsClient

DEFAULT_PROXIES = 1000
AT_ONCE = 10


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _counts(plane: ControlPlane) -> str:
    built = plane.plane
    assert built is not None
    board = len(built.views._board.nodes())
    cache = len(list(built.cache.keys()))
    proxies = len(built.sync._proxies)
    return (
        f"board {board:5d}  cache {cache:5d}  sync proxies {proxies:5d}  RSS {_rss_mib():7.1f} MiB"
    )


async def _churn(port: int, proxies: int) -> None:
    async def one(index: int) -> None:
        node = f"mesh/churn/virtualNode/vn-{index}"
        async with FakeAdsClient(port, node, replica=f"r{index}") as client:
            await client.request(CLUSTER)
            async with asyncio.timeout(30):
                await client.receive()

    for start in range(0, proxies, AT_ONCE):
        await asyncio.gather(*(one(i) for i in range(start, min(proxies, start + AT_ONCE))))


def main(argv: list[str]) -> None:
    """Churn ``argv[0]`` (default 1,000) unique node ids and print what stays."""
    proxies = int(argv[0]) if argv else DEFAULT_PROXIES
    with (
        tempfile.TemporaryDirectory(prefix="meshplane-churn-") as tmp,
        ControlPlane(Path(tmp) / "data") as plane,
    ):
        plane.appmesh().create_mesh(meshName="churn")
        asyncio.run(_churn(plane.xds_port, 20))  # warm-up: imports, first allocations
        gc.collect()
        print(f"before: {_counts(plane)}")
        asyncio.run(_churn(plane.xds_port, proxies))
        gc.collect()
        print(f"after {proxies} unique node ids: {_counts(plane)}")


if __name__ == "__main__":
    main(sys.argv[1:])
