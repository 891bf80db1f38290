"""Accepted-but-untranslated fields of a manifest object, for apply's warnings and its status.

The registry of what translation does with each App Mesh member is
:mod:`meshplane.translate.coverage`; the v1beta2 names of those members are the API's, so a
manifest's spec is checked as it is, and a VirtualRouter's inline routes as Routes. Users
hear of these fields twice: ``apply`` prints a warning per field, and the object's status
keeps a ``FieldsIgnored`` condition naming them, so ``meshplane describe`` shows them as
long as they are there. Neither reaches the App Mesh API's wire format.
"""

from __future__ import annotations

from typing import Any

from meshplane.manifests.objects import ManifestObject
from meshplane.translate import cloudmap, coverage

CONDITION = "FieldsIgnored"
REASON = "AcceptedNotTranslated"


def fields(obj: ManifestObject) -> list[tuple[str, str]]:
    """``(field path, note)`` per accepted spec member that translation does not act on."""
    resource = obj.info.aws_title
    if resource is None:
        return []
    found = list(coverage.untranslated(resource, obj.spec))
    if resource == "VirtualRouter":
        for index, route in enumerate(obj.spec.get("routes") or []):
            if isinstance(route, dict):
                found += [
                    (f"spec.routes[{index}]{path[len('spec') :]}", note)
                    for path, note in coverage.untranslated("Route", route)
                ]
    return found


def warnings(obj: ManifestObject) -> list[str]:
    """``apply``'s warning lines, one per field, and a Cloud Map node's emulation note."""
    lines = [
        f"{obj.info.singular}/{obj.name}: {path} is accepted but not translated: {note}"
        for path, note in fields(obj)
    ]
    emulated = cloudmap.manifest_note(obj.info.singular, obj.name, obj.spec)
    if obj.info.aws_title == "VirtualNode" and emulated is not None:
        lines.append(emulated)
    return lines


def condition(obj: ManifestObject, now: str) -> dict[str, Any] | None:
    """The ``FieldsIgnored`` condition (None when no field is ignored).

    Its time moves only when the message (the set of fields) changes, as a condition's
    lastTransitionTime does.
    """
    found = fields(obj)
    if not found:
        return None
    message = "; ".join(f"{path}: {note}" for path, note in found)
    old: dict[str, Any] = next(
        (c for c in obj.status.get("conditions") or [] if c.get("type") == CONDITION), {}
    )
    return {
        "type": CONDITION,
        "status": "True",
        "lastTransitionTime": old.get("lastTransitionTime", now)
        if old.get("message") == message
        else now,
        "reason": REASON,
        "message": message,
    }
