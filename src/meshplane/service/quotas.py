"""App Mesh's service quotas, enforced on create (and on update for backends).

The defaults are App Mesh's (``appmesh-api.md`` §10) and every one is adjustable
through :class:`meshplane.settings.Quotas`, as they were through Service Quotas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.model import errors
from meshplane.model.kinds import ResourceKey
from meshplane.settings import Quotas
from meshplane.store.protocols import ReadTransaction

# kind -> (quota field, words for the message, scope: "account" | "mesh" | "parent")
_LIMITS = {
    "mesh": ("meshes", "meshes", "account"),
    "virtualNode": ("virtual_nodes_per_mesh", "virtual nodes", "mesh"),
    "virtualRouter": ("virtual_routers_per_mesh", "virtual routers", "mesh"),
    "virtualService": ("virtual_services_per_mesh", "virtual services", "mesh"),
    "virtualGateway": ("virtual_gateways_per_mesh", "virtual gateways", "mesh"),
    "route": ("routes_per_virtual_router", "routes", "parent"),
    "gatewayRoute": ("gateway_routes_per_virtual_gateway", "gateway routes", "parent"),
}


class QuotaGuard:
    """Raises LimitExceededException before a write would break a quota."""

    def __init__(self, quotas: Quotas) -> None:
        """Hold the quotas in force."""
        self.quotas = quotas

    def check_create(self, tx: ReadTransaction, key: ResourceKey, spec: Mapping[str, Any]) -> None:
        """One more resource of ``key.kind`` must fit in its scope."""
        field, words, scope = _LIMITS[key.kind]
        limit = getattr(self.quotas, field)
        if scope == "account":
            count, where = tx.count(key.kind, None), "this account"
        elif scope == "mesh":
            count, where = tx.count(key.kind, key.mesh), f"mesh {key.mesh}"
        else:
            count, where = tx.count(key.kind, key.mesh, key.parent), f"{key.parent}"
        if count >= limit:
            raise errors.LimitExceededException(
                f"{words} in {where}: the limit of {limit} is reached; delete some or raise "
                f"the quota (meshplane setting quotas.{field})"
            )
        self.check_update(key, spec)

    def check_update(self, key: ResourceKey, spec: Mapping[str, Any]) -> None:
        """A virtual node's backends must fit in the backends quota."""
        if key.kind != "virtualNode":
            return
        backends = len(spec.get("backends") or [])
        limit = self.quotas.backends_per_virtual_node
        if backends > limit:
            raise errors.LimitExceededException(
                f"spec.backends: {backends} backends exceed the limit of {limit} per virtual "
                "node (meshplane setting quotas.backends_per_virtual_node)"
            )
