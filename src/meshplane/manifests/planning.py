"""Checking a whole ``apply`` before any of it is written: one bad document changes nothing.

A batch is planned against the stored objects overlaid with the batch itself
(a file may create a namespace and the objects in it). Every document is
admitted (defaults, webhook rules, immutability), every namespaced object needs
its namespace, no two objects may twin the same App Mesh resource, and each
object's converted spec must satisfy the App Mesh API's model and rules — so a
spec App Mesh would refuse is reported at apply time with the document's index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from meshplane.kit.clock import Clock, IdFactory
from meshplane.manifests import admission, conversion
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.documents import DEFAULT_NAMESPACE, Document
from meshplane.manifests.objects import ManifestError, ManifestObject
from meshplane.model import apimodel, rules, validation

CREATED, CONFIGURED, UNCHANGED = "created", "configured", "unchanged"


@dataclasses.dataclass(frozen=True)
class Planned:
    """One object of the batch, ready to store, and what applying it does."""

    document: Document
    obj: ManifestObject
    action: str


def plan(batch: Sequence[Document], stored: Catalog, clock: Clock, ids: IdFactory) -> list[Planned]:
    """Admit every document of ``batch`` against ``stored``; raise every problem at once."""
    problems: list[str] = []
    planned: list[Planned] = []
    seen: dict[tuple[str, str, str], Document] = {}
    for document in batch:
        obj = document.obj
        first = seen.get(obj.key)
        if first is not None:
            problems.append(f"{document.where}: {obj.ref()} is also defined by {first.where}")
            continue
        seen[obj.key] = document
        existing = stored.get(*obj.key)
        if existing is not None and existing.deleting:
            problems.append(
                f"{document.where}: {obj.ref()} is being deleted; wait until it is gone"
            )
            continue
        admitted, found = admission.admit(obj, existing)
        problems.extend(_lines(document, found))
        planned.append(Planned(document, *_versioned(admitted, existing, clock, ids)))
    overlay = stored.overlay(p.obj for p in planned)
    if DEFAULT_NAMESPACE not in {o.name for o in overlay.of_kind("Namespace")}:
        overlay.put(ManifestObject("Namespace", "", DEFAULT_NAMESPACE))
    for item in planned:
        problems.extend(_lines(item.document, _namespace_exists(item.obj, overlay)))
        problems.extend(_lines(item.document, _converted_spec(item.obj, overlay)))
    problems.extend(_clashes(planned, overlay))
    if problems:
        raise ManifestError(problems)
    return planned


def _lines(document: Document, found: Sequence[tuple[str, str]]) -> list[str]:
    return [
        f"{document.where}: {path}: {rule}" if path else f"{document.where}: {rule}"
        for path, rule in found
    ]


def _versioned(
    obj: ManifestObject, existing: ManifestObject | None, clock: Clock, ids: IdFactory
) -> tuple[ManifestObject, str]:
    """Identity, generation and status carried from the stored object; the apply's verb."""
    if existing is None:
        obj.uid, obj.generation, obj.created_at = ids(), 1, clock()
        return obj, CREATED
    obj.uid, obj.created_at, obj.status = existing.uid, existing.created_at, existing.status
    obj.deleted_at = existing.deleted_at
    obj.generation = existing.generation + (obj.spec != existing.spec)
    same = (obj.spec, obj.labels, obj.annotations) == (
        existing.spec,
        existing.labels,
        existing.annotations,
    )
    if existing.kind == "Namespace" and not obj.labels:
        obj.labels = dict(existing.labels)  # labels set with `label` survive a re-apply
        same = obj.annotations == existing.annotations
    return obj, UNCHANGED if same else CONFIGURED


def _namespace_exists(obj: ManifestObject, catalog: Catalog) -> list[tuple[str, str]]:
    if not obj.info.namespaced or catalog.get("Namespace", "", obj.namespace) is not None:
        return []
    return [("metadata.namespace", f'namespaces "{obj.namespace}" not found')]


def membership(obj: ManifestObject, catalog: Catalog) -> ManifestObject:
    """``obj`` with the meshRef it has or would be given now (unchanged if none matches)."""
    if obj.kind == "Mesh" or obj.spec.get("meshRef") is not None:
        return obj
    mesh, _ = admission.designate_mesh(obj, catalog)
    if mesh is None:
        return obj
    member = obj.clone()
    member.spec["meshRef"] = admission.mesh_ref(mesh)
    return member


def _converted_spec(obj: ManifestObject, catalog: Catalog) -> list[tuple[str, str]]:
    if obj.info.aws_title is None:
        return []
    twin = conversion.convert(membership(obj, catalog), catalog)
    checks: list[tuple[str, Any, str]] = [(f"{twin.kind.title}Spec", twin.spec, "spec")]
    checks += [
        ("RouteSpec", route, f"spec.routes[{i}]") for i, route in enumerate(twin.routes.values())
    ]
    found: list[tuple[str, str]] = []
    for shape, spec, path in checks:
        broken = validation.problems(apimodel.shape(shape), spec, path)
        if not broken:
            key = "route" if shape == "RouteSpec" else twin.kind.key
            broken = [
                line.replace("spec.", f"{path}.", 1) if path != "spec" else line
                for line in rules.problems(key, spec)
            ]
        found += [("", f"App Mesh refuses the converted {shape}: {line}") for line in broken]
    return found


def _clashes(planned: Sequence[Planned], catalog: Catalog) -> list[str]:
    """Two objects may not map to one App Mesh resource (same kind, mesh and awsName)."""
    owners: dict[tuple[str, str, str], list[ManifestObject]] = {}
    for obj in catalog.all():
        if obj.info.aws_title is None or obj.kind == "BackendGroup":
            continue
        member = membership(obj, catalog)
        mesh = (member.spec.get("meshRef") or {}).get("name", "")
        if obj.kind != "Mesh" and not mesh:
            continue  # not in a mesh yet: it cannot clash with anything
        owners.setdefault((obj.kind, mesh, str(obj.spec.get("awsName"))), []).append(obj)
    problems = []
    for item in planned:
        for key, holders in owners.items():
            if len(holders) > 1 and any(h.key == item.obj.key for h in holders):
                others = ", ".join(
                    f"{h.namespace}/{h.name}".lstrip("/") for h in holders if h.key != item.obj.key
                )
                where = f" in mesh {key[1]}" if key[0] != "Mesh" else ""
                problems.append(
                    f"{item.document.where}: spec.awsName: {item.obj.kind} {key[2]!r}{where} "
                    f"is already the awsName of {item.obj.kind} {others}; "
                    "each App Mesh resource twins one object"
                )
    return problems
