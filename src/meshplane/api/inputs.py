"""An operation's input from a request: URI and query members converted, body members parsed.

A pure function of the request's parts (no ``web.Request``), so that a large body
can be parsed in another process first (:mod:`meshplane.api.screening`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from meshplane.model import errors


def _convert_scalar(shape: Any, raw: str, member: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(raw)
        except ValueError as exc:
            raise errors.BadRequestException(
                f"Invalid request: {member}: {raw!r} is not an integer"
            ) from exc
    return raw


def parse(
    operation: Any, uri: Mapping[str, str], query: Mapping[str, str], raw: bytes
) -> dict[str, Any]:
    """The operation's input: ``uri`` (the matched path) and ``query`` members, body members.

    Runs on a worker thread for writes, and for large bodies in the screening process
    first: parsing a large body is the heavy part.
    """
    shape = operation.input_shape
    values: dict[str, Any] = {}
    body_members = []
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            values[name] = uri[wire]
        elif location == "querystring":
            if wire in query:
                values[name] = _convert_scalar(member, query[wire], name)
        else:
            body_members.append(name)
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting deeper than the parser's stack is malformed input too.
            raise errors.BadRequestException(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise errors.BadRequestException("The request body must be a JSON object")
        for name, value in body.items():
            if name not in body_members:
                raise errors.BadRequestException(
                    f"Invalid request: {name}: unknown field for {operation.name} "
                    f"(allowed: {', '.join(body_members) or 'none'})"
                )
            values[name] = value
    return values


def declares(operation: Any, error: type[errors.AppMeshError]) -> bool:
    """Whether the model lists ``error`` among the operation's errors."""
    return any(shape.name == error.code for shape in operation.error_shapes)
