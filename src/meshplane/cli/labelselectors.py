"""``-l`` strings, kubectl's equality-based label selectors, as selector documents.

``get -l app=web,tier!=db,canary,!legacy`` is parsed into the same
``matchLabels``/``matchExpressions`` document a manifest carries, so
:mod:`meshplane.model.selectors` stays the one place that decides what matches.
Set-based requirements (``env in (a,b)``) are refused with one line rather than
read wrongly.
"""

from __future__ import annotations

import re
from typing import Any

_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$")


class Invalid(ValueError):
    """A selector string this parser refuses; the message is one line."""


def _key(key: str, selector: str) -> str:
    if not _KEY.match(key):
        raise Invalid(f'unable to parse requirement: invalid label key "{key}" in "{selector}"')
    return key


def _value(value: str, selector: str) -> str:
    if not _VALUE.match(value):
        raise Invalid(
            f'unable to parse requirement: invalid label value "{value}" in "{selector}" '
            "(only KEY=VALUE, KEY==VALUE, KEY!=VALUE, KEY and !KEY are supported)"
        )
    return value


def parse(selector: str) -> dict[str, Any]:
    """A selector document for ``KEY=VALUE``, ``KEY!=VALUE``, ``KEY``, ``!KEY`` joined by ','."""
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for requirement in (part.strip() for part in selector.split(",")):
        if "!=" in requirement:
            key, value = requirement.split("!=", 1)
            expressions.append(
                {
                    "key": _key(key.strip(), selector),
                    "operator": "NotIn",
                    "values": [_value(value.strip(), selector)],
                }
            )
        elif "=" in requirement:
            key, value = (
                requirement.split("==", 1) if "==" in requirement else requirement.split("=", 1)
            )
            labels[_key(key.strip(), selector)] = _value(value.strip(), selector)
        elif requirement.startswith("!"):
            expressions.append(
                {"key": _key(requirement[1:].strip(), selector), "operator": "DoesNotExist"}
            )
        else:
            expressions.append({"key": _key(requirement, selector), "operator": "Exists"})
    return {"matchLabels": labels, "matchExpressions": expressions}
