"""The API's front gate: browser protections, SigV4 authentication, policy authorization.

Two aiohttp middlewares run before every handler, in this order, and a refused request
never reaches a handler (so it reads and writes nothing). The first (1-3 and the
header-level part of 4) runs before the body is read, so a client without a known key
and a fresh signature cannot make the server receive its body; the second checks the
signature over the body and the policy:

1. ``Host`` must name an address the server is bound to or one given with
   ``--allow-host`` (DNS rebinding: a page on ``evil.example`` resolving to 127.0.0.1);
2. an ``Origin`` header must be one given with ``--allow-origin`` (none by default):
   browsers send it on cross-site requests, and no real client (boto3, the ``aws`` CLI,
   meshplane) does;
3. a POST/PUT/PATCH body must be ``application/json`` — what botocore's restJson1
   serializer and meshplane's client send — so a form or ``text/plain`` post, which a
   browser sends without a CORS preflight, is refused;
4. unless the route is open (``GET /healthz``) or ``--auth none``: a valid SigV4
   signature (:mod:`meshplane.auth.signatures`) from a known principal, whose policy
   allows the route's action on its resource (:mod:`meshplane.auth.actions`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshplane.api import offloading, rendering, screening
from meshplane.auth import actions, errors, policies, signatures
from meshplane.auth.principals import Principal, Principals
from meshplane.model import errors as appmesh_errors

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
"""Where the middleware leaves the authenticated :class:`Principal` on the request."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
THREAD_BYTES = 64 * 1024
"""Bodies this large or larger are verified on a thread (hashing 64 KiB takes ~0.1 ms)."""


@dataclasses.dataclass(frozen=True)
class Gate:
    """The middleware's configuration (built by the composition root)."""

    principals: Principals | None
    """None: ``--auth none`` (browser protections still apply)."""
    region: str
    account: str
    clock: Callable[[], float]
    allowed_hosts: frozenset[str]
    allowed_origins: frozenset[str]


def _host_name(header: str) -> str:
    """``Host`` without its port: ``[::1]:9080`` → ``::1``, ``localhost:9080`` → ``localhost``."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


def _check_browser(gate: Gate, request: web.Request, *, origin_checked: bool = True) -> None:
    host = request.headers.get("Host", "")
    if _host_name(host) not in gate.allowed_hosts:
        raise errors.AccessDeniedException(
            f"Host {host!r} is not an address this server is bound to; "
            "start meshplane serve with --allow-host NAME to accept it"
        )
    origin = request.headers.get("Origin")
    if origin_checked and origin is not None and origin not in gate.allowed_origins:
        raise errors.AccessDeniedException(
            f"Requests from origin {origin!r} are refused; start meshplane serve with "
            "--allow-origin ORIGIN to accept them"
        )
    # body_exists, not can_read_body: the limits middleware has already read the body.
    has_body = request.content_length != 0 and request.body_exists
    json_only = origin_checked  # the console's login form posts urlencoded, same-origin only
    if (
        json_only
        and request.method in BODY_METHODS
        and has_body
        and request.content_type != rendering.JSON
    ):
        raise appmesh_errors.BadRequestException(
            f"{request.method} bodies must be {rendering.JSON}, not "
            f"{request.headers.get('Content-Type') or 'untyped'}"
        )


async def _authenticate(gate: Gate, principals: Principals, request: web.Request) -> Principal:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise appmesh_errors.BadRequestException(
            f"The request body is larger than the {request.client_max_size} bytes meshplane accepts"
        ) from exc

    verify = functools.partial(
        signatures.verify,
        method=request.method,
        url=f"http://{request.headers.get('Host', '')}{request.raw_path}",
        headers=list(request.headers.items()),
        body=body,
        region=gate.region,
        now=gate.clock(),
        secret_for=_secret_lookup(principals),
    )
    # Hashing a large body (SHA-256 over 3 MB, once for the payload header and once in
    # the canonical request) would hold the loop every other client waits on; hashlib
    # releases the GIL over large buffers, so a thread lets the loop go on meanwhile.
    key_id = await asyncio.to_thread(verify) if len(body) >= THREAD_BYTES else verify()
    principal = principals.by_access_key(key_id)
    if principal is None:  # deleted between the two lookups
        raise errors.UnrecognizedClientException(f"access key {key_id} was just deleted")
    return principal


async def _json_body(request: web.Request) -> dict[str, str]:
    """The body's top-level strings, for ARNs named in it (CreateMesh's meshName); {} if none.

    A large body is parsed in the screening process, as the handler's parse is.
    """
    raw = await request.read()
    if len(raw) >= screening.SCREEN_BYTES:
        screen = request.app[offloading.OFFLOAD_KEY].screen
        return await screen.run(screening.top_level_strings, raw)
    return screening.top_level_strings(raw)


def _rule(request: web.Request) -> actions.Rule | None:
    """The authorization row of the route the request matched."""
    route = request.match_info.route
    return actions.rule_for(route.method, route.resource.canonical if route.resource else "")


async def _authorize(gate: Gate, principal: Principal, request: web.Request) -> None:
    rule = _rule(request)
    if rule is None:
        raise errors.AccessDeniedException(
            f"No authorization rule covers {request.method} {request.path}; refused"
        )
    if rule.action == actions.AUTHENTICATED:
        return
    body = await _json_body(request) if rule.needs_body else {}
    target = actions.Target(
        gate.region, gate.account, dict(request.match_info), request.query, body
    )
    resource = rule.resource_of(target)
    decision = principal.policy.decide(rule.action, resource)
    if decision is not policies.Decision.ALLOW:
        raise errors.AccessDeniedException(
            f"User: arn:aws:iam::{gate.account}:user/{principal.name} is not authorized to "
            f"perform: {rule.action} on resource: {resource} ({decision.value})"
        )


def _secret_lookup(principals: Principals) -> Callable[[str], str | None]:
    def secret_for(key_id: str) -> str | None:
        found = principals.by_access_key(key_id)
        return None if found is None else found.secret_access_key

    return secret_for


def _signed(rule: actions.Rule | None) -> bool:
    return not (rule is not None and rule.action in (actions.OPEN, actions.CONSOLE))


def header_middleware(gate: Gate) -> Callable[..., Awaitable[web.StreamResponse]]:
    """What ``gate`` can refuse from the headers alone, before any body is read.

    Browser protections, then the signature's header-level checks (a known access key,
    a fresh date, the right scope). It runs before the body middleware, so a client
    that is not a principal of this control plane gets its 403 without the server
    receiving its body; :func:`middleware` checks the signature over the body after.
    """

    @web.middleware
    async def doorman(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            rule = _rule(request)
            # The console's same-origin check is its own (its login form posts an Origin).
            console = rule is not None and rule.action == actions.CONSOLE
            _check_browser(gate, request, origin_checked=not console)
            if gate.principals is not None and _signed(rule):
                signatures.check_headers(
                    headers=request.headers.items(),
                    region=gate.region,
                    now=gate.clock(),
                    secret_for=_secret_lookup(gate.principals),
                )
        except appmesh_errors.AppMeshError as refused:
            return rendering.error_response(refused)
        return await handler(request)

    return doorman


def middleware(gate: Gate) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware enforcing ``gate`` on every request, after :func:`header_middleware`."""

    @web.middleware
    async def gatekeeper(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            rule = _rule(request)
            if gate.principals is not None and _signed(rule):
                principal = await _authenticate(gate, gate.principals, request)
                await _authorize(gate, principal, request)
                request[PRINCIPAL_KEY] = principal
        except appmesh_errors.AppMeshError as refused:
            return rendering.error_response(refused)
        return await handler(request)

    return gatekeeper
