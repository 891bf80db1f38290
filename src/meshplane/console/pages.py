"""The console's HTML: one layout, the meshes list, one page per mesh, the login form.

Every value that reaches the page goes through :func:`h` (``html.escape`` with quotes):
names, tags, NACK messages and warnings are all user input. The page holds no inline
script or style (the server sends a Content-Security-Policy that forbids them), so even a
missed escape could not run code. The part of a page that changes lives in
``<main id="live">``; the event stream tells the page to fetch it again (``?fragment=1``).
A mesh page shows one page of each kind (:mod:`meshplane.console.listing`), so its size
follows the page, not the mesh.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from meshplane.console import assets, listing

if TYPE_CHECKING:
    from meshplane.console.reading import MeshPage

ROUTE_TYPES = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
STATES = ("SYNCED", "STALE", "NACKED", "DISCONNECTED")


def h(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def mesh_link(mesh: str) -> str:
    """The path of a mesh's page."""
    return f"/console/meshes/{quote(mesh, safe='')}"


_link = mesh_link


def layout(
    title: str,
    body: str,
    user: str | None,
    *,
    notice: str | None = None,
    source: str = "",
    controls: str = "",
) -> str:
    """A whole page: header, the ``live`` part, the script that keeps it current.

    ``notice`` (why an edit was refused) sits outside the live part, so refreshes keep it;
    ``source`` is the page the live part is fetched from when it is not this URL (a refused
    form's answer is shown at the form's URL); ``controls`` (the filter) sit outside it too.
    """
    logout = (
        f'<form method="post" action="/console/logout" class="logout">'
        f'<span class="user">{h(user)}</span> <button type="submit">Log out</button></form>'
        if user
        else ""
    )
    script = f'<script src="{h(assets.url("console.js"))}" defer></script>' if user else ""
    attributes = f' data-source="{h(source)}"' if source else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · meshplane</title>"
        f'<link rel="stylesheet" href="{h(assets.url("console.css"))}">'
        f'<link rel="icon" href="{h(assets.url("favicon.svg"))}" type="image/svg+xml">'
        f"{script}</head><body>"
        f'<header><a class="brand" href="/console/">meshplane</a>{logout}</header>'
        + (
            f'<p class="error notice" role="alert" data-testid="edit-error">{h(notice)}</p>'
            if notice
            else ""
        )
        + controls
        + f'<main id="live"{attributes}>{body}</main></body></html>'
    )


def login(error: str | None = None) -> str:
    """The login form: an access key id and its secret."""
    message = f'<p class="error" role="alert">{h(error)}</p>' if error else ""
    body = (
        '<section class="login"><h1>Log in</h1>'
        "<p>Use an access key of this control plane (<code>meshplane serve</code> prints the "
        "console's key when the data dir has no <code>credentials</code> file).</p>"
        f"{message}"
        '<form method="post" action="/console/login">'
        '<label>Access key id <input name="access_key_id" autocomplete="username" required>'
        "</label>"
        '<label>Secret access key <input name="secret_access_key" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form></section>'
    )
    return layout("Log in", body, None)


def _state(state: str) -> str:
    return f'<span class="state state-{h(state.lower())}">{h(state)}</span>'


def proxies_table(proxies: Sequence[Mapping[str, Any]]) -> str:
    """Each proxy's sync state, with its NACK messages and translation warnings."""
    if not proxies:
        return '<p class="empty">No proxy has connected.</p>'
    rows = []
    for view in proxies:
        nacks = [
            f'<li class="nack"><b>{h(type_name)}</b>: {h(t["lastNack"])}</li>'
            for type_name, t in sorted(view["types"].items())
            if t["lastNack"]
        ]
        warnings = [f'<li class="warning">{h(w)}</li>' for w in view["warnings"]]
        details = "".join(nacks + warnings)
        rows.append(
            f'<tr data-testid="proxy-{h(view["key"])}"><td>{h(view["key"])}</td>'
            f'<td data-testid="state-{h(view["key"])}">{_state(view["state"])}</td>'
            f"<td>{h(view['revision'] if view['revision'] is not None else '-')}</td>"
            f"<td>{f'<ul>{details}</ul>' if details else ''}</td></tr>"
        )
    return (
        '<table class="proxies"><thead><tr><th>Proxy</th><th>State</th><th>Revision</th>'
        f"<th>NACKs and warnings</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def index(
    meshes: Iterable[tuple[str, int]],
    proxies: listing.Page,
    views: Mapping[str, Mapping[str, Any]],
    counts: Mapping[str, int],
    revision: int,
) -> str:
    """The meshes (with their resource counts), every proxy's state counted, a page of proxies.

    ``views`` are the shown proxies' views by key; ``counts`` are proxies by state.
    """
    items = "".join(
        f'<li><a href="{h(_link(name))}">{h(name)}</a> <span class="count">{count} resources'
        "</span></li>"
        for name, count in meshes
    )
    summary = " ".join(f"{_state(s)} {counts.get(s, 0)}" for s in STATES)
    shown = [views[key] for _, key in proxies.names if key in views]
    return (
        f'<h1>Meshes</h1><p class="revision">store revision <b data-testid="revision">'
        f"{revision}</b></p>"
        f'<ul class="meshes">{items or "<li>No mesh yet.</li>"}</ul>'
        f'<h2 id="section-px">Proxies</h2><p class="summary">{summary}</p>'
        f"{_pager('px', proxies, '/console/', listing.View(pages={'px': proxies.number}))}"
        f"{proxies_table(shown)}"
    )


def _ports(spec: Mapping[str, Any]) -> str:
    ports = [
        f"{h(l['portMapping']['protocol'])}:{h(l['portMapping']['port'])}"
        for l in spec.get("listeners", [])  # noqa: E741 - "l" for listener reads as in App Mesh
        if "portMapping" in l
    ]
    return ", ".join(ports) or "-"


def _edit_form(mesh: str, router: str, name: str, targets: Sequence[Any], view: str = "") -> str:
    """The explicit "edit weights" form of one route (collapsed: the page reads by default).

    Its token is :data:`TOKEN_SLOT`, filled per session by :func:`mesh`.
    """
    if not targets:
        return ""
    inputs = "".join(
        f'<label>{h(t["virtualNode"])} <input name="weight:{h(t["virtualNode"])}" '
        f'type="number" min="0" max="100" required value="{h(t.get("weight", 0))}"></label>'
        for t in targets
    )
    kept = f'<input type="hidden" name="view" value="{h(view)}">' if view else ""
    return (
        f'<details class="edit"><summary>Edit weights</summary>'
        f'<form method="post" action="{h(_link(mesh))}/weights" '
        f'data-testid="edit-{h(router)}-{h(name)}">'
        f'<input type="hidden" name="router" value="{h(router)}">'
        f'<input type="hidden" name="route" value="{h(name)}">'
        f'<input type="hidden" name="token" value="{TOKEN_SLOT}">{kept}'
        f'{inputs}<button type="submit">Apply weights</button></form></details>'
    )


def _route(
    router: str, name: str, spec: Mapping[str, Any], edit: tuple[str, str] | None = None
) -> str:
    kind = next((k for k in ROUTE_TYPES if k in spec), None)
    route = spec.get(kind, {}) if kind else {}
    match = route.get("match", {})
    matched = (
        match.get("prefix") or match.get("path", {}).get("exact") or match.get("serviceName", "")
    )
    targets = route.get("action", {}).get("weightedTargets", [])
    total = sum(int(t.get("weight", 0)) for t in targets) or 1
    cells = "".join(
        f'<li><span class="target">{h(t["virtualNode"])}</span> '
        f'<span class="weight" data-testid="weight-{h(router)}-{h(name)}-{h(t["virtualNode"])}">'
        f"{h(t.get('weight', 0))}</span>"
        f'<meter min="0" max="100" value="{round(100 * int(t.get("weight", 0)) / total)}">'
        "</meter></li>"
        for t in targets
    )
    priority = spec.get("priority", "-")
    form = _edit_form(edit[0], router, name, targets, edit[1]) if edit else ""
    return (
        f'<tr><td class="route">{h(name)}</td><td>{h(kind or "-")}</td><td>{h(matched)}</td>'
        f'<td>{h(priority)}</td><td><ul class="targets">{cells}</ul>{form}</td></tr>'
    )


TOKEN_SLOT = "<!--form-token-->"
"""Where a session's form token goes in cached sections: escaped data never holds a ``<``."""


def mesh_sections(page: MeshPage, view: listing.View, *, editable: bool = False) -> str:
    """A mesh page's resource sections: one page of each kind (from the store alone).

    With ``editable`` each route gets its "edit weights" form, which carries the ``view``
    so the answer comes back to this page, and :data:`TOKEN_SLOT` where the session's
    form token goes (:func:`mesh` puts it in), so one rendering serves every session.
    """
    name = page.mesh.key.name
    link = mesh_link(name)
    edit = (name, view.encoded()) if editable else None
    rows = page.resources
    services = "".join(
        f"<tr><td>{h(vs.name)}</td><td>{h(_provider(vs.spec))}</td>"
        f'<td><a href="{h(_href(link, view.focused(vs.name)))}#topology" '
        f'data-testid="graph-{h(vs.name)}">graph</a></td></tr>'
        for vs in rows["vs"]
    )
    routers = "".join(
        f"<tr><td>{h(vr.name)}</td><td>{_ports(vr.spec)}</td>"
        f"<td>{page.children.get(vr.name, 0)}</td></tr>"
        for vr in rows["vr"]
    )
    nodes = "".join(
        f"<tr><td>{h(vn.name)}</td><td>{_ports(vn.spec)}</td>"
        f"<td>{h(', '.join(_backends(vn.spec)) or '-')}</td>"
        f"<td>{h(_discovery(vn.spec))}</td></tr>"
        for vn in rows["vn"]
    )
    gateways = "".join(
        f"<tr><td>{h(vg.name)}</td><td>{_ports(vg.spec)}</td>"
        f"<td>{page.children.get(vg.name, 0)}</td></tr>"
        for vg in rows["vg"]
    )
    gateway_routes = "".join(
        f"<tr><td>{h(gr.key.parent)}</td><td>{h(gr.name)}</td>"
        f"<td>{h(_gateway_target(gr.spec))}</td></tr>"
        for gr in rows["gr"]
    )
    sections = [
        ("vs", _table(("Name", "Provider", "Topology"), services)),
        ("vr", _table(("Name", "Listeners", "Routes"), routers)),
        ("rt", _routes(page, edit)),
        ("vn", _table(("Name", "Listeners", "Backends", "Service discovery"), nodes)),
        ("vg", _table(("Name", "Listeners", "Gateway routes"), gateways)),
        ("gr", _table(("Gateway", "Name", "Target"), gateway_routes)),
    ]
    return "".join(
        _section(section, page.pages[section], link, view, body) for section, body in sections
    )


def mesh(
    page: MeshPage,
    sections: str,
    proxies: listing.Page,
    views: Mapping[str, Mapping[str, Any]],
    graph: str,
    view: listing.View,
    *,
    form_token: str | None = None,
) -> str:
    """One page of a mesh: topology ``graph``, then a page of its proxies, then ``sections``.

    ``views`` are the shown proxies' views by key; ``sections`` come from
    :func:`mesh_sections`, and ``form_token`` fills their forms' token slots.
    """
    name = page.mesh.key.name
    link = mesh_link(name)
    focus = (
        f'<p class="focus" data-testid="focus">Neighbourhood of virtual service '
        f"<b>{h(view.service)}</b> · "
        f'<a href="{h(_href(link, view.focused("")))}#topology">whole mesh</a></p>'
        if view.service
        else ""
    )
    shown_proxies = [views[key] for _, key in proxies.names if key in views]
    if form_token is not None:
        sections = sections.replace(TOKEN_SLOT, h(form_token))
    return (
        f'<h1>Mesh <span data-testid="mesh-name">{h(name)}</span></h1>'
        f'<p class="revision">store revision <b data-testid="revision">{page.revision}</b> · '
        f'<span data-testid="mesh-total">{page.total:,}</span> resources</p>'
        f'<h2 id="topology">Topology</h2>{focus}<div class="graph">{graph}</div>'
        + _section("px", proxies, link, view, proxies_table(shown_proxies))
        + sections
    )


def filter_form(mesh_name: str, view: listing.View) -> str:
    """The name filter; it sits outside the live part so a refresh never clears the typing."""
    service = (
        f'<input type="hidden" name="service" value="{h(view.service)}">' if view.service else ""
    )
    clear = f' <a href="{h(mesh_link(mesh_name))}">clear</a>' if view.query else ""
    return (
        f'<form method="get" action="{h(mesh_link(mesh_name))}" class="filter" role="search">'
        '<label>Filter by name <input type="search" name="q" data-testid="filter" '
        f'value="{h(view.query)}" maxlength="{listing.MAX_QUERY}"></label>'
        f'{service}<button type="submit">Filter</button>{clear}</form>'
    )


def view_link(mesh_name: str, view: listing.View) -> str:
    """The path of ``view`` of a mesh's page (its query string, if any, included)."""
    return _href(mesh_link(mesh_name), view)


def _href(link: str, view: listing.View) -> str:
    query = view.encoded()
    return f"{link}?{query}" if query else link


def _section(section: str, shown: listing.Page, link: str, view: listing.View, body: str) -> str:
    """A section: its title and count, the pager when there is more than one page, ``body``."""
    matching = f" ({shown.matching:,} match “{h(view.query)}”)" if view.query else ""
    heading = (
        f'<h2 id="section-{section}">{h(listing.TITLES[section])} '
        f'<span class="count" data-testid="count-{section}">{shown.total:,}</span>'
        f"{matching}</h2>"
    )
    return f"{heading}{_pager(section, shown, link, view)}{body}"


def _pager(section: str, shown: listing.Page, link: str, view: listing.View) -> str:
    """``51-100 of 2,000`` with previous/next links (nothing when one page holds them all)."""
    if shown.pages <= 1:
        return ""
    anchor = f"#section-{section}"
    previous = (
        f'<a rel="prev" data-testid="prev-{section}" '
        f'href="{h(_href(link, view.turned(section, shown.number - 1)))}{anchor}">← previous</a>'
        if shown.number > 1
        else ""
    )
    following = (
        f'<a rel="next" data-testid="next-{section}" '
        f'href="{h(_href(link, view.turned(section, shown.number + 1)))}{anchor}">next →</a>'
        if shown.number < shown.pages
        else ""
    )
    return (
        f'<nav class="pager" data-testid="pager-{section}">'
        f'<span data-testid="range-{section}">{shown.first:,}\u2013{shown.last:,} of '
        f"{shown.matching:,}</span> · page {shown.number} of {shown.pages} {previous} {following}"
        "</nav>"
    )


def _routes(page: MeshPage, edit: tuple[str, str] | None) -> str:
    """The shown routes, grouped under their routers (name and listeners)."""
    groups: dict[str, list[str]] = {}
    for route in page.resources["rt"]:
        router = route.key.parent
        groups.setdefault(router, []).append(_route(router, route.name, route.spec, edit))
    if not groups:
        return '<p class="empty">None.</p>'
    parts = []
    for router, routes in groups.items():
        found = page.routers.get(router)
        ports = _ports(found.spec) if found is not None else "-"
        parts.append(
            f'<section class="router" data-testid="router-{h(router)}"><h3>{h(router)} '
            f'<span class="ports">{ports}</span></h3>'
            "<table><thead><tr><th>Route</th><th>Type</th><th>Match</th><th>Priority</th>"
            f"<th>Weighted targets</th></tr></thead><tbody>{''.join(routes)}</tbody></table>"
            "</section>"
        )
    return "".join(parts)


def not_found(mesh_name: str) -> str:
    """The body for a mesh that does not exist (any more)."""
    return f'<h1>No mesh named <span data-testid="mesh-name">{h(mesh_name)}</span></h1>'


def _table(headings: Sequence[str], rows: str) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{h(x)}</th>" for x in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _provider(spec: Mapping[str, Any]) -> str:
    provider = spec.get("provider", {})
    if "virtualRouter" in provider:
        return f"router {provider['virtualRouter'].get('virtualRouterName', '')}"
    if "virtualNode" in provider:
        return f"node {provider['virtualNode'].get('virtualNodeName', '')}"
    return "-"


def _backends(spec: Mapping[str, Any]) -> list[str]:
    return [
        b["virtualService"].get("virtualServiceName", "")
        for b in spec.get("backends", [])
        if "virtualService" in b
    ]


def _discovery(spec: Mapping[str, Any]) -> str:
    found = spec.get("serviceDiscovery", {})
    if "dns" in found:
        return f"dns {found['dns'].get('hostname', '')}"
    if "awsCloudMap" in found:
        cloud_map = found["awsCloudMap"]
        return f"cloud map {cloud_map.get('namespaceName', '')}/{cloud_map.get('serviceName', '')}"
    return "-"


def _gateway_target(spec: Mapping[str, Any]) -> str:
    for kind in ("httpRoute", "http2Route", "grpcRoute"):
        if kind in spec:
            target = spec[kind].get("action", {}).get("target", {})
            return str(target.get("virtualService", {}).get("virtualServiceName", "-"))
    return "-"
