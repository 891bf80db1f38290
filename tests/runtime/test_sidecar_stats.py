"""A supervised sidecar's stats at a fixed place: its read-only stats port and the control plane.

The real control plane in-process and a real Envoy sidecar started by the supervisor, as
``meshplane up`` starts them: the stats listener answers ``GET /stats/prometheus`` and
nothing else of the admin interface, and ``/meshplane/v1/proxies/stats`` reads it per proxy.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from meshplane import app, client, settings
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


def _value(text: str, metric: str) -> str:
    """The value of the one sample of ``metric`` (Envoy writes ``name{} value``)."""
    found = [line.split(" ")[-1] for line in text.splitlines() if line.startswith(metric + "{")]
    assert len(found) == 1, f"{metric}: {found}"
    return found[0]


def test_stats_port_serves_only_stats_and_the_control_plane_reads_it_per_proxy(
    tmp_path: Path,
) -> None:
    """GET /stats/prometheus and /stats answer on the stats port, admin's other paths are 404
    (Envoy stays up after POST /quitquitquit); the file_sd file, proxy-status and /proxies/stats
    name it, and the control plane reads it per proxy."""
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)
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
            url = f"http://127.0.0.1:{plane.api_port}"
            credentials = tmp_path / "data" / "credentials"
            admin = client.Signer.from_file(credentials, "us-west-2")
            runtime = ControlPlaneClient(url, signer=admin)
            options = RuntimeOptions(
                xds=("127.0.0.1", plane.xds_port),
                poll_interval=0.1,
                backoff=processes.Backoff(2.0, 2.0, 60),
                private_dir=private,
                prometheus_targets=tmp_path / "targets.json",
            )
            supervisor = Supervisor([workload], options, lambda n, line: None, runtime, nodes)
            try:
                await supervisor.start()
                await eventually(
                    lambda: bool(supervisor.replicas) and supervisor.replicas[0].registered,
                    timeout=60,
                    what="the replica ready and registered",
                )
                replica = supervisor.replicas[0]
                assert replica.ports is not None
                port = replica.ports.stats
                assert port not in {0, replica.ports.egress, *replica.ports.ingress.values()}
                await eventually((tmp_path / "targets.json").exists, what="the file_sd targets")
                assert json.loads((tmp_path / "targets.json").read_text()) == [
                    {
                        "targets": [f"127.0.0.1:{port}"],
                        "labels": {
                            "mesh": "demos",
                            "virtual_node": "vn-blue",
                            "workload": "blue",
                            "replica": "blue-0",
                        },
                    }
                ]
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession(trust_env=False) as http:
                    async with http.get(f"{base}/stats/prometheus") as answer:
                        assert answer.status == 200
                        assert _value(await answer.text(), "envoy_server_live") == "1"
                    async with http.get(f"{base}/stats", params={"format": "json"}) as answer:
                        assert answer.status == 200
                        names = {s.get("name") for s in (await answer.json())["stats"]}
                        assert "server.live" in names
                    for method, path in (("POST", "/quitquitquit"), ("GET", "/server_info")):
                        async with http.request(method, f"{base}{path}") as answer:
                            assert (method, path, answer.status) == (method, path, 404)
                    async with http.post(f"{base}/stats") as answer:
                        assert answer.status == 404
                assert replica.sidecar is not None
                assert replica.sidecar.pid is not None
                assert Path(f"/proc/{replica.sidecar.pid}").exists()
                assert replica.sidecar.restarts == 0

                # A blocking client, as the CLI uses it: off the loop that serves the API.
                blocking = client.MeshplaneClient(client.Transport(url, signer=admin))
                report = await asyncio.to_thread(blocking.proxies)
                assert [(p["key"], p["stats"]) for p in report.proxies] == [
                    (KEY, f"127.0.0.1:{port}")
                ]
                text = await asyncio.to_thread(blocking.proxy_stats, KEY)
                assert _value(text, "envoy_server_live") == "1"
                as_json = json.loads(await asyncio.to_thread(blocking.proxy_stats, KEY, "json"))
                assert "server.live" in {s.get("name") for s in as_json["stats"]}
                with pytest.raises(client.ControlPlaneError) as missing:
                    await asyncio.to_thread(blocking.proxy_stats, f"{KEY[:-1]}9")
                assert missing.value.status == 404
                with pytest.raises(client.ControlPlaneError) as bad:
                    await asyncio.to_thread(blocking.proxy_stats, KEY, "xml")
                assert bad.value.status == 400
            finally:
                await supervisor.stop()
                await runtime.close()

    asyncio.run(scenario())
