"""Kubernetes label selectors, with App Mesh's reading of absent and empty ones.

A Mesh's ``namespaceSelector`` or a VirtualGateway's selectors select nothing
when absent and everything when present but empty (``{}``); the caller decides
what absence means, this module evaluates a present selector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every ``matchLabels`` pair and ``matchExpressions`` entry."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """App Mesh's rule: an absent selector selects nothing, an empty one everything."""
    return selector is not None and matches(selector, labels)


def describe(selector: Mapping[str, Any] | None) -> str:
    """A selector in kubectl's words: ``mesh=demos``, ``<none>`` when absent."""
    if selector is None:
        return "<none>"
    parts = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        values = ",".join(expression.get("values") or [])
        parts.append(f"{expression['key']} {expression['operator']} ({values})".replace(" ()", ""))
    return ",".join(parts) or "<all>"
