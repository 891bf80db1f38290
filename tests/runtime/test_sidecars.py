"""Replicas with real Envoy sidecars fed by meshplane's ADS server (no translator needed).

The test plays the sync stage's part by hand: when a sidecar connects, it reads
the replica's ports from the node metadata and publishes a snapshot with an
ingress listener to the app, exactly as the translator will.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, json_format

from meshplane import xds
from meshplane.runtime import processes, sidecars
from meshplane.runtime.controlplane import ControlPlaneClient
from meshplane.runtime.selecting import Binding, VirtualNodeView
from meshplane.runtime.supervising import RuntimeOptions, Supervisor
from meshplane.runtime.workloads import Address, Workload

from .conftest import APPS, alive, eventually, free_port
from .test_controlplane import _endpoints, admin, control_plane

pytestmark = pytest.mark.integration

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _socket(port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)
    )


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _ingress_to_app(ingress: int, app: int) -> list[Any]:
    """A listener on the sidecar's ingress port routing everything to the local app."""
    cluster = cluster_pb2.Cluster(
        name="cds_ingress_app",
        type=cluster_pb2.Cluster.STATIC,
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name="cds_ingress_app",
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(address=_socket(app))
                        )
                    ]
                )
            ],
        ),
    )
    cluster.connect_timeout.FromSeconds(1)
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix="ingress",
        route_config=route_pb2.RouteConfiguration(
            virtual_hosts=[
                route_components_pb2.VirtualHost(
                    name="app",
                    domains=["*"],
                    routes=[
                        route_components_pb2.Route(
                            match=route_components_pb2.RouteMatch(prefix="/"),
                            route=route_components_pb2.RouteAction(cluster="cds_ingress_app"),
                        )
                    ],
                )
            ]
        ),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_packed(router_pb2.Router())
            )
        ],
    )
    listener = listener_pb2.Listener(
        name=f"lds_ingress_127.0.0.1_{ingress}",
        address=_socket(ingress),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_packed(manager),
                    )
                ]
            )
        ],
    )
    return [cluster, listener]


def test_sidecar_metadata_names_the_replicas_ports() -> None:
    """Node metadata carries replica, ingress/app per listener port (string keys) and egress."""
    ports = sidecars.SidecarPorts(admin=9901, egress=15001, ingress={80: 15000})
    assert sidecars.metadata("blue-0", ports, {80: 8080}) == {
        "meshplane": {
            "replica": "blue-0",
            "ingress": {"80": 15000},
            "app": {"80": 8080},
            "egress": 15001,
        }
    }
    spec = sidecars.process_spec(
        "blue-0 envoy",
        "blue-0",
        Binding("demos", "vn-blue", (80,)),
        ports,
        {80: 8080},
        ("127.0.0.1", 9090),
        {},
    )
    assert spec.env["APPMESH_RESOURCE_ARN"] == "mesh/demos/virtualNode/vn-blue"
    config = json.loads(spec.argv[spec.argv.index("--config-yaml") + 1])
    assert config["node"]["id"] == config["node"]["cluster"] == "mesh/demos/virtualNode/vn-blue"
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 9901,
    }
    assert spec.argv[spec.argv.index("--concurrency") + 1] == "1"


def test_a_delta_sidecar_asks_for_incremental_ads() -> None:
    """process_spec(delta=True) bootstraps DELTA_GRPC; by default the sidecar speaks SotW."""
    ports = sidecars.SidecarPorts(admin=9901, egress=15001, ingress={80: 15000})

    def api_type(**options: bool) -> str:
        spec = sidecars.process_spec(
            "blue-0 envoy",
            "blue-0",
            Binding("demos", "vn-blue", (80,)),
            ports,
            {80: 8080},
            ("127.0.0.1", 9090),
            {},
            **options,
        )
        config = json.loads(spec.argv[spec.argv.index("--config-yaml") + 1])
        return str(config["dynamic_resources"]["ads_config"]["api_type"])

    assert (api_type(), api_type(delta=True)) == ("GRPC", "DELTA_GRPC")


def test_replicas_with_envoy_sidecars_serve_register_and_stop(tmp_path: Path) -> None:
    """Sidecars connect as mesh/demos/virtualNode/vn-blue#<replica>, serve and get registered."""
    published = Address("127.0.0.1", free_port())
    workload = Workload(
        "blue",
        "demos",
        {"app": "blue"},
        ("{python}", "echo_backend.py"),
        {"VERSION": "1.0"},
        80,
        2,
        published,
        APPS,
    )
    node = VirtualNodeView(
        "demos", "vn-blue", "vn-blue", "demos", {"matchLabels": {"app": "blue"}}, (80,)
    )
    lines: list[tuple[str, str]] = []
    pids: list[int] = []

    async def nodes() -> list[VirtualNodeView]:
        return [node]

    async def scenario() -> dict[str, Any]:
        async with control_plane(tmp_path) as base:
            cache = xds.SnapshotCache()
            server = xds.AdsServer(cache)
            xds_port = await server.start()

            def publish(event: Any) -> None:
                if isinstance(event, xds.Connected):
                    meta = json_format.MessageToDict(event.node.metadata)["meshplane"]
                    protos = _ingress_to_app(int(meta["ingress"]["80"]), int(meta["app"]["80"]))
                    cache.set_snapshot(event.key, xds.Snapshot.of(protos))

            server.status.subscribe(publish)
            client = ControlPlaneClient(base, signer=admin(tmp_path))
            options = RuntimeOptions(
                xds=("127.0.0.1", xds_port),
                poll_interval=0.1,
                # A restart delay of 2 s leaves the 0.1 s probe loop ample time to see the exit.
                backoff=processes.Backoff(2.0, 2.0, 60),
            )
            supervisor = Supervisor(
                [workload], options, lambda n, line: lines.append((n, line)), client, nodes
            )
            try:
                await supervisor.start()
                await eventually(
                    lambda: (
                        len(supervisor.replicas) == 2
                        and all(r.ready and r.registered for r in supervisor.replicas)
                    ),
                    timeout=60,
                    what="two ready, registered replicas",
                )
                assert sorted(server.status.nodes()) == [
                    "mesh/demos/virtualNode/vn-blue#blue-0",
                    "mesh/demos/virtualNode/vn-blue#blue-1",
                ]
                answers = await asyncio.to_thread(
                    lambda: [
                        json.loads(DIRECT.open(f"http://{published}/", timeout=30).read())
                        for _ in range(4)
                    ]
                )
                assert answers == [{"version": "1.0"}] * 4
                await eventually(
                    lambda: sum(r.health.ingress_requests for r in supervisor.replicas) == 4,
                    what="ingress counters",
                )
                assert all(r.health.sync.startswith("synced ") for r in supervisor.replicas)
                registered = await _endpoints(base, tmp_path)
                # A crashed app is withdrawn at once and registered again once restarted.
                first = supervisor.replicas[0]
                crashed_pid = first.app.pid or 0
                os.kill(crashed_pid, signal.SIGKILL)
                await eventually(
                    lambda: first.registered and first.app.pid not in (None, crashed_pid),
                    timeout=60,
                    what="the crashed replica restarted and registered again",
                )
                events = [line for name, line in lines if name == first.name]
                withdrawn_at = events.index("exited: endpoints withdrawn until it is ready again")
                assert any(e.startswith("registered with") for e in events[withdrawn_at:])
                pids.extend(r.app.pid or 0 for r in supervisor.replicas)
                pids.extend(r.sidecar.pid or 0 for r in supervisor.replicas if r.sidecar)
            finally:
                await supervisor.stop()
                await client.close()
                withdrawn = await _endpoints(base, tmp_path)
                await server.stop()
        return {"registered": registered, "withdrawn": withdrawn}

    found = asyncio.run(scenario())
    ports = sorted(e["port"] for e in found["registered"]["vn-blue"])
    assert [e["listenerPort"] for e in found["registered"]["vn-blue"]] == [80, 80]
    assert len(set(ports)) == 2
    assert found["withdrawn"] == {}
    assert [alive(pid) for pid in pids] == [False] * 4
    assert any(
        name == "blue-0"
        and line.startswith("registered with mesh/demos/virtualNode/vn-blue at 127.0.0.1:")
        for name, line in lines
    )
