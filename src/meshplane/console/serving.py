"""The console's routes on the API application: pages, login, the event stream, static files.

Every console request passes two checks before its handler:

- **same origin** — a request whose ``Origin`` is another origin, or that the browser
  marks ``Sec-Fetch-Site: cross-site``/``same-site``, is refused (403); a ``POST`` must
  carry an ``Origin`` that is this server's. With ``SameSite=Strict`` cookies this stops
  other sites' pages from logging a browser in or out or reading the console;
- **a session** — every page but the login form needs a valid session cookie
  (:mod:`meshplane.console.sessions`) whose access key the :class:`CredentialLookup`
  still knows; pages redirect to the login form, fragments and the event stream answer 401.

``GET /console/events`` is a server-sent event stream: one ``change`` event when it opens
and one after each change of the read model (store revisions the sync stage applied,
connects, ACKs, NACKs), each carrying the store revision. The page coalesces them: at most
one fragment fetch is in flight. While a stream is open the traffic monitor
(:mod:`meshplane.console.monitoring`) reads the sidecars' stats every second, and each
reading is one ``traffic`` event: a JSON object from ``data-traffic`` key to label text,
which the page writes into the topology's labels as text.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import hmac
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from meshplane import app
from meshplane.api import offloading
from meshplane.console import (
    assets,
    caching,
    editing,
    listing,
    monitoring,
    pages,
    reading,
    throttling,
    topology,
)
from meshplane.console.credentials import CredentialLookup
from meshplane.console.sessions import COOKIE, DEFAULT_TTL, Sessions
from meshplane.model import errors, kinds
from meshplane.model.kinds import MESH
from meshplane.model.snapshot import MeshSnapshot
from meshplane.store.protocols import Store
from meshplane.sync.proxyviews import ProxyViews

PREFIX = "/console"
SECURITY_HEADERS = {
    # No inline script or style, nothing from elsewhere: a missed escape cannot run code.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # "same-origin", not "no-referrer": with no-referrer browsers post forms with `Origin: null`.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The console of one control plane: its credentials, sessions and routes."""

    def __init__(
        self,
        lookup: CredentialLookup,
        clock: Callable[[], float] = time.time,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        """Log in against ``lookup``; sessions last ``ttl`` seconds of ``clock``."""
        self._lookup = lookup
        self.sessions = Sessions(clock, ttl)
        self._throttle = throttling.LoginThrottle(clock)
        self._closing = asyncio.Event()
        self._recent: caching.Recent[Any] = caching.Recent()

    def mount(self, api: web.Application, plane: app.ControlPlane) -> None:
        """Add the console's routes to the API application ``api`` (an ``app.Mount``)."""
        self._plane = plane
        self._monitor = monitoring.TrafficMonitor(plane.views)
        self._generation: caching.Generation[dict[str, int]] = caching.Generation(
            plane.views.changed
        )
        self._generation_keys: caching.Generation[dict[str | None, list[str]]] = caching.Generation(
            plane.views.changed
        )
        self._lookup = _with_principals(plane, self._lookup)
        api.on_shutdown.append(self._close_streams)
        add = api.router.add_route
        add("GET", PREFIX, self._guard(self._home, session=False))
        add("GET", f"{PREFIX}/", self._guard(self._index, page=True))
        add("GET", f"{PREFIX}/meshes/{{mesh}}", self._guard(self._mesh, page=True))
        add("POST", f"{PREFIX}/meshes/{{mesh}}/weights", self._guard(self._edit_weights))
        add("GET", f"{PREFIX}/events", self._guard(self._events))
        add("GET", f"{PREFIX}/login", self._guard(self._login_form, session=False))
        add("POST", f"{PREFIX}/login", self._guard(self._login, session=False))
        add("POST", f"{PREFIX}/logout", self._guard(self._logout, session=False))
        add("GET", f"{PREFIX}/static/{{name}}", self._guard(self._static, session=False))

    # -- checks ------------------------------------------------------------------------------

    def _guard(self, handler: Handler, *, session: bool = True, page: bool = False) -> Handler:
        """``handler`` behind the origin check and (if ``session``) the session check."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            refusal = _cross_origin(request)
            if refusal is not None:
                return _secured(web.Response(status=403, text=refusal))
            if session and self.user(request) is None:
                if page and "fragment" not in request.query:
                    raise web.HTTPSeeOther(f"{PREFIX}/login")
                return _secured(web.Response(status=401, text="log in at /console/login"))
            return await handler(request)

        return guarded

    def user(self, request: web.Request) -> str | None:
        """The access key id of the request's session, if it has a valid one."""
        value = request.cookies.get(COOKIE)
        key_id = self.sessions.verify(value) if value else None
        if key_id is None or self._lookup(key_id) is None:
            return None
        return key_id

    # -- pages -------------------------------------------------------------------------------

    async def _home(self, _request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect(f"{PREFIX}/")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        store, views = self._plane.store, self._plane.views
        revision = store.revision()
        meshes = self._recent.get(("meshes", revision), functools.partial(_meshes, store))
        # Every proxy is counted by state, but only a page of them gets its view built.
        counts = self._generation.get(("counts", revision), functools.partial(_counts, views))
        view = listing.View.parse(request.query)
        every = self._proxy_keys().get(None, [])
        proxies = listing.paged("px", (("", key) for key in every), view)
        shown = views.views_of(key for _, key in proxies.names)
        body = pages.index(meshes[1], proxies, shown, counts, meshes[0])
        return self._page(request, "Meshes", body)

    async def _mesh(self, request: web.Request) -> web.StreamResponse:
        view = listing.View.parse(request.query)
        return self._mesh_page(request, request.match_info["mesh"], view)

    def _mesh_page(
        self,
        request: web.Request,
        name: str,
        view: listing.View,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        """The page of ``view``: its work grows with the page shown, not with the mesh.

        What only the store decides (the sections, what the graph draws) is read and
        rendered once per store revision and view; the proxies and traffic every time.
        """
        token = self._form_token(request)
        store = self._plane.store
        revision = store.revision()
        key = ("mesh", revision, name, view.encoded(), token is not None)
        part = self._recent.get(key, functools.partial(_mesh_part, store, name, view, key[-1]))
        if part is None:
            return self._page(request, name, pages.not_found(name), status=404)
        keys = self._proxy_keys().get(name, [])
        proxies = listing.paged("px", (("", key) for key in keys), view)
        shown = self._plane.views.views_of(key for _, key in proxies.names)
        graph = (
            topology.render(part.drawn, self._monitor.rows)
            if part.drawn is not None
            else f'<p class="empty" data-testid="graph-note">{pages.h(part.why)}</p>'
        )
        body = pages.mesh(part.page, part.sections, proxies, shown, graph, view, form_token=token)
        controls = pages.filter_form(name, view)
        if error is None:
            return self._page(request, name, body, status, controls=controls)
        # A refused edit: shown at the form's URL; the live part keeps following the mesh page.
        page = pages.layout(
            name,
            body,
            self.user(request),
            notice=error,
            source=pages.view_link(name, view),
            controls=controls,
        )
        return _secured(web.Response(text=page, status=status, content_type="text/html"))

    def _proxy_keys(self) -> dict[str | None, list[str]]:
        """Proxies' node keys by mesh, every key under ``None``; listed again after a change."""
        return self._generation_keys.get("keys", functools.partial(_by_mesh, self._plane.views))

    def _form_token(self, request: web.Request) -> str | None:
        """The edit forms' token, for a session of a principal on a writable control plane."""
        key_id, cookie = self.user(request), request.cookies.get(COOKIE, "")
        principals = self._plane.principals
        if key_id is None or principals is None or self._plane.read_only:
            return None
        if principals.by_access_key(key_id) is None:
            return None
        return self.sessions.form_token(cookie)

    # -- the one write -----------------------------------------------------------------------

    async def _edit_weights(self, request: web.Request) -> web.StreamResponse:
        mesh = request.match_info["mesh"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        router, route = form.get("router", ""), form.get("route", "")
        # The page the form was on (paged, filtered): the answer shows that page again.
        view = listing.View.parse(dict(urllib.parse.parse_qsl(form.get("view", ""))))
        try:
            token = self.sessions.form_token(request.cookies.get(COOKIE, ""))
            if not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
                raise editing.EditRefused(403, "the form is stale or not this session's: reload")
            if self._plane.read_only:
                raise editing.EditRefused(403, self._plane.read_only)
            settings = self._plane.settings
            arn = editing.route_arn(settings.region, settings.account_id, mesh, router, route)
            editing.check_permission(self._plane.principals, self.user(request) or "", arn)
            weights = editing.weights_from(form)
            resources = self._plane.services.resources
            current = resources.describe(kinds.ROUTE, mesh, route, parent=router)
            spec = editing.reweighted(current["spec"], weights)
            await request.app[offloading.OFFLOAD_KEY].write(
                functools.partial(resources.update, parent=router), kinds.ROUTE, mesh, route, spec
            )
        except editing.EditRefused as refused:
            return self._mesh_page(request, mesh, view, str(refused), refused.status)
        except errors.AppMeshError as error:
            return self._mesh_page(request, mesh, view, error.message, error.http_status)
        raise web.HTTPSeeOther(pages.view_link(mesh, view))

    def _page(
        self,
        request: web.Request,
        title: str,
        body: str,
        status: int = 200,
        *,
        controls: str = "",
    ) -> web.Response:
        text = (
            body
            if "fragment" in request.query
            else pages.layout(title, body, self.user(request), controls=controls)
        )
        return _secured(web.Response(text=text, status=status, content_type="text/html"))

    # -- login -------------------------------------------------------------------------------

    async def _login_form(self, _request: web.Request) -> web.StreamResponse:
        return _secured(web.Response(text=pages.login(), content_type="text/html"))

    async def _login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or ""
        wait = self._throttle.retry_after(address)
        if wait is not None:
            page = pages.login(f"Too many failed logins; try again in {max(1, round(wait))} s.")
            headers = {"Retry-After": str(max(1, round(wait)))}
            return _secured(
                web.Response(text=page, status=429, content_type="text/html", headers=headers)
            )
        form = await request.post()
        key_id = str(form.get("access_key_id", "")).strip()
        secret = str(form.get("secret_access_key", ""))
        known = self._lookup(key_id) if key_id else None
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            self._throttle.failed(address)
            page = pages.login("Unknown access key id or wrong secret access key.")
            return _secured(web.Response(text=page, status=401, content_type="text/html"))
        self._throttle.succeeded(address)
        response = web.HTTPSeeOther(f"{PREFIX}/")
        response.set_cookie(
            COOKIE,
            self.sessions.issue(key_id),
            max_age=int(self.sessions.ttl),
            path=f"{PREFIX}/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        raise response

    async def _logout(self, _request: web.Request) -> web.StreamResponse:
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(COOKIE, path=f"{PREFIX}/")
        raise response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        found = assets.asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        response = _secured(web.Response(body=found.data, content_type=found.content_type))
        if request.query.get("v") == found.digest:  # this URL always names these bytes
            response.headers["Cache-Control"] = assets.KEEP
        return response

    # -- live updates ------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = _secured(web.StreamResponse(headers={"Content-Type": "text/event-stream"}))
        try:
            await response.prepare(request)
        except ConnectionError:  # the page was left before its stream opened: nothing to send
            return response
        views = self._plane.views
        changed_before = True
        sent: dict[str, str] = {}
        # A closed tab ends the stream with a write to a closed transport: that is its end.
        with contextlib.suppress(ConnectionError), self._monitor.watching():
            while not self._closing.is_set():
                if self.user(request) is None:  # the session expired or its key was removed
                    await response.write(b"event: expired\ndata: login\n\n")
                    break
                changed = views.changed()  # taken before reading, so no change is missed
                ticked = self._monitor.ticked()
                if changed_before:
                    revision = self._plane.store.revision()
                    await response.write(f"event: change\ndata: {revision}\n\n".encode())
                closing = asyncio.ensure_future(self._closing.wait())
                woken = asyncio.ensure_future(changed.wait())
                counted = asyncio.ensure_future(ticked.wait())
                try:
                    await asyncio.wait(
                        (closing, woken, counted),
                        timeout=self.sessions.ttl,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in (closing, woken, counted):
                        waiter.cancel()
                # A change re-renders the page's live part; a traffic tick only relabels it.
                changed_before = changed.is_set() or not ticked.is_set()
                if ticked.is_set() and (labels := self._monitor.labels()) != sent:
                    sent = labels  # unchanged numbers are not sent again
                    data = json.dumps(labels, separators=(",", ":"))
                    await response.write(f"event: traffic\ndata: {data}\n\n".encode())
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _close_streams(self, _api: web.Application) -> None:
        self._closing.set()


R = TypeVar("R", bound=web.StreamResponse)


def _secured(response: R) -> R:
    response.headers.update(SECURITY_HEADERS)
    return response


def _cross_origin(request: web.Request) -> str | None:
    """Why ``request`` is refused as cross-origin, or ``None`` if it is same-origin."""
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is not None and origin != own:
        return f"cross-origin request from {origin} refused"
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return "cross-site request refused"
    if request.method != "GET" and origin is None:
        return "a console form must be posted from the console (no Origin header)"
    return None


def _with_principals(plane: app.ControlPlane, fallback: CredentialLookup) -> CredentialLookup:
    """Log in with a principal's key (its policy then decides edits) or a ``fallback`` key."""
    principals = plane.principals
    if principals is None:
        return fallback

    def lookup(access_key_id: str) -> str | None:
        principal = principals.by_access_key(access_key_id)
        return principal.secret_access_key if principal is not None else fallback(access_key_id)

    return lookup


def _mesh_of(key: str) -> str | None:
    """The mesh of a proxy from its node key (``mesh/<mesh>/virtualNode/<name>[#replica]``)."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "mesh" else None


def _by_mesh(views: ProxyViews) -> dict[str | None, list[str]]:
    """Every proxy's node key (under ``None``) and each mesh's, in key order."""
    keys = list(views.node_ids())
    found: dict[str | None, list[str]] = {None: keys}
    for key in keys:
        mesh = _mesh_of(key)
        if mesh is not None:
            found.setdefault(mesh, []).append(key)
    return found


def _meshes(store: Store) -> tuple[int, list[tuple[str, int]]]:
    """The store's revision and every mesh with its count of resources."""
    with store.read() as tx:
        meshes = [
            (r.key.name, tx.count_in_mesh(r.key.name, MESH.key))
            for r in tx.list_records(MESH.key, None)
        ]
        return tx.revision(), meshes


def _counts(views: ProxyViews) -> dict[str, int]:
    """How many proxies are in each state."""
    return dict(collections.Counter(view["state"] for view in views.proxies()))


@dataclasses.dataclass(frozen=True)
class _MeshPart:
    """What a mesh page shows from the store alone, at one revision, for one view."""

    page: reading.MeshPage
    sections: str
    drawn: MeshSnapshot | None
    why: str


def _mesh_part(store: Store, name: str, view: listing.View, editable: bool) -> _MeshPart | None:
    """``view`` of mesh ``name`` from the store (``None``: no such mesh)."""
    shown = reading.read(store, name, view)
    if shown is None:
        return None
    drawn, why = reading.graph(store, name, shown.total, view.service)
    sections = pages.mesh_sections(shown, view, editable=editable)
    return _MeshPart(shown, sections, drawn, why)
