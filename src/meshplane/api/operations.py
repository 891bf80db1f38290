"""The 38 App Mesh operations, each bound to a domain call.

Resource operations are generic: ``CreateVirtualNode`` is "create" of the
``virtualNode`` kind, so one function per verb serves all seven kinds. The three
tag operations go to :class:`~meshplane.service.tagging.Tagging`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from meshplane.model import kinds
from meshplane.model.kinds import Kind
from meshplane.service.discovery import Discovery
from meshplane.service.proxycredentials import ProxyCredentials
from meshplane.service.resources import MeshService
from meshplane.service.tagging import Tagging

Input = Mapping[str, Any]
Output = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Services:
    """What the operations call."""

    resources: MeshService
    tagging: Tagging
    discovery: Discovery
    credentials: ProxyCredentials | None = None
    """Issues and checks proxy credentials (``/meshplane/v1/proxyCredentials``, endpoints)."""
    caller: str = ""
    """The principal of the request being served (its clientTokens are its own); the server
    gives each request a copy naming its signer, empty without auth."""


Handler = Callable[[Services, Input], Output]


def _scope(kind: Kind, request: Input) -> dict[str, Any]:
    """The keyword arguments every resource operation takes: parent and meshOwner."""
    parent = request.get(kind.parent_member, "") if kind.parent_member else ""
    return {"parent": parent, "mesh_owner": request.get("meshOwner")}


def _create(kind: Kind) -> Handler:
    def call(services: Services, request: Input) -> Output:
        data = services.resources.create(
            kind,
            request.get("meshName", ""),
            request[kind.name_member],
            request.get("spec"),
            tags=request.get("tags"),
            client_token=request.get("clientToken"),
            caller=services.caller,
            **_scope(kind, request),
        )
        return {kind.key: data}

    return call


def _describe(kind: Kind) -> Handler:
    def call(services: Services, request: Input) -> Output:
        name = request[kind.name_member]
        data = services.resources.describe(kind, request["meshName"], name, **_scope(kind, request))
        return {kind.key: data}

    return call


def _update(kind: Kind) -> Handler:
    def call(services: Services, request: Input) -> Output:
        data = services.resources.update(
            kind,
            request["meshName"],
            request[kind.name_member],
            request.get("spec"),
            client_token=request.get("clientToken"),
            caller=services.caller,
            **_scope(kind, request),
        )
        return {kind.key: data}

    return call


def _delete(kind: Kind) -> Handler:
    def call(services: Services, request: Input) -> Output:
        name = request[kind.name_member]
        data = services.resources.delete(kind, request["meshName"], name, **_scope(kind, request))
        return {kind.key: data}

    return call


def _list(kind: Kind) -> Handler:
    def call(services: Services, request: Input) -> Output:
        return services.resources.list_refs(
            kind,
            request.get("meshName", ""),
            limit=request.get("limit"),
            next_token=request.get("nextToken"),
            **_scope(kind, request),
        )

    return call


def _tag(services: Services, request: Input) -> Output:
    services.tagging.tag(request["resourceArn"], request["tags"])
    return {}


def _untag(services: Services, request: Input) -> Output:
    services.tagging.untag(request["resourceArn"], request["tagKeys"])
    return {}


def _list_tags(services: Services, request: Input) -> Output:
    return services.tagging.list_tags(
        request["resourceArn"], request.get("limit"), request.get("nextToken")
    )


_VERBS: dict[str, Callable[[Kind], Handler]] = {
    "Create": _create,
    "Describe": _describe,
    "Update": _update,
    "Delete": _delete,
    "List": _list,
}


def _operation_name(verb: str, kind: Kind) -> str:
    noun = kind.list_key if verb == "List" else kind.key
    return verb + noun[0].upper() + noun[1:]


def handlers(operation_names: list[str]) -> dict[str, Handler]:
    """A handler for every operation name; raises if the model has one we cannot serve."""
    table: dict[str, Handler] = {
        "TagResource": _tag,
        "UntagResource": _untag,
        "ListTagsForResource": _list_tags,
    }
    for kind in kinds.ALL:
        for verb, make in _VERBS.items():
            table[_operation_name(verb, kind)] = make(kind)
    missing = sorted(set(operation_names) - set(table))
    if missing:
        raise LookupError(f"no handler for App Mesh operations {', '.join(missing)}")
    return {name: table[name] for name in operation_names}
