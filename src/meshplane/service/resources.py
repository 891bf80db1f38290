"""Create, describe, update, delete and list the seven App Mesh kinds, with App Mesh's rules.

Generic over :class:`~meshplane.model.kinds.Kind`: a virtual node and a gateway
route go through the same code, and differ only by the rules the model declares
for them. Every write happens in one store transaction that first checks
everything (shape, semantic rules, references, quotas, idempotency) and only then
writes, so a rejection changes nothing.

clientToken records are short-lived, as App Mesh's are: a retry inside the
window (``client_token_ttl``) replays the first result, an older token is a new
request, and each write that records a token prunes the expired records so the
table stays as small as the window. A token belongs to the principal that sent it
(``caller``), as App Mesh scopes idempotency to the caller: another principal's
same token is another request. Each principal keeps at most
``tokens_per_principal`` records, its oldest forgotten first, so one caller
writing in a loop cannot evict everybody else's retries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from meshplane.kit.clock import Clock, IdFactory
from meshplane.model import (
    apimodel,
    errors,
    extensions,
    kinds,
    problems,
    references,
    rules,
    validation,
)
from meshplane.model.kinds import Kind, ResourceKey
from meshplane.model.snapshot import Resource
from meshplane.service import extending, pagination, ports, views
from meshplane.service.quotas import QuotaGuard
from meshplane.settings import (
    DEFAULT_CLIENT_TOKEN_TTL,
    DEFAULT_CLIENT_TOKENS_PER_PRINCIPAL,
    Quotas,
)
from meshplane.store.protocols import ReadTransaction, Store, WriteTransaction
from meshplane.store.records import Record, Tag

MAX_TAGS = 50


@dataclasses.dataclass(frozen=True)
class Account:
    """Who owns what: the region and 12-digit account id written into ARNs and owners."""

    region: str
    account_id: str


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def not_found(key: ResourceKey, account_id: str) -> errors.NotFoundException:
    """App Mesh's wording for a missing resource."""
    kind = kinds.BY_KEY[key.kind]
    if kind.is_mesh:
        return errors.NotFoundException(
            f"Mesh with name {key.name} is not present for account {account_id}"
        )
    where = f"mesh {key.mesh}"
    if kind.parent:
        where = f"{kinds.BY_KEY[kind.parent].title} {key.parent} in {where}"
    return errors.NotFoundException(
        f"{kind.title} with name {key.name} is not present under {where} for account {account_id}"
    )


class MeshService:
    """The domain operations behind every front door."""

    def __init__(
        self,
        store: Store,
        account: Account,
        quotas: Quotas,
        clock: Clock,
        ids: IdFactory,
        *,
        client_token_ttl: float = DEFAULT_CLIENT_TOKEN_TTL,
        tokens_per_principal: int = DEFAULT_CLIENT_TOKENS_PER_PRINCIPAL,
        tokens: pagination.Tokens | None = None,
    ) -> None:
        """Wire the store, account, quotas, injected clock and ids, and the token window.

        ``tokens`` signs ``nextToken`` values (with the data dir's key; a fresh one if none).
        """
        self.store = store
        self.account = account
        self.quotas = QuotaGuard(quotas)
        self._clock = clock
        self._ids = ids
        self._token_ttl = client_token_ttl
        self._tokens_per_principal = tokens_per_principal
        self._tokens = tokens or pagination.Tokens()

    # -- reads -------------------------------------------------------------------------------

    def describe(
        self, kind: Kind, mesh: str, name: str, *, parent: str = "", mesh_owner: str | None = None
    ) -> dict[str, Any]:
        """One resource as ``XxxData``."""
        self._check_owner(mesh_owner)
        key = ResourceKey.of(kind, mesh, name, parent)
        with self.store.read() as tx:
            record = self._existing(tx, key)
            return views.data(record.resource)

    def list_refs(
        self,
        kind: Kind,
        mesh: str = "",
        *,
        parent: str = "",
        limit: int | None = None,
        next_token: str | None = None,
        mesh_owner: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``XxxRef`` items and the token for the next page, if any."""
        self._check_owner(mesh_owner)
        page = pagination.check_limit(limit)
        scope = f"{kind.key}/{mesh}/{parent}"
        after = self._tokens.decode(scope, next_token)
        with self.store.read() as tx:
            if not kind.is_mesh:
                self._require_scope(tx, ResourceKey.of(kind, mesh, "-", parent))
            rows = tx.list_records(
                kind.key, None if kind.is_mesh else mesh, parent, after, page + 1
            )
        result: dict[str, Any] = {kind.list_key: [views.ref(r.resource) for r in rows[:page]]}
        if len(rows) > page:
            result["nextToken"] = self._tokens.encode(scope, rows[page - 1].seq)
        return result

    # -- writes ------------------------------------------------------------------------------

    def create(
        self,
        kind: Kind,
        mesh: str,
        name: str,
        spec: Mapping[str, Any] | None,
        *,
        parent: str = "",
        tags: Sequence[Mapping[str, str]] | None = None,
        client_token: str | None = None,
        mesh_owner: str | None = None,
        caller: str = "",
    ) -> dict[str, Any]:
        """Create a resource; a replay with the same clientToken returns the first result.

        ``caller`` names the principal whose clientToken it is (empty without auth).
        """
        self._check_owner(mesh_owner)
        key = ResourceKey.of(kind, mesh if not kind.is_mesh else name, name, parent)
        body = dict(spec or {})
        tag_list = list(tags or [])
        self._check_input(kind, key, body, tags=tag_list)
        # Only at create: a name that exists already stays usable whatever it holds.
        unreachable = [problems.api_line(p) for p in rules.name(key.name, kind.name_member)]
        if unreachable:
            raise errors.BadRequestException(validation.summarize(unreachable))
        operation = f"Create{kind.title}"
        digest = _digest(dataclasses.astuple(key), body, tag_list)
        with self.store.transaction() as tx:
            replay = self._replay(tx, caller, operation, client_token, digest)
            if replay is not None:
                return replay
            self._require_scope(tx, key)
            if tx.get(key) is not None:
                raise errors.ConflictException(
                    f"{key.describe()} already exists; choose another name or update it"
                )
            self.quotas.check_create(tx, key, body)
            self._check_links(tx, key, body)
            tags_by_key = {t.key: t.value for t in _dedupe_tags(tag_list)}
            extending.check(tx, key, tags_by_key)
            now = self._clock()
            resource = Resource(
                key=key,
                arn=kinds.arn(self.account.region, self.account.account_id, key),
                uid=self._ids(),
                version=1,
                created_at=now,
                updated_at=now,
                spec=body,
                owner=self.account.account_id,
                extensions=extensions.of(tags_by_key.items()),
            )
            tx.insert(resource, _dedupe_tags(tag_list))
            tx.set_refs(key, [r.target for r in references.of(key, body)])
            result = views.data(resource)
            self._remember(tx, caller, operation, client_token, digest, result)
            return result

    def update(
        self,
        kind: Kind,
        mesh: str,
        name: str,
        spec: Mapping[str, Any] | None,
        *,
        parent: str = "",
        client_token: str | None = None,
        mesh_owner: str | None = None,
        caller: str = "",
    ) -> dict[str, Any]:
        """Replace a resource's spec; its version goes up by exactly one."""
        self._check_owner(mesh_owner)
        key = ResourceKey.of(kind, mesh, name, parent)
        body = dict(spec or {})
        self._check_input(kind, key, body, tags=[])
        operation = f"Update{kind.title}"
        digest = _digest(dataclasses.astuple(key), body)
        with self.store.transaction() as tx:
            replay = self._replay(tx, caller, operation, client_token, digest)
            if replay is not None:
                return replay
            record = self._existing(tx, key)
            self.quotas.check_update(key, body)
            self._check_links(tx, key, body)
            resource = dataclasses.replace(
                record.resource,
                spec=body,
                version=record.resource.version + 1,
                updated_at=max(self._clock(), record.resource.updated_at),
            )
            tx.replace(resource)
            tx.set_refs(key, [r.target for r in references.of(key, body)])
            result = views.data(resource)
            self._remember(tx, caller, operation, client_token, digest, result)
            return result

    def delete(
        self, kind: Kind, mesh: str, name: str, *, parent: str = "", mesh_owner: str | None = None
    ) -> dict[str, Any]:
        """Delete a resource nothing depends on; the response shows it ``DELETED``."""
        self._check_owner(mesh_owner)
        key = ResourceKey.of(kind, mesh, name, parent)
        with self.store.transaction() as tx:
            record = self._existing(tx, key)
            self._check_unused(tx, key)
            tx.delete(key)
            return views.data(record.resource, status="DELETED")

    # -- checks ------------------------------------------------------------------------------

    def _check_owner(self, mesh_owner: str | None) -> None:
        check_owner(self.account.account_id, mesh_owner)

    def _check_input(
        self, kind: Kind, key: ResourceKey, spec: Mapping[str, Any], *, tags: list[Any]
    ) -> None:
        check_input(kind, key.name, spec, tags=tags)

    def _existing(self, tx: ReadTransaction, key: ResourceKey) -> Record:
        """The stored resource at ``key``; NotFound naming the missing parent, else the resource."""
        record = tx.get(key)
        if record is None:
            self._require_scope(tx, key)
            raise not_found(key, self.account.account_id)
        return record

    def _require_scope(self, tx: ReadTransaction, key: ResourceKey) -> None:
        """NotFound for a missing mesh, router or gateway that the request lives under."""
        kind = kinds.BY_KEY[key.kind]
        if kind.is_mesh:
            return
        mesh = ResourceKey.of(kinds.MESH, key.mesh, key.mesh)
        if tx.get(mesh) is None:
            raise not_found(mesh, self.account.account_id)
        if kind.parent:
            parent = ResourceKey(kind.parent, key.mesh, "", key.parent)
            if tx.get(parent) is None:
                raise not_found(parent, self.account.account_id)

    def _check_links(self, tx: ReadTransaction, key: ResourceKey, spec: Mapping[str, Any]) -> None:
        for reference in references.of(key, spec):
            if tx.get(reference.target) is None:
                target = kinds.BY_KEY[reference.target.kind].title
                raise errors.NotFoundException(
                    f"{reference.field}: {target} with name {reference.target.name} is not "
                    f"present under mesh {key.mesh}; create it first"
                )
        ports.check(tx, key, spec)

    def _check_unused(self, tx: ReadTransaction, key: ResourceKey) -> None:
        kind = kinds.BY_KEY[key.kind]
        what = f"{kind.title} with name {key.name}"
        if kind.is_mesh:
            members = tx.count_in_mesh(key.mesh, exclude_kind="mesh")
            if members:
                raise errors.ResourceInUseException(
                    f"Mesh with name {key.name} cannot be deleted because it still contains "
                    f"{members} resource(s); delete its virtual services, routes, routers, "
                    "gateway routes, gateways and nodes first"
                )
            return
        children = {"virtualRouter": "route", "virtualGateway": "gatewayRoute"}.get(kind.key)
        if children and tx.count(children, key.mesh, key.name):
            noun = "routes" if children == "route" else "gateway routes"
            raise errors.ResourceInUseException(
                f"{what} cannot be deleted because it has {noun}; delete them first"
            )
        users = tx.referrers(key)
        if not users:
            return
        routes = [u for u in users if u.kind == "route"]
        services = [u for u in users if u.kind == "virtualService"]
        gateway_routes = [u for u in users if u.kind == "gatewayRoute"]
        if routes:
            listed = ", ".join(f"{u.parent}/{u.name}" for u in routes)
            reason = f"it is the target of one or more routes: {listed}"
        elif services:
            reason = f"it is a VirtualService provider: {', '.join(u.name for u in services)}"
        else:
            listed = ", ".join(f"{u.parent}/{u.name}" for u in gateway_routes)
            reason = f"it is referenced by gateway routes: {listed}"
        raise errors.ResourceInUseException(f"{what} cannot be deleted because {reason}")

    # -- idempotency -------------------------------------------------------------------------

    def _replay(
        self, tx: ReadTransaction, caller: str, operation: str, token: str | None, digest: str
    ) -> dict[str, Any] | None:
        if token is None:
            return None
        seen = tx.token(caller, operation, token, newer_than=self._clock() - self._token_ttl)
        if seen is None:
            return None
        if seen[0] != digest:
            raise errors.ConflictException(
                f"clientToken {token} was already used for a different {operation} request; "
                "use a new token for a new request"
            )
        result: dict[str, Any] = seen[1]
        return result

    def _remember(
        self,
        tx: WriteTransaction,
        caller: str,
        operation: str,
        token: str | None,
        digest: str,
        result: Any,
    ) -> None:
        if token is not None:
            now = self._clock()
            # Pruning here bounds the table by the tokens of one window and each caller's
            # by its cap; the age and (principal, age) indexes make both short range deletes.
            tx.forget_tokens(not_newer_than=now - self._token_ttl)
            tx.remember_token(caller, operation, token, digest, result, at=now)
            tx.trim_tokens(caller, keep=self._tokens_per_principal)


def _dedupe_tags(tags: Sequence[Mapping[str, str]]) -> list[Tag]:
    """One value per key; the last one given wins (as TagResource does)."""
    by_key: dict[str, str] = {}
    for tag in tags:
        by_key[tag["key"]] = tag["value"]
    return [Tag(k, v) for k, v in by_key.items()]


def check_owner(account_id: str, mesh_owner: str | None) -> None:
    """NotFound for a ``meshOwner`` other than the served account (the first check of a write)."""
    # One account owns everything here: another owner's mesh is simply not visible.
    if mesh_owner is not None and mesh_owner != account_id:
        raise errors.NotFoundException(
            f"meshOwner {mesh_owner}: no mesh is shared with this account; meshplane "
            f"serves account {account_id} (omit meshOwner or pass it)"
        )


def check_input(kind: Kind, name: str, spec: Mapping[str, Any], *, tags: list[Any]) -> None:
    """A write's name, tags and spec against the model's shapes and the spec rules.

    Needs no store, so a large request is checked in another process before the
    server parses it (:mod:`meshplane.api.screening`).
    """
    name_shape = "ServiceName" if kind is kinds.VIRTUAL_SERVICE else "ResourceName"
    # Tags first; more than 50 is a BadRequest naming ``tags`` (Create* does not declare
    # TooManyTagsException, so the model's max is an ordinary validation error here).
    found = validation.problems(apimodel.shape("TagList"), tags, "tags") if tags else []
    found += validation.problems(apimodel.shape(name_shape), name, kind.name_member)
    found += validation.problems(apimodel.shape(f"{kind.title}Spec"), spec, "spec")
    if found:
        raise errors.BadRequestException(validation.summarize(found))
    broken = rules.problems(kind.key, spec)
    if broken:
        raise errors.BadRequestException(validation.summarize(broken))
