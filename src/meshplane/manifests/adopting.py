"""Saying so when an ``apply`` takes over an App Mesh resource someone created through the API.

Manifests and the App Mesh API write the same resources. An object applied for the first
time whose twin (same kind, mesh and App Mesh name) already exists did not create it: a
script, the console or ``aws appmesh create-*`` did. The controller silently adopted such a
resource and overwrote it on every reconcile; here ``apply`` (and ``apply --dry-run``
against a server) says which, once, as a warning on that object's line — and for an adopted
VirtualRouter names the routes the manifest does not list, which reconciling deletes.

The decision uses the manifest store alone: a stored object that already twins the
resource (its status holds the twin's ARN) is the owner, so re-applying it never warns.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshplane.manifests import conversion, planning, reconciling
from meshplane.manifests.catalog import Catalog
from meshplane.model import errors, kinds
from meshplane.service.resources import MeshService

Key = tuple[str, str, str]


def adoptions(
    service: MeshService, planned: Sequence[planning.Planned], stored: Catalog
) -> dict[Key, list[str]]:
    """The warnings for the objects of ``planned`` that would adopt an API-created resource."""
    overlay = stored.overlay(item.obj for item in planned)
    found: dict[Key, list[str]] = {}
    for item in planned:
        obj = item.obj
        if obj.info.aws_title is None or obj.kind == "BackendGroup":
            continue
        previous = stored.get(*obj.key)
        if previous is not None and previous.status.get(reconciling.arn_field(obj.kind)):
            continue  # it already twins its resource: it is the owner
        twin = conversion.convert(planning.membership(obj, overlay), overlay)
        try:
            service.describe(twin.kind, twin.mesh, twin.name, parent=twin.parent)
        except errors.AppMeshError:  # not there (or its mesh is not): nothing to adopt
            continue
        where = "" if twin.kind is kinds.MESH else f" in mesh {twin.mesh}"
        lines = [
            f"{obj.info.singular}/{obj.name}: {twin.kind.title} {twin.name!r}{where} was "
            "created through the App Mesh API; it is now managed by this manifest (changes "
            "made through the API will be overwritten)"
        ]
        if twin.kind is kinds.VIRTUAL_ROUTER:
            existing = reconciling.route_names(service, twin.mesh, twin.name)
            extra = sorted(set(existing) - set(twin.routes))
            if extra:
                lines.append(
                    f"{obj.info.singular}/{obj.name}: its routes {', '.join(extra)} were "
                    "created through the App Mesh API and are not in this manifest: they "
                    "are deleted"
                )
        found[obj.key] = lines
    return found
