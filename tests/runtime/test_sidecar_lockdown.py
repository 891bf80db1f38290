"""A supervised sidecar on a shared host: its own credential, a private admin socket, a lease.

The real control plane in-process (store, API, sync, ADS with token admission) and a real
Envoy sidecar started by the supervisor, exactly as ``meshplane up`` starts them.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from meshplane import app, settings
from meshplane.client import Signer
from meshplane.model import kinds
from meshplane.runtime import processes
from meshplane.runtime.controlplane import ControlPlaneClient
from meshplane.runtime.selecting import VirtualNodeView
from meshplane.runtime.supervising import RuntimeOptions, Supervisor
from meshplane.runtime.workloads import Workload

from .conftest import APPS, eventually

pytestmark = pytest.mark.integration

SPEC = {
    "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
    "serviceDiscovery": {"dns": {"hostname": "blue"}},
}
KEY = "mesh/demos/virtualNode/vn-blue#blue-0"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sidecar_shows_its_credential_keeps_admin_private_and_renews_its_lease(
    tmp_path: Path,
) -> None:
    """The sidecar passes token admission; admin is a 0600 socket and the bootstrap a 0600
    file in a 0700 dir (no token in argv); the 1 s lease is renewed without a store write."""
    config = settings.load(
        environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0, endpoint_lease_ttl=1
    )
    workload = Workload(
        "blue", "demos", {"app": "blue"}, ("{python}", "echo_backend.py"), {}, 80, 1, None, APPS
    )
    node = VirtualNodeView(
        "demos", "vn-blue", "vn-blue", "demos", {"matchLabels": {"app": "blue"}}, (80,)
    )
    private = tmp_path / "private"
    private.mkdir(mode=0o700)

    async def nodes() -> list[VirtualNodeView]:
        return [node]

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            plane.services.resources.create(kinds.MESH, "demos", "demos", {})
            plane.services.resources.create(kinds.VIRTUAL_NODE, "demos", "vn-blue", SPEC)
            admin = Signer.from_file(tmp_path / "data" / "credentials", "us-west-2")
            client = ControlPlaneClient(f"http://127.0.0.1:{plane.api_port}", signer=admin)
            options = RuntimeOptions(
                xds=("127.0.0.1", plane.xds_port),
                poll_interval=0.1,
                backoff=processes.Backoff(2.0, 2.0, 60),
                private_dir=private,
            )
            supervisor = Supervisor([workload], options, lambda n, line: None, client, nodes)
            try:
                await supervisor.start()
                await eventually(
                    lambda: bool(supervisor.replicas) and supervisor.replicas[0].registered,
                    timeout=60,
                    what="the replica ready and registered",
                )
                replica = supervisor.replicas[0]
                status = plane.ads.status.node(KEY)
                assert status is not None
                assert status.connected
                assert replica.files is not None
                assert replica.credential is not None
                admin = replica.files.admin
                assert stat.S_ISSOCK(admin.stat().st_mode)
                assert (_mode(admin), _mode(replica.files.bootstrap), _mode(private)) == (
                    0o600,
                    0o600,
                    0o700,
                )
                assert replica.health.ready is True
                assert replica.sidecar is not None
                assert replica.sidecar.pid is not None
                argv = Path(f"/proc/{replica.sidecar.pid}/cmdline").read_bytes().split(b"\0")
                assert (
                    argv[argv.index(b"--config-path") + 1] == str(replica.files.bootstrap).encode()
                )
                assert replica.credential.encode() not in b"\0".join(argv)
                assert replica.credential in replica.files.bootstrap.read_text()

                discovery = plane.services.discovery
                first = discovery.lease("demos", "vn-blue", "blue-0")
                assert first is not None
                revision = plane.store.revision()
                await eventually(
                    lambda: (
                        (lease := discovery.lease("demos", "vn-blue", "blue-0")) is not None
                        and lease.expires_at > first.expires_at + 1
                    ),
                    timeout=30,
                    what="the lease renewed past its first expiry",
                )
                assert discovery.expire() == []
                assert [e.port for e in discovery.list_endpoints("demos")["vn-blue"]] == [
                    next(iter(replica.ports.ingress.values())) if replica.ports else 0
                ]
                assert plane.store.revision() == revision
            finally:
                await supervisor.stop()
                await client.close()
            assert discovery.list_endpoints("demos") == {}

    asyncio.run(scenario())
