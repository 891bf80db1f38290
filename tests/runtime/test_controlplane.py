"""The runtime's HTTP client against a real control plane (in this process, on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meshplane import app, client, settings
from meshplane.runtime.controlplane import (
    ControlPlaneClient,
    ControlPlaneError,
    EndpointRegistration,
)

from .conftest import free_port


def admin(data_dir: Path) -> client.Signer:
    """The signer of the administrator the control plane in ``data_dir`` created."""
    return client.Signer.from_file(data_dir / "credentials", "us-west-2")


def _admin_client(base: str, data_dir: Path) -> client.MeshplaneClient:
    return client.MeshplaneClient(client.Transport(base, signer=admin(data_dir), trust_env=False))


@contextlib.asynccontextmanager
async def control_plane(data_dir: Path) -> AsyncIterator[str]:
    """A running control plane with mesh demos and virtual node vn-blue (listener 80)."""
    config = settings.load(environ={}, data_dir=data_dir, api_port=0, xds_port=0)
    async with app.running(app.build(config)) as plane:
        base = f"http://127.0.0.1:{plane.api_port}"
        setup = _admin_client(base, data_dir)
        await asyncio.to_thread(setup.call, "PUT", "/v20190125/meshes", {"meshName": "demos"})
        node = {
            "virtualNodeName": "vn-blue",
            "spec": {
                "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                "serviceDiscovery": {"dns": {"hostname": "blue"}},
            },
        }
        await asyncio.to_thread(setup.call, "PUT", "/v20190125/meshes/demos/virtualNodes", node)
        yield base


async def _endpoints(base: str, data_dir: Path) -> Any:
    reader = _admin_client(base, data_dir)
    return await asyncio.to_thread(reader.call, "GET", "/meshplane/v1/meshes/demos/endpoints")


def test_health_registration_and_withdrawal(tmp_path: Path) -> None:
    """/healthz is seen; a replica's endpoint is registered, then withdrawn with []."""

    async def scenario() -> None:
        async with control_plane(tmp_path) as base:
            client = ControlPlaneClient(base, signer=admin(tmp_path))
            try:
                assert await client.healthy() is True
                await client.wait_healthy(time.monotonic() + 30)
                endpoint = EndpointRegistration(80, "127.0.0.1", 40123)
                await client.register_endpoints("demos", "vn-blue", "blue-0", [endpoint])
                assert await _endpoints(base, tmp_path) == {
                    "vn-blue": [{"listenerPort": 80, "address": "127.0.0.1", "port": 40123}]
                }
                await client.register_endpoints("demos", "vn-blue", "blue-0", [])
                assert await _endpoints(base, tmp_path) == {}
            finally:
                await client.close()

    asyncio.run(scenario())


def test_refusals_carry_the_control_planes_message(tmp_path: Path) -> None:
    """A NotFound virtual node or a bad listener port becomes one ControlPlaneError line."""

    async def scenario() -> list[str]:
        found = []
        async with control_plane(tmp_path) as base:
            client = ControlPlaneClient(base, signer=admin(tmp_path))
            try:
                for node, port in (("vn-none", 80), ("vn-blue", 81)):
                    endpoint = EndpointRegistration(port, "127.0.0.1", 40123)
                    with pytest.raises(ControlPlaneError) as caught:
                        await client.register_endpoints("demos", node, "r-0", [endpoint])
                    found.append(str(caught.value))
            finally:
                await client.close()
        return found

    missing, wrong_port = asyncio.run(scenario())
    path = "PUT /meshplane/v1/meshes/demos/virtualNodes"
    assert missing.startswith(f"{path}/vn-none/endpoints: 404 ")
    assert wrong_port == (
        f"{path}/vn-blue/endpoints: 400 Invalid request: endpoints[0].listenerPort: "
        "virtual node vn-blue has no listener on port 81"
    )


def test_the_echo_manifests_apply_and_their_nodes_join_the_mesh_once_labelled(
    tmp_path: Path,
) -> None:
    """apply sends the directory; VirtualNodes have no mesh until the namespace is labelled."""
    example = tmp_path / "echo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "echo", example)
    # Start from the walkthrough's unlabelled namespace; labelling it is the step under test.
    (example / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n", encoding="utf-8"
    )

    async def scenario() -> tuple[list[str], list[Any], list[Any]]:
        config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)
        async with app.running(app.build(config)) as plane:
            base = f"http://127.0.0.1:{plane.api_port}"
            client = ControlPlaneClient(base, signer=admin(tmp_path / "data"))
            try:
                lines = await client.apply(example, "demos") or []
                before = await client.virtual_nodes() or []
                labeller = _admin_client(base, tmp_path / "data")
                await asyncio.to_thread(labeller.label_namespace, "demos", {"mesh": "demos"}, False)
                after = await client.virtual_nodes() or []
            finally:
                await client.close()
        return lines, before, after

    lines, before, after = asyncio.run(scenario())
    assert "virtualnode.appmesh.k8s.aws/vn-echo-backend-blue created" in lines
    assert [(n.namespace, n.name, n.mesh) for n in before] == [
        ("demos", "vn-echo-backend-blue", None),
        ("demos", "vn-echo-backend-green", None),
        ("demos", "vn-echo-frontend-blue", None),
    ]
    assert [(n.aws_name, n.mesh, n.listener_ports) for n in after] == [
        ("vn-echo-backend-blue", "demos", (80,)),
        ("vn-echo-backend-green", "demos", (80,)),
        ("vn-echo-frontend-blue", "demos", (80,)),
    ]


def test_an_unreachable_control_plane_times_out_with_its_address() -> None:
    """wait_healthy gives up at the deadline, or at once if the started process died."""
    base = f"http://127.0.0.1:{free_port()}"

    async def scenario() -> list[str]:
        client = ControlPlaneClient(base, timeout=2)
        messages = []
        try:
            assert await client.healthy() is False
            for starting in (True, False):
                with pytest.raises(ControlPlaneError) as caught:
                    await client.wait_healthy(time.monotonic(), still_starting=lambda s=starting: s)
                messages.append(str(caught.value))
        finally:
            await client.close()
        return messages

    assert asyncio.run(scenario()) == [
        f"the control plane at {base} is not healthy",
        f"the control plane at {base} exited on startup",
    ]
