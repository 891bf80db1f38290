"""A small structural schema language for manifest documents, and its checker.

The v1beta2 CRDs are OpenAPI schemas generated from Go types; meshplane states
the same facts (field names, types, required members, enums, ranges) with the
four node types below and checks a parsed document against them. Every breach
is reported as ``(path, rule)`` so the caller can prefix the document index:
``spec.routes[0].httpRoute.action.weightedTargets[1].weight: value 150 is above
the maximum 100``. Unknown fields are errors, as they are for a strict apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from meshplane.kit.jsonvalues import type_name


@dataclasses.dataclass(frozen=True)
class Scalar:
    """A string, integer or boolean leaf with optional enum and bounds."""

    type: str
    """``string``, ``integer`` or ``boolean``."""
    enum: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None


@dataclasses.dataclass(frozen=True)
class ListOf:
    """A list whose items all follow ``item``."""

    item: Node
    low: int | None = None
    high: int | None = None


@dataclasses.dataclass(frozen=True)
class MapOf:
    """An object with free keys (labels, annotations) whose values follow ``value``."""

    value: Node


@dataclasses.dataclass(frozen=True)
class Struct:
    """An object with a closed set of fields; ``required`` names the mandatory ones."""

    fields: Mapping[str, Node]
    required: frozenset[str] = frozenset()
    open: bool = False
    """Accept unknown fields (used for parts meshplane keeps but does not interpret)."""


Node = Scalar | ListOf | MapOf | Struct

STRING = Scalar("string")
INTEGER = Scalar("integer")
BOOLEAN = Scalar("boolean")
ANY_OBJECT = Struct({}, open=True)


def string(*enum: str, low: int | None = None, high: int | None = None) -> Scalar:
    """A string leaf, optionally restricted to ``enum`` or a length range."""
    return Scalar("string", tuple(enum), low, high)


def integer(low: int | None = None, high: int | None = None) -> Scalar:
    """An integer leaf with an optional inclusive range."""
    return Scalar("integer", (), low, high)


def struct(required: tuple[str, ...] = (), **fields: Node) -> Struct:
    """A closed object; keyword names are the field names."""
    return Struct(fields, frozenset(required))


def join(path: str, member: str) -> str:
    """Extend a dotted field path."""
    return f"{path}.{member}" if path else member


def problems(node: Node, value: Any, path: str) -> list[tuple[str, str]]:
    """Every breach of ``node`` by ``value`` as ``(field path, rule)`` pairs, in document order."""
    found: list[tuple[str, str]] = []
    _walk(node, value, path, found)
    return found


def _walk(node: Node, value: Any, path: str, found: list[tuple[str, str]]) -> None:
    if isinstance(node, Struct):
        _struct(node, value, path, found)
    elif isinstance(node, ListOf):
        if not isinstance(value, list):
            found.append((path, f"must be a list, got {type_name(value)}"))
            return
        _bounds((node.low, node.high), len(value), path, "list length", found)
        for index, item in enumerate(value):
            _walk(node.item, item, f"{path}[{index}]", found)
    elif isinstance(node, MapOf):
        if not isinstance(value, dict):
            found.append((path, f"must be an object, got {type_name(value)}"))
            return
        for key, item in value.items():
            _walk(node.value, item, join(path, str(key)), found)
    else:
        _scalar(node, value, path, found)


def _struct(node: Struct, value: Any, path: str, found: list[tuple[str, str]]) -> None:
    if not isinstance(value, dict):
        found.append((path, f"must be an object, got {type_name(value)}"))
        return
    if not node.open:
        for name in value:
            if name not in node.fields:
                allowed = ", ".join(node.fields) or "none"
                found.append((join(path, str(name)), f"unknown field (allowed: {allowed})"))
    for name in sorted(node.required):
        if value.get(name) is None:
            found.append((join(path, name), "is required"))
    for name, child in node.fields.items():
        if value.get(name) is not None:
            _walk(child, value[name], join(path, name), found)


def _scalar(node: Scalar, value: Any, path: str, found: list[tuple[str, str]]) -> None:
    actual = type_name(value)
    if actual != node.type:
        article = "an" if node.type == "integer" else "a"
        found.append((path, f"must be {article} {node.type}, got {actual}"))
        return
    if node.enum and value not in node.enum:
        found.append((path, f"{value!r} is not one of {', '.join(node.enum)}"))
        return
    if node.type == "string":
        _bounds((node.low, node.high), len(value), path, "length", found)
    elif node.type == "integer":
        _bounds((node.low, node.high), value, path, "value", found)


def _bounds(
    limits: tuple[int | None, int | None], measure: int, path: str, what: str, found: list[Any]
) -> None:
    low, high = limits
    if low is not None and measure < low:
        found.append((path, f"{what} {measure} is below the minimum {low}"))
    if high is not None and measure > high:
        found.append((path, f"{what} {measure} is above the maximum {high}"))
