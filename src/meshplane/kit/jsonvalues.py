"""Words for JSON values in error messages, shared by every validator."""

from __future__ import annotations

from typing import Any


def type_name(value: Any) -> str:
    """The JSON type word users see in messages (``string``, ``list``, ``object``, …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
