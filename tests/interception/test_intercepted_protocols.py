"""TCP, gRPC and HTTP/2 backends through interception, with three listeners on one pod.

A server pod's virtual node listens on 5432 (tcp), 50051 (grpc) and 8443
(http2); all three land on its Envoy's ``lds_ingress_0.0.0.0_15000`` and are
told apart by original destination port. A client pod reaches them as
``server.demos.svc.cluster.local:<port>`` (a virtual IP in its hosts file),
through its egress listener's per-port chains: tcp_proxy for 5432, an HTTP
connection manager with its own route configuration for each HTTP/2 port.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshplane.testing import ControlPlane

from . import pods
from .namespaces import Namespaces
from .pods import poll

pytestmark = pytest.mark.integration

SUBNET = "10.214"
VIRTUAL_IP = f"{SUBNET}.255.10"
SERVICE = "server.demos.svc.cluster.local"
APPS = Path(__file__).with_name("protocol_apps.py")
MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: demos, labels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: demos}
spec:
  namespaceSelector: {matchLabels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-server, namespace: demos}
spec:
  awsName: vn-server
  podSelector: {matchLabels: {app: server}}
  listeners:
    - portMapping: {port: 5432, protocol: tcp}
    - portMapping: {port: 50051, protocol: grpc}
    - portMapping: {port: 8443, protocol: http2}
  serviceDiscovery: {dns: {hostname: server-pod}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: server, namespace: demos}
spec:
  awsName: server.demos.svc.cluster.local
  provider: {virtualNode: {virtualNodeRef: {name: vn-server}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-client, namespace: demos}
spec:
  awsName: vn-client
  podSelector: {matchLabels: {app: client}}
  listeners:
    - portMapping: {port: 8080, protocol: http}
  serviceDiscovery: {dns: {hostname: client-pod}}
  backends:
    - virtualService: {virtualServiceRef: {name: server}}
"""


def test_tcp_grpc_and_http2_backends_work_through_interception(
    namespaces: Namespaces, tmp_path: Path, socket_dir: Path
) -> None:
    """Each protocol's call reaches the server app on its own port, via both sidecars."""
    network = pods.Network(namespaces, SUBNET)
    client_pod, _ = network.pod("cli")
    server_pod, server_ip = network.pod("srv")
    client_pod.write_hosts({SERVICE: VIRTUAL_IP, "server-pod": server_ip})
    for pod in (client_pod, server_pod):
        pod.write_etc("resolv.conf", "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    pods.proxy_init(client_pod, "8080")
    pods.proxy_init(server_pod, "5432,50051,8443")
    manifest = tmp_path / "mesh.yaml"
    manifest.write_text(MESH)
    started: list[subprocess.Popen[bytes]] = []
    relay: pods.UnixRelay | None = None
    env = {"GRPC_DNS_RESOLVER": "native"}
    try:
        with ControlPlane(tmp_path / "data") as plane:
            plane.apply(manifest)
            relay = pods.UnixRelay(socket_dir / "xds.sock", plane.xds_port)
            for pod, node in ((server_pod, "vn-server"), (client_pod, "vn-client")):
                command = pods.envoy_command(
                    pod,
                    f"mesh/demos/virtualNode/{node}",
                    relay.path,
                    plane.proxy_credential(f"mesh/demos/virtualNode/{node}"),
                )
                started.append(pods.start(command, tmp_path / f"envoy-{node}.log"))
            server = server_pod.exec([sys.executable, str(APPS), "serve", "srv"], env)
            started.append(pods.start(server, tmp_path / "server.log"))
            client = plane.client()

            def synced() -> bool:
                assert all(p.poll() is None for p in started), "a sidecar or the app exited"
                report = client.proxies()
                return len(report.connected) == 2 and report.converged

            poll(synced, "both intercepted sidecars to connect and sync")
            call = client_pod.exec([sys.executable, str(APPS), "call", SERVICE], env)

            def answers() -> dict[str, str]:
                done = subprocess.run(call, capture_output=True, text=True, timeout=120, check=True)
                found: dict[str, str] = json.loads(done.stdout)
                return found

            poll(lambda: "error" not in json.dumps(answers()), "the three calls to get through")
            assert answers() == {
                "tcp": "srv:5432:ping",
                "50051": "srv:50051:hello",
                "8443": "srv:8443:hello",
            }
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)
        if relay is not None:
            relay.close()
