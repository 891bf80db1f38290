"""Kubernetes label selectors, with App Mesh's reading of absent and empty ones.

One implementation for every reader: the manifest front door (a Mesh's
``namespaceSelector``, a VirtualGateway's ``namespaceSelector`` and
``gatewayRouteSelector``) and the local runtime (a VirtualNode's
``podSelector`` against a workload's labels). The semantics are Kubernetes'
(``metav1.LabelSelectorAsSelector``): every ``matchLabels`` pair and every
``matchExpressions`` entry must hold; ``In`` needs the key present with one of
the values, ``NotIn`` holds when the key is absent or has none of them,
``Exists``/``DoesNotExist`` look at the key only. An expression the API server
would refuse (no key, an unknown operator, ``In``/``NotIn`` without values)
selects nothing rather than raising: a selector never crashes its reader.

App Mesh adds one reading on top: an absent selector selects nothing, a
present but empty one (``{}``) everything (:func:`selects`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

T = TypeVar("T")


def _holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key"), expression.get("operator")
    values = set(expression.get("values") or [])
    if not isinstance(key, str) or operator not in OPERATORS:
        return False  # the API server refuses such an expression; select nothing
    present = key in labels
    if operator in ("In", "NotIn") and not values:
        return False  # "values: must be specified when operator is In or NotIn"
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not (present and labels[key] in values)
    if operator == "Exists":
        return present
    return not present


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every ``matchLabels`` pair and ``matchExpressions`` entry."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    return all(_holds(expression, labels) for expression in selector.get("matchExpressions") or [])


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """App Mesh's rule: an absent selector selects nothing, an empty one everything."""
    return selector is not None and matches(selector, labels)


def selecting(
    candidates: Iterable[T],
    selector_of: Callable[[T], Mapping[str, Any] | None],
    labels: Mapping[str, str],
) -> list[T]:
    """The candidates whose selector selects ``labels``, in the order given.

    The shared half of every designation (a namespace's Mesh, a GatewayRoute's
    VirtualGateway, a workload's VirtualNode): each caller decides what none or
    several mean and words it for its own front door.
    """
    return [item for item in candidates if selects(selector_of(item), labels)]


def meshes_for(
    meshes: Iterable[T],
    namespace_selector: Callable[[T], Mapping[str, Any] | None],
    namespace_labels: Mapping[str, str],
) -> list[T]:
    """Mesh designation: the Meshes whose ``namespaceSelector`` selects a namespace.

    Exactly one is the namespace's mesh; none or several leave its objects
    outside any mesh (the controller's webhook refused them, meshplane lets
    them wait). Used by the manifest front door and by the runtime's reading of
    manifest files.
    """
    return selecting(meshes, namespace_selector, namespace_labels)


def gateways_for(
    gateways: Iterable[T],
    namespace_selector: Callable[[T], Mapping[str, Any] | None],
    route_selector: Callable[[T], Mapping[str, Any] | None],
    namespace_labels: Mapping[str, str],
    route_labels: Mapping[str, str],
) -> list[T]:
    """Gateway designation: the VirtualGateways that select a GatewayRoute.

    A gateway selects the routes of the namespaces its ``namespaceSelector``
    selects, narrowed by its ``gatewayRouteSelector`` over the route's labels;
    an absent ``gatewayRouteSelector`` narrows nothing.
    """
    in_namespace = selecting(gateways, namespace_selector, namespace_labels)
    return selecting(in_namespace, lambda gateway: route_selector(gateway) or {}, route_labels)
