"""The blue-green walkthrough on Kubernetes: kubectl in; twins, injected pods, Envoy config out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import cluster as k8s
from . import replicas

PREFIX = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"
FRONTEND = "mesh/demos/virtualNode/vn-echo-frontend-blue"
DEADLINE = 60.0
ORDER = (
    "namespace.yaml",
    "demos-mesh.yaml",
    "vn-echo-backend-blue.yaml",
    "vn-echo-backend-green.yaml",
    "vr-echo-backend.yaml",
    "vs-echo-backend.yaml",
    "vs-echo-backend-service.yaml",
    "vn-echo-frontend-blue.yaml",
)


@pytest.fixture
def replica(cluster: k8s.Cluster, tmp_path: Path) -> Iterator[replicas.Replica]:
    replicas.install_crds(cluster)
    running = replicas.Replica(cluster, tmp_path / "replica")
    try:
        replicas.wait_for_webhooks(cluster)
        yield running
    finally:
        replicas.delete_all(cluster)
        running.stop()
        cluster.kubectl("delete", "namespace", "demos", "--ignore-not-found", "--wait=false")


def _active(cluster: k8s.Cluster, resource: str, namespace: str | None) -> list[Any]:
    scope = ["-n", namespace] if namespace else []
    items = cluster.kubectl_json("get", resource, *scope)["items"]
    kind = items[0]["kind"] if items else ""
    for item in items:
        conditions = item.get("status", {}).get("conditions") or []
        wanted = [c for c in conditions if c["type"] == f"{kind}Active"]
        if not wanted or wanted[0]["status"] != "True":
            return []
    return items


def _arns(items: list[Any], field: str) -> list[str]:
    return sorted(item["status"][field] for item in items)


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demos"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/echo:1"}]},
            },
        },
    }


def _pods(cluster: k8s.Cluster, app: str) -> list[Any]:
    items: list[Any] = cluster.kubectl_json("get", "pods", "-n", "demos", "-l", f"app={app}")[
        "items"
    ]
    return items


def _injected(pod: dict[str, Any]) -> bool:
    spec = pod["spec"]
    names = [c["name"] for c in spec["containers"]]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    return names == ["app", "envoy"] and inits == ["proxyinit"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_walkthrough_on_kubernetes(
    cluster: k8s.Cluster, replica: replicas.Replica, tmp_path: Path
) -> None:
    """kubectl apply in order → Active twins, 100/0 over the API, injected pods, 50/50 to Envoy."""
    for name in ORDER:
        cluster.kubectl("apply", "-f", str(replicas.EXAMPLE / name))

    meshes = k8s.poll(lambda: _active(cluster, "meshes", None), DEADLINE, "mesh Active")
    nodes = k8s.poll(lambda: _active(cluster, "virtualnodes", "demos"), DEADLINE, "VNs Active")
    routers = k8s.poll(lambda: _active(cluster, "virtualrouters", "demos"), DEADLINE, "VR")
    services = k8s.poll(lambda: _active(cluster, "virtualservices", "demos"), DEADLINE, "VS")
    assert _arns([m for m in meshes if m["metadata"]["name"] == "demos"], "meshARN") == [PREFIX]
    assert _arns(nodes, "virtualNodeARN") == [
        f"{PREFIX}/virtualNode/vn-echo-backend-blue",
        f"{PREFIX}/virtualNode/vn-echo-backend-green",
        f"{PREFIX}/virtualNode/vn-echo-frontend-blue",
    ]
    (router,) = routers
    assert router["status"]["virtualRouterARN"] == f"{PREFIX}/virtualRouter/vr-echo-backend"
    assert router["status"]["routeARNs"] == {
        "vrr-echo-backend": f"{PREFIX}/virtualRouter/vr-echo-backend/route/vrr-echo-backend"
    }
    assert router["status"]["observedGeneration"] == router["metadata"]["generation"]
    assert _arns(services, "virtualServiceARN") == [
        f"{PREFIX}/virtualService/vs-echo-backend.demos.svc.cluster.local"
    ]
    assert sorted(router["metadata"]["finalizers"]) == [
        "finalizers.appmesh.k8s.aws/aws-appmesh-resources"
    ]
    (node,) = [n for n in nodes if n["metadata"]["name"] == "vn-echo-frontend-blue"]
    assert node["spec"]["meshRef"]["name"] == "demos"  # designated by the mutating webhook

    route_args = ("--mesh-name", "demos", "--virtual-router-name", "vr-echo-backend")
    route = replicas.aws(
        replica, tmp_path, "describe-route", *route_args, "--route-name", "vrr-echo-backend"
    )["route"]
    targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
    assert [(t["virtualNode"], t["weight"]) for t in targets] == [
        ("vn-echo-backend-blue", 100),
        ("vn-echo-backend-green", 0),
    ]
    assert route["metadata"]["version"] == 1
    refused = replicas.aws_run(replica, tmp_path, "delete-mesh", "--mesh-name", "demos")
    assert refused.returncode != 0
    assert "BadRequestException" in refused.stderr
    assert "the mesh is managed through Kubernetes" in refused.stderr

    cluster.kubectl(
        "label",
        "namespace",
        "demos",
        "mesh=demos",
        "appmesh.k8s.aws/sidecarInjectorWebhook=enabled",
        "--overwrite",
    )
    apps = ("echo-backend-blue", "echo-backend-green", "echo-frontend-blue")
    cluster.apply(*(_deployment(app) for app in apps))
    for app in apps:
        (pod,) = k8s.poll(lambda app=app: _pods(cluster, app), DEADLINE, f"{app} pod")
        assert _injected(pod), pod["spec"]
        envoy = pod["spec"]["containers"][1]
        assert envoy["securityContext"] == {"runAsUser": 1337}
        assert _env(envoy)["APPMESH_RESOURCE_ARN"] == f"mesh/demos/virtualNode/vn-{app}"
        assert _env(pod["spec"]["initContainers"][0])["APPMESH_APP_PORTS"] == "80"

    (first,) = _pods(cluster, "echo-frontend-blue")
    cluster.kubectl("rollout", "restart", "deployment", "echo-frontend-blue", "-n", "demos")

    def restarted() -> list[Any]:
        return [
            p
            for p in _pods(cluster, "echo-frontend-blue")
            if p["metadata"]["uid"] != first["metadata"]["uid"]
        ]

    (second,) = k8s.poll(restarted, DEADLINE, "a new frontend pod after rollout restart")
    assert _injected(second)
    assert (
        second["metadata"]["labels"]["pod-template-hash"]
        != first["metadata"]["labels"]["pod-template-hash"]
    )

    envoy = replicas.Envoy(replica, FRONTEND, tmp_path)
    try:
        backend = "cds_egress_demos_vn-echo-backend"
        k8s.poll(
            lambda: (
                [[(f"{backend}-blue_http_80", 100), (f"{backend}-green_http_80", 0)]]
                == envoy.weights()
            ),
            DEADLINE,
            "the frontend Envoy to get the 100/0 route",
        )
        documents = replicas.documents("vr-echo-backend.yaml")
        targets = documents[0]["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"]
        targets[0]["weight"], targets[1]["weight"] = 50, 50
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(documents[0]))
        k8s.poll(
            lambda: (
                [[(f"{backend}-blue_http_80", 50), (f"{backend}-green_http_80", 50)]]
                == envoy.weights()
            ),
            DEADLINE,
            "the frontend Envoy to get the 50/50 route",
        )
    finally:
        envoy.stop()
    route = replicas.aws(
        replica, tmp_path, "describe-route", *route_args, "--route-name", "vrr-echo-backend"
    )["route"]
    assert route["metadata"]["version"] == 2
    (proxy,) = [p for p in replica.proxies() if p["nodeId"] == FRONTEND]
    assert json.dumps(proxy["warnings"]) == "[]"
