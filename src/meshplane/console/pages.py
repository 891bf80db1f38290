"""The console's HTML: one layout, the meshes list, one page per mesh, the login form.

Every value that reaches the page goes through :func:`h` (``html.escape`` with quotes):
names, tags, NACK messages and warnings are all user input. The page holds no inline
script or style (the server sends a Content-Security-Policy that forbids them), so even a
missed escape could not run code. The part of a page that changes lives in
``<main id="live">``; the event stream tells the page to fetch it again (``?fragment=1``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from meshplane.model.snapshot import MeshSnapshot

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
    title: str, body: str, user: str | None, *, notice: str | None = None, source: str = ""
) -> str:
    """A whole page: header, the ``live`` part, the script that keeps it current.

    ``notice`` (why an edit was refused) sits outside the live part, so refreshes keep it;
    ``source`` is the page the live part is fetched from when it is not this URL (a refused
    form's answer is shown at the form's URL).
    """
    logout = (
        f'<form method="post" action="/console/logout" class="logout">'
        f'<span class="user">{h(user)}</span> <button type="submit">Log out</button></form>'
        if user
        else ""
    )
    script = '<script src="/console/static/console.js" defer></script>' if user else ""
    attributes = f' data-source="{h(source)}"' if source else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · meshplane</title>"
        '<link rel="stylesheet" href="/console/static/console.css">'
        f"{script}</head><body>"
        f'<header><a class="brand" href="/console/">meshplane</a>{logout}</header>'
        + (
            f'<p class="error notice" role="alert" data-testid="edit-error">{h(notice)}</p>'
            if notice
            else ""
        )
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
    meshes: Iterable[tuple[str, int]], proxies: Sequence[Mapping[str, Any]], revision: int
) -> str:
    """The meshes (with their resource counts) and every proxy."""
    items = "".join(
        f'<li><a href="{h(_link(name))}">{h(name)}</a> <span class="count">{count} resources'
        "</span></li>"
        for name, count in meshes
    )
    counts = {state: sum(1 for p in proxies if p["state"] == state) for state in STATES}
    summary = " ".join(f"{_state(s)} {counts[s]}" for s in STATES)
    return (
        f'<h1>Meshes</h1><p class="revision">store revision <b data-testid="revision">'
        f"{revision}</b></p>"
        f'<ul class="meshes">{items or "<li>No mesh yet.</li>"}</ul>'
        f'<h2>Proxies</h2><p class="summary">{summary}</p>{proxies_table(proxies)}'
    )


def _ports(spec: Mapping[str, Any]) -> str:
    ports = [
        f"{h(l['portMapping']['protocol'])}:{h(l['portMapping']['port'])}"
        for l in spec.get("listeners", [])  # noqa: E741 - "l" for listener reads as in App Mesh
        if "portMapping" in l
    ]
    return ", ".join(ports) or "-"


def _edit_form(mesh: str, router: str, name: str, targets: Sequence[Any], token: str) -> str:
    """The explicit "edit weights" form of one route (collapsed: the page reads by default)."""
    if not targets:
        return ""
    inputs = "".join(
        f'<label>{h(t["virtualNode"])} <input name="weight:{h(t["virtualNode"])}" '
        f'type="number" min="0" max="100" required value="{h(t.get("weight", 0))}"></label>'
        for t in targets
    )
    return (
        f'<details class="edit"><summary>Edit weights</summary>'
        f'<form method="post" action="{h(_link(mesh))}/weights" '
        f'data-testid="edit-{h(router)}-{h(name)}">'
        f'<input type="hidden" name="router" value="{h(router)}">'
        f'<input type="hidden" name="route" value="{h(name)}">'
        f'<input type="hidden" name="token" value="{h(token)}">'
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


def mesh(
    snapshot: MeshSnapshot,
    proxies: Sequence[Mapping[str, Any]],
    graph: str = "",
    *,
    form_token: str | None = None,
) -> str:
    """One mesh: topology ``graph``, services, routers with live weights, nodes, gateways.

    With a ``form_token`` each route gets its "edit weights" form.
    """
    services = "".join(
        f"<tr><td>{h(name)}</td><td>{h(_provider(vs.resource.spec))}</td></tr>"
        for name, vs in sorted(snapshot.virtual_services.items())
    )
    routers = []
    for name, vr in sorted(snapshot.virtual_routers.items()):
        routes = "".join(
            _route(
                name,
                route_name,
                route.resource.spec,
                (snapshot.mesh.resource.key.name, form_token) if form_token else None,
            )
            for route_name, route in sorted(snapshot.routes.get(name, {}).items())
        )
        routers.append(
            f'<section class="router" data-testid="router-{h(name)}"><h3>{h(name)} '
            f'<span class="ports">{_ports(vr.resource.spec)}</span></h3>'
            "<table><thead><tr><th>Route</th><th>Type</th><th>Match</th><th>Priority</th>"
            f"<th>Weighted targets</th></tr></thead><tbody>{routes}</tbody></table></section>"
        )
    nodes = "".join(
        f"<tr><td>{h(name)}</td><td>{_ports(vn.resource.spec)}</td>"
        f"<td>{h(', '.join(_backends(vn.resource.spec)) or '-')}</td>"
        f"<td>{h(_discovery(vn.resource.spec))}</td></tr>"
        for name, vn in sorted(snapshot.virtual_nodes.items())
    )
    gateways = "".join(
        f"<tr><td>{h(name)}</td><td>{_ports(vg.resource.spec)}</td><td>"
        + ", ".join(
            f"{h(gr_name)} → {h(_gateway_target(gr.resource.spec))}"
            for gr_name, gr in sorted(snapshot.gateway_routes.get(name, {}).items())
        )
        + "</td></tr>"
        for name, vg in sorted(snapshot.virtual_gateways.items())
    )
    name = snapshot.mesh.resource.key.name
    return (
        f'<h1>Mesh <span data-testid="mesh-name">{h(name)}</span></h1>'
        f'<p class="revision">store revision <b data-testid="revision">{snapshot.revision}</b></p>'
        f'<h2>Topology</h2><div class="graph">{graph}</div>'
        f"<h2>Proxies</h2>{proxies_table(proxies)}"
        f"<h2>Virtual services</h2>{_table(('Name', 'Provider'), services)}"
        f"<h2>Virtual routers</h2>{''.join(routers) or '<p class=empty>None.</p>'}"
        f"<h2>Virtual nodes</h2>"
        f"{_table(('Name', 'Listeners', 'Backends', 'Service discovery'), nodes)}"
        f"<h2>Virtual gateways</h2>{_table(('Name', 'Listeners', 'Gateway routes'), gateways)}"
    )


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
