"""Cloud Map on Kubernetes, in process: Ready pods a Cloud Map node selects become its endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.k8s import cloudmapping, controlling
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model.snapshot import Endpoint
from meshplane.service.discovery import Discovery
from meshplane.service.resources import Account, MeshService
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

ACCOUNT = "123456789012"


@pytest.fixture
def controller(store: SqliteStore, clock: FakeClock) -> controlling.Controller:
    """A controller reconciling into the test's store."""
    service = MeshService(store, Account("us-west-2", ACCOUNT), Quotas(), clock, counting_ids())
    return controlling.Controller(service, clock)


def _meta(name: str, namespace: str = "", **extra: Any) -> dict[str, Any]:
    found = {"name": name, "uid": f"{name}-uid", "generation": 1, "resourceVersion": "1"}
    found.update(extra)
    if namespace:
        found["namespace"] = namespace
    return found


def _node(name: str, attributes: list[dict[str, str]], selector: dict[str, Any] | None) -> dict:
    spec: dict[str, Any] = {
        "awsName": name,
        "meshRef": {"name": "demos", "uid": "demos-uid"},
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {
            "awsCloudMap": {
                "namespaceName": "demos.local",
                "serviceName": "colorapp",
                "attributes": attributes,
            }
        },
    }
    if selector is not None:
        spec["podSelector"] = selector
    return {"metadata": _meta(name, "demos"), "spec": spec}


def _pod(name: str, labels: dict[str, str], ip: str, ready: bool, **extra: Any) -> dict:
    conditions = [{"type": "ContainersReady", "status": "True" if ready else "False"}]
    return {
        "metadata": {**_meta(name, "demos", **extra), "labels": labels},
        "status": {"podIP": ip, "conditions": conditions},
    }


def _fill(controller: controlling.Controller) -> None:
    controller.relist("Namespace", [{"metadata": {**_meta("demos"), "labels": {"mesh": "demos"}}}])
    mesh = {"awsName": "demos", "namespaceSelector": {"matchLabels": {"mesh": "demos"}}}
    controller.relist("Mesh", [{"metadata": _meta("demos"), "spec": mesh}])
    blue = _node("blue", [{"key": "color", "value": "blue"}], {"matchLabels": {"color": "blue"}})
    controller.relist("VirtualNode", [blue, _node("all", [], None)])
    controller.converge()


def test_a_pod_body_becomes_a_pod_view() -> None:
    """IP, labels, ContainersReady (or Ready) and a deletionTimestamp are what is read."""
    body = _pod("p", {"color": "blue"}, "10.1.0.5", True, deletionTimestamp="2026-12-01T10:00:00Z")
    assert cloudmapping.pod_of(body) == cloudmapping.Pod(
        "demos", "p", {"color": "blue"}, "10.1.0.5", True, True
    )
    ready = {
        "metadata": _meta("q", "demos"),
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert cloudmapping.pod_of(ready) == cloudmapping.Pod("demos", "q", {}, "", True, False)


def test_ready_selected_pods_register_and_leave_when_not_ready_or_deleted(
    controller: controlling.Controller, store: SqliteStore
) -> None:
    """Ready pods with an IP that the node selects; not-Ready, deleted and deleting ones leave."""
    _fill(controller)
    pods = cloudmapping.Pods()
    registrar = cloudmapping.Registrar(Discovery(store, ACCOUNT))
    pods.relist(
        "Pod",
        [
            _pod("blue-1", {"color": "blue"}, "10.1.0.5", True),
            _pod("blue-2", {"color": "blue"}, "10.1.0.6", True),
            _pod("blue-pending", {"color": "blue"}, "", True),
            _pod("red-1", {"color": "red"}, "10.1.0.7", True),
        ],
    )
    registrar.sync(controller.catalog, pods)

    def attributes(name: str) -> tuple[tuple[str, str], ...]:
        return (("color", "blue"), ("k8s.io/namespace", "demos"), ("k8s.io/pod", name))

    with store.read() as rx:
        assert rx.endpoints("demos") == {
            "blue": (
                Endpoint(8080, "10.1.0.5", 8080, attributes("blue-1")),
                Endpoint(8080, "10.1.0.6", 8080, attributes("blue-2")),
            )
        }
    pods.observe("Pod", "MODIFIED", _pod("blue-1", {"color": "blue"}, "10.1.0.5", False))
    pods.observe("Pod", "DELETED", _pod("blue-2", {"color": "blue"}, "10.1.0.6", True))
    pods.observe("Pod", "ADDED", _pod("blue-3", {"color": "blue"}, "10.1.0.8", True))
    registrar.sync(controller.catalog, pods)
    with store.read() as rx:
        assert rx.endpoints("demos") == {
            "blue": (Endpoint(8080, "10.1.0.8", 8080, attributes("blue-3")),)
        }
    gone = _pod("blue-3", {"color": "blue"}, "10.1.0.8", True, deletionTimestamp="2026-12-01Z")
    pods.observe("Pod", "MODIFIED", gone)
    registrar.sync(controller.catalog, pods)
    with store.read() as rx:
        assert rx.endpoints("demos") == {}


def test_nothing_registers_before_the_first_pod_list(
    controller: controlling.Controller, store: SqliteStore
) -> None:
    """Until the pod watch has listed once, the registrar writes nothing."""
    _fill(controller)
    revision = store.revision
    cloudmapping.Registrar(Discovery(store, ACCOUNT)).sync(controller.catalog, cloudmapping.Pods())
    assert store.revision == revision


def test_a_cloud_map_node_gets_the_cloudmap_finalizer(controller: controlling.Controller) -> None:
    """As the appmesh-controller did: aws-cloudmap-resources beside aws-appmesh-resources."""
    _fill(controller)
    node = controller.catalog.get("VirtualNode", "demos", "blue")
    assert node is not None
    assert controlling.finalizers_for(node) == (controlling.RESOURCES, controlling.CLOUDMAP)
