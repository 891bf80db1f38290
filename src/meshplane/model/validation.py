"""Checks a JSON value against a shape of the service model: what botocore leaves to servers.

botocore validates types, ``min`` and unions on the client, but not ``max``,
enums or patterns, and raw HTTP clients skip it all. This walker enforces every
constraint the model states and reports each breach with its field path, e.g.
``spec.listeners[0].portMapping.port``, so the message names the field and the rule.
Rules the model cannot state live in :mod:`meshplane.model.rules`.

One constraint may map to a different error: a tag list over the model's max is,
in the model's own words, "more than 50 user tags", i.e. TooManyTagsException,
but only TagResource declares that error. There (``tag_limit_error=True``) it
wins over every other problem of the request; in Create* it is a validation
error like any other max, a BadRequest that names ``tags`` (botocore's model is
the contract: an operation answers only errors it declares).

Every string is also checked for lone UTF-16 surrogates (``"\ud800"`` is valid
JSON but not text: it cannot be stored, hashed or rendered as UTF-8).
"""

from __future__ import annotations

import re
from typing import Any

from meshplane.kit.jsonvalues import type_name
from meshplane.model import errors

_MAX_REPORTED = 10
_SURROGATE = re.compile("[\ud800-\udfff]")

# List shapes whose max is App Mesh's tag limit: breaking it is TooManyTagsException.
_TAG_LISTS = frozenset({"TagList"})


def _child(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


class _Walker:
    def __init__(self, tag_limit_error: bool) -> None:
        self.problems: list[str] = []
        self.too_many_tags: list[str] = []
        self.tag_limit_error = tag_limit_error

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
        high = shape.metadata.get("max")
        if (
            self.tag_limit_error
            and shape.name in _TAG_LISTS
            and high is not None
            and len(value) > high
        ):
            self.too_many_tags.append(
                f"{path or 'tags'}: {len(value)} tags in one request; a resource can carry at "
                f"most {high} and nothing was applied"
            )
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
        surrogate = _SURROGATE.search(value)
        if surrogate:
            self.fail(
                path,
                f"contains a lone UTF-16 surrogate (U+{ord(surrogate.group()):04X}) at "
                f"position {surrogate.start()}, which is not text",
            )
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


def problems(shape: Any, value: Any, path: str = "", *, tag_limit_error: bool = False) -> list[str]:
    """Every breach of ``shape``'s constraints by ``value``, as ``path: rule`` lines.

    With ``tag_limit_error`` (operations that declare it: TagResource), raises
    :class:`TooManyTagsException` instead when ``value`` carries a tag list longer
    than the model allows (App Mesh's answer to "more than 50 user tags").
    """
    walker = _Walker(tag_limit_error)
    walker.walk(shape, value, path)
    if walker.too_many_tags:
        raise errors.TooManyTagsException(walker.too_many_tags[0])
    return walker.problems


def check(shape: Any, value: Any, path: str = "", *, tag_limit_error: bool = False) -> None:
    """Raise :class:`BadRequestException` naming every breached field and rule.

    With ``tag_limit_error`` a tag list over its max raises
    :class:`TooManyTagsException` (see :func:`problems`).
    """
    found = problems(shape, value, path, tag_limit_error=tag_limit_error)
    if found:
        raise errors.BadRequestException(summarize(found))


def summarize(found: list[str]) -> str:
    """One message for one or many problems, as App Mesh users read them."""
    if len(found) == 1:
        return f"Invalid request: {found[0]}"
    shown = "; ".join(found[:_MAX_REPORTED])
    more = f"; and {len(found) - _MAX_REPORTED} more" if len(found) > _MAX_REPORTED else ""
    return f"{len(found)} validation errors: {shown}{more}"
