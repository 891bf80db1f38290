"""BackendGroups expand into a VirtualNode's backends, as with --enable-backend-groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshplane import app, settings
from meshplane.kit.clock import FakeClock, counting_ids
from meshplane.manifests import conversion
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.frontdoor import FrontDoor
from meshplane.manifests.objects import ManifestObject
from meshplane.model import kinds

MESH_REF = {"name": "demos", "uid": "uid-mesh"}


@pytest.fixture
def door(tmp_path: Path) -> FrontDoor:
    """A front door over a real store and domain service."""
    clock, ids = FakeClock(), counting_ids()
    plane = app.build(settings.load(environ={}, data_dir=tmp_path), clock, ids)
    return FrontDoor(plane.services.resources, clock, ids)


def _active(obj: ManifestObject) -> ManifestObject:
    obj.status = {"conditions": [{"type": f"{obj.kind}Active", "status": "True"}]}
    return obj


def _service(namespace: str, name: str, mesh_ref: dict[str, str] = MESH_REF) -> ManifestObject:
    spec = {"awsName": f"{name}.{namespace}.svc.cluster.local", "meshRef": dict(mesh_ref)}
    return _active(ManifestObject("VirtualService", namespace, name, spec=spec, uid=f"uid-{name}"))


def _node(backend_groups: list[dict[str, str]], backends: tuple[str, ...] = ()) -> ManifestObject:
    spec = {
        "awsName": "front_apps",
        "meshRef": dict(MESH_REF),
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "front.apps"}},
        "backendGroups": backend_groups,
        "backends": [{"virtualService": {"virtualServiceRef": {"name": b}}} for b in backends],
    }
    return ManifestObject("VirtualNode", "apps", "front", spec=spec, uid="uid-front")


def _catalog(*objects: ManifestObject) -> Catalog:
    mesh = _active(ManifestObject("Mesh", "", "demos", spec={"awsName": "demos"}, uid="uid-mesh"))
    group = ManifestObject(
        "BackendGroup",
        "apps",
        "color-group",
        spec={
            "meshRef": dict(MESH_REF),
            "virtualservices": [
                {"name": "green", "namespace": "colors"},
                {"name": "red", "namespace": "colors"},
                {"name": "yellow"},  # the group's own namespace
            ],
        },
    )
    services = [
        _service("colors", "green"),
        _service("colors", "red"),
        _service("colors", "blue"),
        _service("colors", "other-mesh", {"name": "elsewhere", "uid": "uid-elsewhere"}),
        _service("apps", "yellow"),
    ]
    return Catalog([mesh, group, *services, *objects])


def _backends(twin: conversion.Twin) -> list[str]:
    return [b["virtualService"]["virtualServiceName"] for b in twin.spec.get("backends", [])]


def test_a_backend_group_adds_its_virtual_services_after_the_listed_backends() -> None:
    """Members become backends by awsName; one already listed is not repeated; groups drop."""
    node = _node([{"name": "color-group"}], backends=("yellow",))
    twin = conversion.convert(node, _catalog(node))
    assert _backends(twin) == [
        "yellow.apps.svc.cluster.local",
        "green.colors.svc.cluster.local",
        "red.colors.svc.cluster.local",
    ]
    assert "backendGroups" not in twin.spec
    assert twin.waiting == ()


def test_star_adds_every_virtual_service_of_the_namespace_in_the_nodes_mesh() -> None:
    """`*` in namespace colors: blue, green, red (sorted); the other mesh's service is left out."""
    node = _node([{"name": "*", "namespace": "colors"}])
    twin = conversion.convert(node, _catalog(node))
    assert _backends(twin) == [
        "blue.colors.svc.cluster.local",
        "green.colors.svc.cluster.local",
        "red.colors.svc.cluster.local",
    ]
    assert twin.waiting == ()


def test_a_missing_group_or_member_makes_the_node_wait() -> None:
    """No such BackendGroup, or a member VirtualService that does not exist: the node waits."""
    node = _node([{"name": "nope"}])
    assert conversion.convert(node, _catalog(node)).waiting == ("BackendGroup apps/nope not found",)
    node = _node([{"name": "color-group"}])
    catalog = _catalog(node)
    catalog.remove(("VirtualService", "colors", "red"))
    assert conversion.convert(node, catalog).waiting == ("VirtualService colors/red not found",)


NAMESPACES = "".join(
    f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{mesh: demos}}}}\n"
    for ns in ("apps", "colors")
)
MESH = (
    "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demos}\n"
    "spec: {namespaceSelector: {matchLabels: {mesh: demos}}}\n"
)
FRONT = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
    "metadata: {name: front, namespace: apps}\nspec:\n"
    "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
    "  serviceDiscovery: {dns: {hostname: front.apps}}\n"
    "  backendGroups: [{name: colors}, {name: '*', namespace: colors}]\n"
)
GROUP = (
    "apiVersion: appmesh.k8s.aws/v1beta2\nkind: BackendGroup\n"
    "metadata: {name: colors, namespace: apps}\n"
    "spec: {virtualservices: [{name: teal, namespace: colors}]}\n"
)


def _vs(name: str) -> str:
    return (
        "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\n"
        f"metadata: {{name: {name}, namespace: colors}}\nspec: {{}}\n"
    )


def test_apply_expands_groups_into_the_twins_backends_once_the_group_exists(
    door: FrontDoor,
) -> None:
    """The node waits for its group; applied later, the twin gets the group's and `*`'s services."""
    door.apply([("a.yaml", NAMESPACES + MESH + _vs("teal") + _vs("plum"))], None)
    (waiting,) = door.apply([("front.yaml", FRONT)], None)
    assert waiting.warnings == (
        "virtualnode/front is not Active: BackendGroup apps/colors not found",
    )
    door.apply([("group.yaml", GROUP)], None)
    described = door.service.describe(kinds.VIRTUAL_NODE, "demos", "front_apps")
    assert described["spec"]["backends"] == [
        {"virtualService": {"virtualServiceName": "teal.colors"}},
        {"virtualService": {"virtualServiceName": "plum.colors"}},
    ]
