"""The controller's pass over API objects: twins, status and finalizer plans, adoption, deletes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshplane.k8s import controlling
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.model import kinds
from meshplane.service.resources import Account, MeshService
from meshplane.service.tagging import Tagging
from meshplane.settings import Quotas
from meshplane.store.sqlite import SqliteStore

ARN = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos"


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock) -> MeshService:
    return MeshService(store, Account("us-west-2", "123456789012"), Quotas(), clock, counting_ids())


@pytest.fixture
def controller(service: MeshService, clock: FakeClock) -> controlling.Controller:
    return controlling.Controller(service, clock)


def _meta(name: str, namespace: str = "", **extra: Any) -> dict[str, Any]:
    metadata = {
        "name": name,
        "uid": f"{name}-uid",
        "generation": 1,
        "resourceVersion": "7",
        "creationTimestamp": "2026-12-01T09:00:00Z",
        **extra,
    }
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def _mesh(**extra: Any) -> dict[str, Any]:
    return {
        "metadata": _meta("demos", **extra),
        "spec": {"awsName": "demos", "namespaceSelector": {"matchLabels": {"mesh": "demos"}}},
    }


def _node(name: str = "vn-blue", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": _meta(name, "demos", **extra),
        "spec": {
            "awsName": name,
            "meshRef": {"name": "demos", "uid": "demos-uid"},
            "podSelector": {"matchLabels": {"app": name}},
            "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": name}},
        },
    }


def _namespace() -> dict[str, Any]:
    return {"metadata": {**_meta("demos"), "labels": {"mesh": "demos"}}}


def _fill(controller: controlling.Controller, *items: tuple[str, dict[str, Any]]) -> None:
    for kind in ("Namespace", "Mesh", "VirtualNode"):
        controller.relist(kind, [body for k, body in items if k == kind])


def test_new_objects_are_twinned_and_the_plan_adds_finalizers_and_status(controller, service):
    """Fresh objects become twins; the plan adds the controller's finalizers and status."""
    _fill(controller, ("Namespace", _namespace()), ("Mesh", _mesh()), ("VirtualNode", _node()))
    plan = controller.converge()
    assert service.describe(kinds.VIRTUAL_NODE, "demos", "vn-blue")["metadata"]["arn"] == (
        f"{ARN}/virtualNode/vn-blue"
    )
    assert sorted((w.obj.name, w.finalizers) for w in plan.finalizers) == [
        ("demos", (controlling.MESH_MEMBERS, controlling.RESOURCES)),
        ("vn-blue", (controlling.RESOURCES,)),
    ]
    statuses = {w.obj.name: w.patch for w in plan.statuses}
    assert statuses["vn-blue"] == {
        "virtualNodeARN": f"{ARN}/virtualNode/vn-blue",
        "conditions": [
            {
                "type": "VirtualNodeActive",
                "status": "True",
                "lastTransitionTime": "2023-11-14T22:13:20Z",
            }
        ],
        "observedGeneration": 1,
    }


def test_objects_left_by_the_appmesh_controller_are_adopted_without_writes(controller, service):
    """Same finalizers, same ARNs, same condition: the pass twins them and writes nothing."""
    active = {"type": "MeshActive", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    mesh = _mesh(finalizers=[controlling.MESH_MEMBERS, controlling.RESOURCES])
    mesh["status"] = {"meshARN": ARN, "conditions": [active], "observedGeneration": 1}
    node = _node(finalizers=[controlling.RESOURCES])
    node["status"] = {
        "virtualNodeARN": f"{ARN}/virtualNode/vn-blue",
        "conditions": [{**active, "type": "VirtualNodeActive"}],
        "observedGeneration": 1,
    }
    _fill(controller, ("Namespace", _namespace()), ("Mesh", mesh), ("VirtualNode", node))
    plan = controller.converge()
    assert not plan
    assert service.describe(kinds.MESH, "demos", "demos")["metadata"]["arn"] == ARN


def test_a_deleted_mesh_waits_for_members_then_drops_only_appmesh_finalizers(controller, service):
    """Mesh deletion waits while a VirtualNode is a member; then its finalizers go, others stay."""
    _fill(controller, ("Namespace", _namespace()), ("Mesh", _mesh()), ("VirtualNode", _node()))
    first = controller.converge()
    for write in first.statuses:  # the leader wrote them; the watch reports them back
        kind = write.obj.kind
        body = _mesh() if kind == "Mesh" else _node()
        body["status"] = {k: v for k, v in write.patch.items() if v is not None}
        body["metadata"]["finalizers"] = list(controlling.finalizers_for(write.obj))
        controller.observe(kind, "MODIFIED", body)
    deleting = copy.deepcopy(_mesh())
    deleting["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    deleting["metadata"]["finalizers"] = [
        controlling.MESH_MEMBERS,
        controlling.RESOURCES,
        "example.com/keep",
    ]
    deleting["status"] = controller.seen(("Mesh", "", "demos")).obj.status
    controller.observe("Mesh", "MODIFIED", deleting)
    waiting = controller.converge()
    assert waiting.finalizers == []
    assert [(e.reason, e.message) for e in waiting.events] == [
        (
            "PendingMembersDeletion",
            "objects belonging to this mesh exist, delete them to proceed: virtualNode: 1",
        )
    ]
    controller.observe("VirtualNode", "DELETED", _node())
    done = controller.converge()
    assert [(w.obj.name, w.finalizers, w.resource_version) for w in done.finalizers] == [
        ("demos", ("example.com/keep",), "7")
    ]
    assert service.list_refs(kinds.MESH, "")["meshes"] == []


def test_a_node_deleted_behind_meshplanes_back_loses_its_twin(controller, service):
    """A DELETED event without meshplane's finalizer still deletes the twin."""
    _fill(controller, ("Namespace", _namespace()), ("Mesh", _mesh()), ("VirtualNode", _node()))
    controller.converge()
    controller.observe("VirtualNode", "DELETED", _node())
    controller.converge()
    refs = service.list_refs(kinds.VIRTUAL_NODE, "demos")["virtualNodes"]
    assert refs == []


def test_a_namespace_labelled_later_designates_the_mesh_locally(controller, service):
    """A node without meshRef joins the mesh once its namespace is labelled, and stays joined."""
    node = _node()
    del node["spec"]["meshRef"]
    bare = {"metadata": _meta("demos")}
    _fill(controller, ("Namespace", bare), ("Mesh", _mesh()), ("VirtualNode", node))
    plan = controller.converge()
    (status,) = [w for w in plan.statuses if w.obj.kind == "VirtualNode"]
    assert status.patch["conditions"][0]["reason"] == "Waiting"
    controller.observe("Namespace", "MODIFIED", _namespace())
    controller.converge()
    assert controller.catalog.get("VirtualNode", "demos", "vn-blue").spec["meshRef"] == {
        "name": "demos",
        "uid": "demos-uid",
    }
    controller.observe("Namespace", "MODIFIED", bare)
    controller.converge()
    assert service.describe(kinds.VIRTUAL_NODE, "demos", "vn-blue")["status"] == {
        "status": "ACTIVE"
    }


def test_an_object_that_bypassed_the_webhook_and_breaks_a_rule_says_why(controller, service):
    """A listener without serviceDiscovery (webhook down) gets no twin, and its status says why."""
    node = _node()
    del node["spec"]["serviceDiscovery"]
    _fill(controller, ("Namespace", _namespace()), ("Mesh", _mesh()), ("VirtualNode", node))
    plan = controller.converge()
    (status,) = [w for w in plan.statuses if w.obj.kind == "VirtualNode"]
    assert status.patch == {
        "conditions": [
            {
                "type": "VirtualNodeActive",
                "status": "False",
                "lastTransitionTime": "2023-11-14T22:13:20Z",
                "reason": "ReconcileError",
                "message": "spec.serviceDiscovery: must be specified when a listener is specified",
            }
        ]
    }
    assert service.list_refs(kinds.VIRTUAL_NODE, "demos")["virtualNodes"] == []


def test_an_object_created_without_the_webhook_gets_the_default_aws_name(controller, service):
    """No awsName (the mutating webhook did not run): the twin takes the webhook's default."""
    node = _node()
    del node["spec"]["awsName"]
    _fill(controller, ("Namespace", _namespace()), ("Mesh", _mesh()), ("VirtualNode", node))
    controller.converge()
    twin = service.describe(kinds.VIRTUAL_NODE, "demos", "vn-blue_demos")
    assert twin["metadata"]["arn"] == f"{ARN}/virtualNode/vn-blue_demos"


def test_a_budgeted_pass_stops_short_and_the_next_ones_finish(controller, service):
    """converge(budget=1) reconciles one object per call; repeated calls reach the same twins."""
    _fill(
        controller,
        ("Namespace", _namespace()),
        ("Mesh", _mesh()),
        ("VirtualNode", _node("vn-a")),
        ("VirtualNode", _node("vn-b")),
    )
    controller.converge(budget=1)
    assert controller.pending
    assert controller.reconciled == 1
    calls = 1
    while controller.pending:
        controller.converge(budget=1)
        calls += 1
    names = sorted(
        r["virtualNodeName"] for r in service.list_refs(kinds.VIRTUAL_NODE, "demos")["virtualNodes"]
    )
    assert names == ["vn-a", "vn-b"]
    assert calls == controller.reconciled


def test_the_mesh_mtls_annotation_becomes_the_twins_extension_tag(controller, service, store):
    """meshplane.dev/mtls on a Mesh reaches its twin as the tag (automatic mTLS); removing it
    removes the tag, as `meshplane apply` does (one shared reconciler)."""
    annotated = _mesh(annotations={"meshplane.dev/mtls": "PERMISSIVE"})
    _fill(controller, ("Namespace", _namespace()), ("Mesh", annotated))
    controller.converge()
    tags = Tagging(store, Account("us-west-2", "123456789012"))
    assert tags.list_tags(ARN)["tags"] == [{"key": "meshplane.dev/mtls", "value": "PERMISSIVE"}]
    changed = _mesh(annotations={"owner": "team-a"})
    changed["metadata"]["generation"] = 2
    _fill(controller, ("Namespace", _namespace()), ("Mesh", changed))
    controller.converge()
    assert tags.list_tags(ARN)["tags"] == []
