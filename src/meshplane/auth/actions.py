"""The one table from an HTTP route to the action it performs and the resource it touches.

Every route the API serves has exactly one row here, keyed by (method, path template as
registered with the router). The authorization middleware looks the matched route up and
asks the caller's policy about ``(action, resource ARN)``; a route without a row is
refused (fail closed), and a test checks that every route the application serves has one.

- The 38 App Mesh operations are derived from botocore's model: the action is
  ``appmesh:<OperationName>`` and the resource is the ARN of the App Mesh resource the
  operation touches, built from its ``…Name`` members (URI or body); list operations get
  their parent's ARN (``ListRoutes`` → the virtual router), ``ListMeshes`` gets
  ``mesh/*``, the tagging operations the ``resourceArn`` they name. ARNs always carry the
  served region and account: ``meshOwner`` or a foreign ``resourceArn`` cannot move a
  request out from under a Deny.
- meshplane's own endpoints under ``/meshplane/v1`` are the :data:`EXTENSIONS` rows:
  ``meshplane:<Action>`` and an ARN template filled from the route's path parameters
  plus ``{region}`` and ``{account}``. **To protect a new endpoint, add one row.**
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from meshplane.model import apimodel, kinds

OPEN = "open"
CONSOLE = "console"
"""The web console's pages: a browser cannot SigV4-sign, so the console checks its own
signed session cookie and same-origin rule (``meshplane.console``); the gate still checks
the Host header."""
"""The action of a route that needs no signature (``GET /healthz``)."""
AUTHENTICATED = "authenticated"
"""The action of the catch-all: any signed caller may hear that nothing is served there."""

XDS_STREAM = "appmesh:StreamAggregatedResources"
"""Not a route: what a SigV4-signed ADS stream needs on its node's ARN (App Mesh's own IAM
action for Envoy; :mod:`meshplane.auth.streams`, documented beside the route table)."""

P = "/meshplane/v1"
MESHPLANE_ARN = "arn:aws:meshplane:{region}:{account}:"
APPMESH_ARN = "arn:aws:appmesh:{region}:{account}:"


@dataclasses.dataclass(frozen=True)
class Target:
    """What a resource ARN may be built from: the matched request's parameters."""

    region: str
    account: str
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row: the action a route performs and how its resource ARN is built."""

    method: str
    path: str
    action: str
    resource: str
    """The ARN template shown in the README table."""
    build: Callable[[Target], str]
    needs_body: bool = False
    """Whether the ARN names a body member (``CreateMesh``'s ``meshName``): only then is the
    body parsed before the handler, so a 3 MB manifest is not parsed twice."""

    def resource_of(self, target: Target) -> str:
        """The resource ARN for one request on this route."""
        return self.build(target)


def extension(method: str, path: str, action: str, resource: str) -> Rule:
    """A row for a ``/meshplane/v1`` route: ``resource`` is a template of path parameters."""

    def build(target: Target) -> str:
        return resource.format(region=target.region, account=target.account, **target.path)

    return Rule(method, path, action, resource, build)


def _body_node_arn(target: Target) -> str:
    """The App Mesh ARN of the body's ``nodeId`` (``mesh/<mesh>/virtualNode/<vn>``).

    A missing or non-string ``nodeId`` yields an ARN no policy names but ``*``; the handler
    then refuses the request with a 400 naming the field.
    """
    node = target.body.get("nodeId")
    name = node if isinstance(node, str) else ""
    return f"arn:aws:appmesh:{target.region}:{target.account}:{name}"


EXTENSIONS: tuple[Rule, ...] = (
    extension("GET", "/healthz", OPEN, "-"),
    # Prometheus cannot sign either: /metrics holds counts by operation, type and state only
    # (no resource names, nothing secret), like /healthz.
    extension("GET", "/metrics", OPEN, "-"),
    extension("GET", "/console", CONSOLE, "-"),
    extension("GET", "/console/", CONSOLE, "-"),
    extension("GET", "/console/meshes/{mesh}", CONSOLE, "-"),
    # The console's one write checks the session principal's policy for appmesh:UpdateRoute.
    extension("POST", "/console/meshes/{mesh}/weights", CONSOLE, "-"),
    extension("GET", "/console/events", CONSOLE, "-"),
    extension("GET", "/console/login", CONSOLE, "-"),
    extension("POST", "/console/login", CONSOLE, "-"),
    extension("POST", "/console/logout", CONSOLE, "-"),
    extension("GET", "/console/static/{name}", CONSOLE, "-"),
    # The manifest front door: it creates App Mesh resources itself, so ApplyManifests is
    # an administrator's power (grant appmesh:* on the same meshes to mean the same).
    extension(
        "POST", f"{P}/manifests/apply", "meshplane:ApplyManifests", MESHPLANE_ARN + "manifests"
    ),
    extension(
        "POST", f"{P}/manifests/delete", "meshplane:DeleteManifests", MESHPLANE_ARN + "manifests"
    ),
    # apply --dry-run asks it (reads only): which API-created resources an apply would adopt.
    extension(
        "POST", f"{P}/manifests/adoptions", "meshplane:PlanManifests", MESHPLANE_ARN + "manifests"
    ),
    extension(
        "GET", f"{P}/objects/{{kind}}", "meshplane:ListObjects", MESHPLANE_ARN + "objects/{kind}"
    ),
    extension(
        "GET",
        f"{P}/objects/{{kind}}/{{name}}",
        "meshplane:DescribeObject",
        MESHPLANE_ARN + "objects/{kind}/{name}",
    ),
    extension(
        "DELETE",
        f"{P}/objects/{{kind}}/{{name}}",
        "meshplane:DeleteObject",
        MESHPLANE_ARN + "objects/{kind}/{name}",
    ),
    extension(
        "POST",
        f"{P}/namespaces/{{name}}/labels",
        "meshplane:LabelNamespace",
        MESHPLANE_ARN + "namespace/{name}",
    ),
    # `get events`: every manifest object's recent events; `get -w`: the store's revision.
    extension("GET", f"{P}/events", "meshplane:ListEvents", MESHPLANE_ARN + "events"),
    extension("GET", f"{P}/changes", "meshplane:WatchChanges", MESHPLANE_ARN + "changes"),
    # Service discovery: the App Mesh resources the endpoints belong to.
    extension(
        "PUT",
        f"{P}/meshes/{{mesh}}/virtualNodes/{{node}}/endpoints",
        "meshplane:RegisterEndpoints",
        APPMESH_ARN + "mesh/{mesh}/virtualNode/{node}",
    ),
    extension(
        "GET",
        f"{P}/meshes/{{mesh}}/endpoints",
        "meshplane:ListEndpoints",
        APPMESH_ARN + "mesh/{mesh}",
    ),
    # A sidecar's xDS credential: the node it is for is named in the body (``nodeId``).
    Rule(
        "POST",
        f"{P}/proxyCredentials",
        "meshplane:IssueProxyCredential",
        APPMESH_ARN + "{nodeId}",
        _body_node_arn,
        needs_body=True,
    ),
    extension("GET", f"{P}/proxies", "meshplane:ListProxies", MESHPLANE_ARN + "proxy/*"),
    # What one proxy was sent (secrets' SANs and expiry, never their keys).
    extension("GET", f"{P}/proxies/config", "meshplane:GetProxyConfig", MESHPLANE_ARN + "proxy/*"),
    # Envoy's own config dump, read from a local sidecar's admin socket (keys redacted).
    extension(
        "GET", f"{P}/proxies/envoyConfig", "meshplane:GetEnvoyConfig", MESHPLANE_ARN + "proxy/*"
    ),
    # One proxy's Envoy stats (counters, gauges, histograms: cluster and listener names).
    extension("GET", f"{P}/proxies/stats", "meshplane:GetProxyStats", MESHPLANE_ARN + "proxy/*"),
    # Principals: creating one hands out a key, so it is the administrator's alone by default.
    extension(
        "GET", f"{P}/credentials", "meshplane:ListCredentials", MESHPLANE_ARN + "principal/*"
    ),
    extension(
        "POST",
        f"{P}/credentials/{{name}}",
        "meshplane:CreateCredentials",
        MESHPLANE_ARN + "principal/{name}",
    ),
    extension(
        "DELETE",
        f"{P}/credentials/{{name}}",
        "meshplane:DeleteCredentials",
        MESHPLANE_ARN + "principal/{name}",
    ),
    extension("*", "/{tail}", AUTHENTICATED, "-"),
)


def _ordered_kinds(members: Mapping[str, Any]) -> list[kinds.Kind]:
    """The kinds an operation's ``…Name`` members name, outermost first."""
    named = [k for k in kinds.ALL if k.name_member in members]
    return sorted(named, key=lambda k: (not k.is_mesh, k.parent is not None))


def _appmesh_rule(name: str) -> Rule:
    operation = apimodel.operation(name)
    members = operation.input_shape.members
    method, path = operation.http["method"], operation.http["requestUri"]
    action = f"appmesh:{name}"
    if "resourceArn" in members:
        return Rule(method, path, action, "{resourceArn}", _tagged_resource)
    chain = _ordered_kinds(members)
    wires = {k.name_member: members[k.name_member].serialization for k in chain}

    def value(target: Target, member: str) -> str:
        if wires[member].get("location") == "uri":
            return target.path.get(wires[member].get("name", member), "")
        found = target.body.get(member)
        return found if isinstance(found, str) else ""

    def segments(values: Callable[[str], str]) -> str:
        if not chain:
            return "mesh/*"
        return "/".join(f"{k.key}/{values(k.name_member)}" for k in chain)

    template = APPMESH_ARN + segments(lambda member: "{" + member + "}")

    def build(target: Target) -> str:
        prefix = APPMESH_ARN.format(region=target.region, account=target.account)
        return prefix + segments(lambda member: value(target, member))

    body_named = any(wire.get("location") != "uri" for wire in wires.values())
    return Rule(method, path, action, template, build, needs_body=body_named)


def _tagged_resource(target: Target) -> str:
    raw = target.query.get("resourceArn", "")
    parsed = kinds.parse_arn(raw)
    if parsed is None:
        return raw  # not an App Mesh ARN: the operation answers 400/404, policies see it as sent
    return kinds.arn(target.region, target.account, parsed[2])


def _table() -> dict[tuple[str, str], Rule]:
    rules = [_appmesh_rule(name) for name in apimodel.operation_names()] + list(EXTENSIONS)
    table: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        key = (rule.method, rule.path)
        if key in table:
            raise ValueError(f"two authorization rules for {rule.method} {rule.path}")
        table[key] = rule
    return table


RULES: dict[tuple[str, str], Rule] = _table()
"""Every row, keyed by (method, path template)."""


def rule_for(method: str, path: str) -> Rule | None:
    """The row for a matched route (HEAD is authorised as the GET it mirrors)."""
    return RULES.get(("GET" if method == "HEAD" else method, path))
