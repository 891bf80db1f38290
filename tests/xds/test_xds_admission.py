"""The ADS server's admission seam: a StreamAuthenticator ends refused streams before any answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from envoy.config.core.v3 import base_pb2
from xds_configs import weighted

from meshplane.envoy import CLUSTER
from meshplane.kit.clock import FakeClock
from meshplane.testing import FakeAdsClient, names_of
from meshplane.xds import (
    AdsServer,
    PermissionDenied,
    ResourceEncoder,
    SnapshotCache,
    Unauthenticated,
    node_key,
)

NODE = "mesh/demos/virtualNode/vn-frontend"
WAIT = 10.0


class Passwords:
    """A toy authenticator: metadata ``x-meshplane-token`` must be "<node id>:ok"."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def admit(self, key: str, node: base_pb2.Node, metadata: Mapping[str, str]) -> None:
        self.seen.append((key, node.id, dict(metadata)))
        token = metadata.get("x-meshplane-token")
        if token is None:
            raise Unauthenticated("no token")
        if token != f"{node.id}:ok":
            raise PermissionDenied(f"token {token} is not for {node.id}")


async def _serve_and() -> tuple[list[object], Passwords, list[str]]:
    cache = SnapshotCache()
    cache.set_snapshot(
        node_key(NODE), weighted(15000, {"blue": 9001}, {"blue": 100}, ResourceEncoder())
    )
    guard = Passwords()
    server = AdsServer(cache, clock=FakeClock(), authenticator=guard)
    port = await server.start("127.0.0.1", 0)
    outcomes: list[object] = []
    try:
        async with asyncio.timeout(WAIT):
            for credential in (None, "mesh/demos/virtualNode/vn-other:ok", f"{NODE}:ok"):
                async with FakeAdsClient(port, NODE, credential=credential) as proxy:
                    await proxy.request(CLUSTER)
                    if credential == f"{NODE}:ok":
                        outcomes.append(sorted(names_of(await proxy.receive())))
                    else:
                        outcomes.append(await proxy.ended())
        keys = sorted(server.status.nodes())
    finally:
        await server.stop(0)
    return outcomes, guard, keys


def test_refused_streams_end_with_their_status_and_leave_no_trace() -> None:
    """No token → UNAUTHENTICATED, a wrong one → PERMISSION_DENIED, both before any response
    and never on the board; the right one is served; the authenticator saw the metadata."""
    outcomes, guard, keys = asyncio.run(_serve_and())
    assert outcomes == [
        (grpc.StatusCode.UNAUTHENTICATED, "no token"),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            f"token mesh/demos/virtualNode/vn-other:ok is not for {NODE}",
        ),
        ["blue"],
    ]
    assert [(key, node) for key, node, _ in guard.seen] == [(NODE, NODE)] * 3
    assert [meta.get("x-meshplane-token") for _, _, meta in guard.seen] == [
        None,
        "mesh/demos/virtualNode/vn-other:ok",
        f"{NODE}:ok",
    ]
    # Only the admitted stream was ever recorded.
    assert keys == [NODE]
