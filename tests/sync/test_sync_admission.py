"""meshplane's stream admission: a proxy credential for exactly the announced node and replica.

The real control plane (store, API, sync, ADS) in-process on a fake clock; a raw gRPC ADS
client plays the sidecar and the attacker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc

from meshplane import app, settings
from meshplane.envoy import CLUSTER
from meshplane.kit.clock import FakeClock
from meshplane.model import kinds
from meshplane.testing import FakeAdsClient

NODE_A = "mesh/demos/virtualNode/vn-a"
NODE_B = "mesh/demos/virtualNode/vn-b"
WAIT = 20.0
SPEC = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "a.local"}},
}


def _plane(tmp_path: Path, clock: FakeClock, **overrides: Any) -> app.ControlPlane:
    config = settings.load(
        environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0, **overrides
    )
    plane = app.build(config, clock=clock)
    svc = plane.services.resources
    svc.create(kinds.MESH, "demos", "demos", {})
    svc.create(kinds.VIRTUAL_NODE, "demos", "vn-a", SPEC)
    svc.create(kinds.VIRTUAL_NODE, "demos", "vn-b", SPEC)
    return plane


def _token(plane: app.ControlPlane, node: str, replica: str) -> str:
    assert plane.services.credentials is not None
    return plane.services.credentials.issue(node, replica).token


async def _refusal(port: int, replica: str, credential: str | None, **meta: Any) -> Any:
    async with FakeAdsClient(port, NODE_A, replica, credential=credential, metadata=meta) as proxy:
        await proxy.request(CLUSTER)
        return await proxy.ended()


def test_streams_without_the_nodes_own_credential_are_refused_before_any_answer(
    tmp_path: Path,
) -> None:
    """None or forged → UNAUTHENTICATED; vn-b's, or replica a-1's → PERMISSION_DENIED;
    expired → UNAUTHENTICATED; none of them appears in proxy-status."""
    clock = FakeClock()
    plane = _plane(tmp_path, clock)

    async def scenario() -> None:
        async with app.running(plane), asyncio.timeout(WAIT):
            port = plane.xds_port
            own = _token(plane, NODE_A, "a-0")
            assert await _refusal(port, "a-0", None) == (
                grpc.StatusCode.UNAUTHENTICATED,
                f"{NODE_A}: no proxy credential (x-meshplane-token metadata); "
                "ask the control plane for one (POST /meshplane/v1/proxyCredentials)",
            )
            assert await _refusal(port, "a-0", own[:-4] + "AAAA") == (
                grpc.StatusCode.UNAUTHENTICATED,
                f"{NODE_A}: the credential's signature does not match",
            )
            assert await _refusal(port, "a-0", _token(plane, NODE_B, "a-0")) == (
                grpc.StatusCode.PERMISSION_DENIED,
                f"the credential is for {NODE_B}#a-0, not for {NODE_A}#a-0",
            )
            assert await _refusal(port, "a-0", _token(plane, NODE_A, "a-1")) == (
                grpc.StatusCode.PERMISSION_DENIED,
                f"the credential is for {NODE_A}#a-1, not for {NODE_A}#a-0",
            )
            clock.advance(7 * 86400)
            assert await _refusal(port, "a-0", own) == (
                grpc.StatusCode.UNAUTHENTICATED,
                f"{NODE_A}: the credential has expired; ask for a new one",
            )
            assert plane.proxies() == []

    asyncio.run(scenario())


def test_a_second_announcer_cannot_change_a_connected_proxys_metadata(tmp_path: Path) -> None:
    """With the right token but other ports, a rival stream is PERMISSION_DENIED while the
    proxy is connected; the board keeps the first announcement."""
    plane = _plane(tmp_path, FakeClock())

    async def scenario() -> None:
        async with app.running(plane), asyncio.timeout(WAIT):
            token = _token(plane, NODE_A, "a-0")
            async with FakeAdsClient(
                plane.xds_port, NODE_A, "a-0", credential=token, metadata={"egress": 15001}
            ) as sidecar:
                await sidecar.request(CLUSTER)
                answer = await sidecar.receive()
                assert answer.type_url == CLUSTER
                assert await _refusal(plane.xds_port, "a-0", token, egress=15999) == (
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{NODE_A}#a-0 is connected already with another node announcement; "
                    "a second stream cannot change its identity or metadata",
                )
                status = plane.ads.status.node(f"{NODE_A}#a-0")
                assert status is not None
                assert status.streams == 1
                egress = status.node.metadata.fields["meshplane"].struct_value.fields["egress"]
                assert egress.number_value == 15001

    asyncio.run(scenario())


def test_with_xds_auth_off_a_stream_without_a_token_is_served(tmp_path: Path) -> None:
    """The dev escape hatch: no credential needed, yet a wrong one is still refused."""
    plane = _plane(tmp_path, FakeClock(), xds_auth=False)

    async def scenario() -> None:
        async with app.running(plane), asyncio.timeout(WAIT):
            async with FakeAdsClient(plane.xds_port, NODE_A, "a-0") as sidecar:
                await sidecar.request(CLUSTER)
                assert (await sidecar.receive()).type_url == CLUSTER
            refused = await _refusal(plane.xds_port, "a-1", _token(plane, NODE_B, "a-1"))
            assert refused[0] == grpc.StatusCode.PERMISSION_DENIED

    asyncio.run(scenario())
