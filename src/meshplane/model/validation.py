"""Checks a JSON value against a shape of the service model: what botocore leaves to servers.

botocore validates types, ``min`` and unions on the client, but not ``max``,
enums or patterns, and raw HTTP clients skip it all. This walker enforces every
constraint the model states and reports each breach with its field path, e.g.
``spec.listeners[0].portMapping.port``, so the message names the field and the rule.
Rules the model cannot state live in :mod:`meshplane.model.rules`.
"""

from __future__ import annotations

import re
from typing import Any

from meshplane.kit.jsonvalues import type_name
from meshplane.model import errors

_MAX_REPORTED = 10


def _child(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


class _Walker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, rule: str) -> None:
        self.problems.append(f"{path or 'request'}: {rule}")

    def walk(self, shape: Any, value: Any, path: str) -> None:
        kind = shape.type_name
        handler = getattr(self, f"_{kind}", None)
        if handler is None:  # pragma: no cover - the model has no other kinds today
            raise NotImplementedError(kind)
        handler(shape, value, path)

    def _structure(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"must be an object, got {type_name(value)}")
            return
        members = shape.members
        for name in value:
            if name not in members:
                self.fail(_child(path, name), f"unknown field (allowed: {', '.join(members)})")
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(_child(path, name), "is required")
        present = [name for name in members if value.get(name) is not None]
        if shape.is_tagged_union and len(present) != 1:
            self.fail(
                path,
                f"must set exactly one of {', '.join(members)}"
                + (f" (found {', '.join(present)})" if present else " (found none)"),
            )
        for name in present:
            self.walk(members[name], value[name], _child(path, name))

    def _list(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {type_name(value)}")
            return
        self._bounds(shape, len(value), path, "list length")
        for index, item in enumerate(value):
            self.walk(shape.member, item, f"{path}[{index}]")

    def _map(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"must be an object, got {type_name(value)}")
            return
        for key, item in value.items():
            self.walk(shape.key, key, f"{path}.<key>")
            self.walk(shape.value, item, f"{path}.{key}")

    def _string(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {type_name(value)}")
            return
        enum = shape.enum
        if enum and value not in enum:
            self.fail(path, f"{value!r} is not one of {', '.join(enum)}")
            return
        self._bounds(shape, len(value), path, "length")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.search(pattern, value):
            self.fail(path, f"{value!r} does not match the pattern {pattern}")

    def _integer(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, f"must be an integer, got {type_name(value)}")
            return
        self._bounds(shape, value, path, "value")

    _long = _integer

    def _boolean(self, _shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(path, f"must be a boolean, got {type_name(value)}")

    def _timestamp(self, _shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(path, f"must be epoch seconds, got {type_name(value)}")

    def _bounds(self, shape: Any, measure: int, path: str, what: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and measure < low:
            self.fail(path, f"{what} {measure} is below the minimum {low}")
        if high is not None and measure > high:
            self.fail(path, f"{what} {measure} is above the maximum {high}")


def problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """Every breach of ``shape``'s constraints by ``value``, as ``path: rule`` lines."""
    walker = _Walker()
    walker.walk(shape, value, path)
    return walker.problems


def check(shape: Any, value: Any, path: str = "") -> None:
    """Raise :class:`BadRequestException` naming every breached field and rule."""
    found = problems(shape, value, path)
    if found:
        raise errors.BadRequestException(summarize(found))


def summarize(found: list[str]) -> str:
    """One message for one or many problems, as App Mesh users read them."""
    if len(found) == 1:
        return f"Invalid request: {found[0]}"
    shown = "; ".join(found[:_MAX_REPORTED])
    more = f"; and {len(found) - _MAX_REPORTED} more" if len(found) > _MAX_REPORTED else ""
    return f"{len(found)} validation errors: {shown}{more}"
