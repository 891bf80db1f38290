"""Reading App Mesh wire JSON into typed values: the few parsers the generated specs call.

:mod:`meshplane.model.specs_generated` turns every member of a spec shape into
one call of these functions, so the rules of reading live here once: a member
that is ``null`` counts as absent (as :mod:`meshplane.model.validation` treats
it), booleans are not integers, and a member the shape does not name is
refused rather than dropped — specs in the store are already validated, so a
refusal means the model and the data disagree, which must not pass silently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from meshplane.kit.jsonvalues import type_name

T = TypeVar("T")

Parse = Callable[[object, str], T]
"""A parser of one wire value; the ``str`` is the value's path, for the error message."""


class SpecError(ValueError):
    """A wire value does not have the shape the service model gives it."""

    def __init__(self, path: str, problem: str) -> None:
        """``path`` names the value (``spec.listeners[0].portMapping``), ``problem`` the breach."""
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def structure(value: object, path: str, members: Collection[str]) -> Mapping[str, object]:
    """``value`` as a JSON object whose keys are all among the shape's wire ``members``."""
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, got {type_name(value)}")
    unknown = sorted(str(name) for name in value if name not in members)
    if unknown:
        raise SpecError(path, f"unknown member {', '.join(unknown)}")
    return value


def required(data: Mapping[str, object], name: str, path: str, parse: Parse[T]) -> T:
    """The parsed member ``name``, which the shape requires."""
    value = data.get(name)
    if value is None:
        raise SpecError(f"{path}.{name}", "is required")
    return parse(value, f"{path}.{name}")


def optional(data: Mapping[str, object], name: str, path: str, parse: Parse[T]) -> T | None:
    """The parsed member ``name``, or ``None`` when it is absent (or ``null``)."""
    value = data.get(name)
    return None if value is None else parse(value, f"{path}.{name}")


def string(value: object, path: str) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise SpecError(path, f"must be a string, got {type_name(value)}")
    return value


def integer(value: object, path: str) -> int:
    """A JSON integer (the model's ``integer`` and ``long``); ``true`` is not one."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(path, f"must be an integer, got {type_name(value)}")
    return value


def boolean(value: object, path: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise SpecError(path, f"must be a boolean, got {type_name(value)}")
    return value


def choice(value: object, path: str, allowed: Collection[str]) -> str:
    """A string among an enum's ``allowed`` values."""
    text = string(value, path)
    if text not in allowed:
        raise SpecError(path, f"must be one of {', '.join(allowed)}, got {text}")
    return text


def items(parse: Parse[T]) -> Parse[tuple[T, ...]]:
    """A parser of a JSON list whose every item ``parse`` reads, giving a tuple."""

    def parse_list(value: object, path: str) -> tuple[T, ...]:
        if not isinstance(value, list | tuple):
            raise SpecError(path, f"must be a list, got {type_name(value)}")
        return tuple(parse(item, f"{path}[{index}]") for index, item in enumerate(value))

    return parse_list
