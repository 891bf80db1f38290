"""Injected pods of the test cluster really carry traffic: iptables, two Envoys, kubectl shifts.

Each pod is the one the API server stored after meshplane's injector mutated it, run by the fake
kubelet (``kubelet.py``) in a network namespace: ``meshplane proxy-init`` with the proxyinit
container's env, Envoy as uid 1337 with the envoy container's args and env (xDS at the test's
``meshplane k8s``), the echo app; its Ready status makes the EndpointSlices the backends'
Service names resolve to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from interception.namespaces import Namespaces, skip_without_net_admin

from . import cluster as k8s
from . import kubelet, replicas, traffic

REQUESTS = 40
PROTOCOL_APPS = Path(__file__).resolve().parents[1] / "interception" / "protocol_apps.py"


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    """Network namespaces for the test's pods, deleted afterwards."""
    skip_without_net_admin()
    made = Namespaces()
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def replica(cluster: k8s.Cluster, tmp_path: Path) -> Iterator[replicas.Replica]:
    """One ``meshplane k8s`` with its webhooks registered; the mesh is deleted afterwards."""
    replicas.install_crds(cluster)
    running = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        yield running
    finally:
        replicas.delete_all(cluster)
        running.stop()
        cluster.kubectl("delete", "namespace", "demos", "--ignore-not-found", "--wait=false")
        k8s.poll(
            lambda: cluster.kubectl("get", "namespace", "demos", check=False).returncode != 0,
            120,
            "namespace demos to be gone",
        )


def test_kubectl_weight_shifts_move_intercepted_traffic_with_no_failed_request(
    cluster: k8s.Cluster, replica: replicas.Replica, namespaces: Namespaces, tmp_path: Path
) -> None:
    """100/0 reaches only blue; kubectl 50/50 both, then 0/100 only green; 0 failed across."""
    seed = traffic.Seed(cluster, replica, namespaces, tmp_path / "pods", "10.215")
    try:
        blue = seed.pods["blue"]
        [init] = traffic.the_pod(cluster, "echo-backend-blue")["spec"]["initContainers"]
        env = kubelet.environment_of(init)
        assert (env["APPMESH_APP_PORTS"], env["APPMESH_IGNORE_UID"]) == ("80", "1337")
        assert "2 hooks added" in blue.log("proxyinit")
        original_dst = ["envoy.filters.listener.original_dst"]
        for pod in (seed.frontend, blue):  # App Mesh's intercepted layout, not HTTP_PROXY's
            assert traffic.listener_filters(pod) == {
                "lds_egress_0.0.0.0_15001": original_dst,
                "lds_ingress_0.0.0.0_15000": original_dst,
            }
        k8s.poll(
            lambda: traffic.weights(seed.frontend) == traffic.split(100, 0),
            traffic.DEADLINE,
            "the frontend Envoy to get 100/0",
        )
        k8s.poll(
            lambda: traffic.tally(seed.frontend, 1)["failed"] == 0,
            traffic.DEADLINE,
            "the first intercepted call",
        )
        assert traffic.tally(seed.frontend, REQUESTS) == {
            "versions": {"1.0": REQUESTS},
            "failed": 0,
            "errors": [],
        }

        during = seed.shift(50, 50)
        assert (during["failed"], during["errors"]) == (0, [])
        assert during["versions"]["1.0"] >= 1
        half = traffic.tally(seed.frontend, REQUESTS)
        assert (half["failed"], sorted(half["versions"])) == (0, ["1.0", "2.0"])
        assert sum(half["versions"].values()) == REQUESTS

        during = seed.shift(0, 100)
        assert (during["failed"], during["errors"]) == (0, [])
        assert sum(during["versions"].values()) >= 1
        assert traffic.tally(seed.frontend, REQUESTS) == {
            "versions": {"2.0": REQUESTS},
            "failed": 0,
            "errors": [],
        }
        slices = cluster.kubectl_json(
            "get", "endpointslices", "-n", "demos", "-l", "kubernetes.io/service-name"
        )["items"]
        by_service = {
            s["metadata"]["labels"]["kubernetes.io/service-name"]: sorted(
                a for e in s.get("endpoints") or [] for a in e["addresses"]
            )
            for s in slices
        }
        assert by_service["echo-backend-blue"] == [blue.ip]
        assert by_service["echo-backend-green"] == [seed.pods["green"].ip]
    finally:
        seed.stop()


PROTOCOL_MESH = """
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
  serviceDiscovery: {dns: {hostname: server-pod.demos.svc.cluster.local}}
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
  serviceDiscovery: {dns: {hostname: client.demos.svc.cluster.local}}
  backends:
    - virtualService: {virtualServiceRef: {name: server}}
"""
SERVER_IMAGE = "registry.invalid/protocol-server:1"
CLIENT_IMAGE = "registry.invalid/idle:1"


def test_tcp_and_grpc_backends_work_through_interception_on_kubernetes(
    cluster: k8s.Cluster, replica: replicas.Replica, namespaces: Namespaces, tmp_path: Path
) -> None:
    """An injected client pod reaches an injected server's TCP, gRPC and HTTP/2 ports."""
    cluster.kubectl("apply", "-f", str(replicas.EXAMPLE / "namespace.yaml"))
    cluster.kubectl("apply", "-f", str(replicas.EXAMPLE / "demos-mesh.yaml"))
    cluster.kubectl("apply", "-f", "-", stdin=PROTOCOL_MESH)
    k8s.poll(lambda: traffic.active(cluster, "virtualnodes"), traffic.DEADLINE, "VNs Active")
    k8s.poll(lambda: traffic.active(cluster, "virtualservices"), traffic.DEADLINE, "VS Active")
    cluster.kubectl("label", "namespace", "demos", "appmesh.k8s.aws/sidecarInjectorWebhook=enabled")
    ports = {"tcp": 5432, "grpc": 50051, "h2": 8443}
    server = traffic.deployment("server", SERVER_IMAGE, {}, 5432)
    server["spec"]["template"]["spec"]["containers"][0]["args"] = ["serve", "srv"]
    client = traffic.deployment("client", CLIENT_IMAGE, {}, 8080, probe=False)
    cluster.apply(
        traffic.service("server-pod", ports, {"app": "server"}),
        traffic.service("server", ports, {}),
        server,
        client,
    )
    images = kubelet.Images(
        images={
            SERVER_IMAGE: [sys.executable, str(PROTOCOL_APPS)],
            CLIENT_IMAGE: [sys.executable, "-c", "import signal; signal.pause()"],
        }
    )
    node = kubelet.Kubelet(
        cluster, namespaces, "10.216", tmp_path / "pods", images, xds_port=replica.xds_port
    )
    try:
        server_pod = node.run(traffic.the_pod(cluster, "server"))
        [init] = traffic.the_pod(cluster, "server")["spec"]["initContainers"]
        assert kubelet.environment_of(init)["APPMESH_APP_PORTS"] == "5432,50051,8443"
        k8s.poll(
            lambda: node.refresh_dns().get("server-pod.demos") == [server_pod.ip],
            traffic.DEADLINE,
            "the server's EndpointSlice",
        )
        client_pod = node.run(traffic.the_pod(cluster, "client"))
        call = client_pod.exec(
            [sys.executable, str(PROTOCOL_APPS), "call", "server.demos.svc.cluster.local"],
            {"GRPC_DNS_RESOLVER": "native"},
        )

        def answers() -> dict[str, str]:
            done = subprocess.run(call, capture_output=True, text=True, timeout=120, check=True)
            found: dict[str, str] = json.loads(done.stdout)
            return found

        k8s.poll(
            lambda: "error" not in json.dumps(answers()),
            traffic.DEADLINE,
            "the three calls to get through",
        )
        original_dst = ["envoy.filters.listener.original_dst"]
        for pod in (client_pod, server_pod):  # App Mesh's intercepted layout on both sides
            assert traffic.listener_filters(pod) == {
                "lds_egress_0.0.0.0_15001": original_dst,
                "lds_ingress_0.0.0.0_15000": original_dst,
            }
        assert answers() == {
            "tcp": "srv:5432:ping",
            "50051": "srv:50051:hello",
            "8443": "srv:8443:hello",
        }
    finally:
        node.stop()


TOKEN_IMAGE = "registry.invalid/token-reader:1"


def test_the_runner_mounts_a_projected_token_the_api_server_accepts_for_that_pod(
    cluster: k8s.Cluster, namespace: str, namespaces: Namespaces, tmp_path: Path
) -> None:
    """A projected serviceAccountToken volume reaches the container; TokenReview names the pod."""
    mount = "/run/meshplane-test-kubelet/token"
    pod_spec = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader", "namespace": namespace},
        "spec": {
            # The test cluster runs without the ServiceAccount admission plugin, which would
            # default this; a projected token needs it.
            "serviceAccountName": "default",
            "containers": [
                {
                    "name": "app",
                    "image": TOKEN_IMAGE,
                    "volumeMounts": [{"name": "token", "mountPath": mount, "readOnly": True}],
                }
            ],
            "volumes": [
                {
                    "name": "token",
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": "meshplane",
                                    "expirationSeconds": 600,
                                    "path": "token",
                                }
                            }
                        ]
                    },
                }
            ],
        },
    }
    cluster.apply(pod_spec)
    read = f"print(open('{mount}/token').read(), flush=True); import time; time.sleep(600)"
    images = kubelet.Images(images={TOKEN_IMAGE: [sys.executable, "-c", read]})
    node = kubelet.Kubelet(cluster, namespaces, "10.218", tmp_path / "pods", images)
    try:
        pod = cluster.kubectl_json("get", "pod", "reader", "-n", namespace)
        running = node.run(pod)
        token = k8s.poll(lambda: running.log("app").strip(), traffic.DEADLINE, "the token")
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": ["meshplane"]},
        }
        answer = json.loads(
            cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review)).stdout
        )
        status = answer["status"]
        assert status["authenticated"] is True, status
        assert status["audiences"] == ["meshplane"]
        assert status["user"]["username"] == f"system:serviceaccount:{namespace}:default"
        assert status["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["reader"]
        assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [
            pod["metadata"]["uid"]
        ]
        status_now = cluster.kubectl_json("get", "pod", "reader", "-n", namespace)["status"]
        assert (status_now["podIP"], status_now["phase"]) == (running.ip, "Running")
    finally:
        node.stop()
