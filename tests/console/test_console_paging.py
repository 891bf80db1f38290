"""The mesh page of a larger mesh over HTTP: a page per kind, counts, the filter, the focus."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
from test_console_http import ECHO_MANIFESTS, KEY, Browser, _admin, _form_token

from meshplane.console import Console, listing
from meshplane.testing import ControlPlane

ROUTERS = 60
"""vr-page-00 … vr-page-59, one route each: with the walkthrough's router, 61 of each."""


def paged_routers(directory: Path, blue: int = 100, green: int = 0) -> Path:
    """The walkthrough's manifests plus ``ROUTERS`` routers whose route splits blue/green."""
    directory.mkdir(exist_ok=True)
    for manifest in sorted(ECHO_MANIFESTS.glob("*.yaml")):
        if manifest.name != "workloads.yaml":
            (directory / manifest.name).write_text(manifest.read_text(), encoding="utf-8")
    documents = [
        f"""apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata:
  name: vr-page-{index:02d}
  namespace: demos
spec:
  awsName: vr-page-{index:02d}
  listeners:
    - portMapping:
        port: {8000 + index}
        protocol: http
  routes:
    - name: rt-page-{index:02d}
      httpRoute:
        match:
          prefix: /
        action:
          weightedTargets:
          - virtualNodeRef:
              name: vn-echo-backend-blue
            weight: {blue if index == 55 else 100}
          - virtualNodeRef:
              name: vn-echo-backend-green
            weight: {green if index == 55 else 0}
"""
        for index in range(ROUTERS)
    ]
    (directory / "vr-pages.yaml").write_text("---\n".join(documents), encoding="utf-8")
    return directory


@pytest.fixture
def plane(tmp_path: Path) -> ControlPlane:
    with ControlPlane(tmp_path / "data", mounts=[Console(KEY).mount]) as running:
        running.apply(paged_routers(tmp_path / "manifests"))
        yield running


def _section(page: str, section: str) -> str:
    start = page.index(f'<h2 id="section-{section}">')
    end = page.find("<h2 ", start + 1)
    return page[start : end if end >= 0 else len(page)]


def _first_cells(html: str) -> list[str]:
    return re.findall(r"<tr><td>([^<]*)</td>", html)


def test_a_view_parses_its_query_string_and_drops_what_is_malformed() -> None:
    """Page numbers must be whole numbers above 1, a filter is stripped and cut at 255."""
    view = listing.View.parse(
        {"q": "  rt-4 ", "rt_page": "3", "vs_page": "x", "vn_page": "0", "service": "s", "zz": "1"}
    )
    assert view == listing.View(query="rt-4", pages={"rt": 3}, service="s")
    assert view.encoded() == "q=rt-4&service=s&rt_page=3"
    assert view.turned("vn", 2).encoded() == "q=rt-4&service=s&rt_page=3&vn_page=2"
    assert listing.View.parse({"q": "a" * 300}).query == "a" * 255
    assert listing.View.parse({}).encoded() == ""


def test_in_memory_pages_match_the_stores_order_and_clamp_to_the_last_page() -> None:
    """Proxies are paged in (parent, name) order; a page past the end shows the last page."""
    names = [("", f"p-{i:03d}") for i in reversed(range(120))]
    shown = listing.paged("px", names, listing.View(pages={"px": 9}))
    assert (shown.number, shown.pages, shown.first, shown.last) == (3, 3, 101, 120)
    assert shown.names[0] == ("", "p-100")
    filtered = listing.paged("px", names, listing.View(query="P-11"))
    assert [n for _, n in filtered.names] == [f"p-11{i}" for i in range(10)]
    assert (filtered.matching, filtered.total) == (10, 120)


def test_each_kind_shows_fifty_names_with_its_count_and_next_and_previous_links(
    plane: ControlPlane,
) -> None:
    """61 routers: the first page shows 50 of them with a next link, the second the last 11
    with a previous link, and the other sections stay on their first page."""
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    status, _, page = browser.call("GET", "/console/meshes/demos?fragment=1")
    assert status == 200
    routers = _section(page, "vr")
    assert 'data-testid="count-vr">61<' in routers
    assert 'data-testid="range-vr">1\u201350 of 61<' in routers
    assert _first_cells(routers) == ["vr-echo-backend"] + [f"vr-page-{i:02d}" for i in range(49)]
    assert 'href="/console/meshes/demos?vr_page=2#section-vr"' in routers
    assert 'data-testid="prev-vr"' not in routers
    assert 'data-testid="pager-vn"' not in page  # 3 nodes: one page, no pager
    status, _, page = browser.call("GET", "/console/meshes/demos?vr_page=2&fragment=1")
    routers = _section(page, "vr")
    assert _first_cells(routers) == [f"vr-page-{i:02d}" for i in range(49, 60)]
    assert 'data-testid="range-vr">51\u201361 of 61<' in routers
    assert 'href="/console/meshes/demos#section-vr"' in routers  # previous: the first page
    assert 'data-testid="next-vr"' not in routers
    routes = _section(page, "rt")
    assert re.findall(r'<td class="route">([^<]*)<', routes)[:2] == [
        "vrr-echo-backend",
        "rt-page-00",
    ]


def test_the_filter_narrows_every_section_and_matches_a_routes_router(
    plane: ControlPlane,
) -> None:
    """``q=page-42`` leaves router vr-page-42 and its route; every count still says 61."""
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, page = browser.call("GET", "/console/meshes/demos?q=PAGE-42")
    assert 'value="PAGE-42"' in page  # the filter form keeps what was typed
    assert _first_cells(_section(page, "vr")) == ["vr-page-42"]
    assert re.findall(r'<td class="route">([^<]*)<', _section(page, "rt")) == ["rt-page-42"]
    assert "(1 match \u201cPAGE-42\u201d)" in _section(page, "rt")
    assert 'data-testid="count-rt">61<' in page
    assert _first_cells(_section(page, "vn")) == []


def test_a_mesh_above_the_graph_bound_draws_one_services_neighbourhood(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the bound the graph is a sentence with a link per service; the service's graph
    holds its callers, its router and the router's targets, nothing else."""
    monkeypatch.setattr("meshplane.console.topology.MAX_BOXES", 20)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, page = browser.call("GET", "/console/meshes/demos?fragment=1")
    assert re.findall(r'data-testid="graph-note">([^<]*)<', page) == [
        "126 resources: too many to draw at once (the graph shows up to 20). "
        "Choose \u201cgraph\u201d beside a virtual service to draw its neighbourhood."
    ]
    service = "vs-echo-backend.demos.svc.cluster.local"
    link = f"/console/meshes/demos?service={urllib.parse.quote(service)}"
    assert f'href="{link}#topology"' in page
    _, _, page = browser.call("GET", link + "&fragment=1")
    graph = page[page.index('<svg class="topology"') : page.index("</svg>")]
    assert sorted(re.findall(r'data-testid="box-(\w+)-([^"]+)"', graph)) == [
        ("vn", "vn-echo-backend-blue"),
        ("vn", "vn-echo-backend-green"),
        ("vn", "vn-echo-frontend-blue"),
        ("vr", "vr-echo-backend"),
        ("vs", service),
    ]
    assert "Neighbourhood of virtual service <b>" in page
    _, _, page = browser.call("GET", "/console/meshes/demos?service=nope&fragment=1")
    assert re.findall(r'data-testid="graph-note">([^<]*)<', page) == [
        "No virtual service named nope in this mesh."
    ]


def test_an_edit_on_a_later_page_comes_back_to_that_page(plane: ControlPlane) -> None:
    """The form carries the view; the answer is a redirect to the same page and filter."""
    admin = Browser(plane)
    admin.login(*_admin(plane))
    _, _, page = admin.call("GET", "/console/meshes/demos?q=page-5&rt_page=1")
    assert 'name="view" value="q=page-5"' in page
    form = {
        "router": "vr-page-55",
        "route": "rt-page-55",
        "weight:vn-echo-backend-blue": "40",
        "weight:vn-echo-backend-green": "60",
        "token": _form_token(page),
        "view": "q=page-5&vr_page=2",
    }
    status, headers, _ = admin.call(
        "POST",
        "/console/meshes/demos/weights",
        urllib.parse.urlencode(form),
        {"Origin": admin.origin},
    )
    assert (status, headers["location"]) == (303, "/console/meshes/demos?q=page-5&vr_page=2")
    route = plane.appmesh().describe_route(
        meshName="demos", virtualRouterName="vr-page-55", routeName="rt-page-55"
    )["route"]
    targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
    assert [t["weight"] for t in targets] == [40, 60]


def test_a_mesh_above_the_graph_bound_is_never_read_whole(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the bound no request reads the whole mesh: pages, filters and a service's graph
    render with the whole-mesh read refused."""

    def refused(*_args: object) -> None:
        raise AssertionError("the whole mesh was read")

    monkeypatch.setattr("meshplane.console.topology.MAX_BOXES", 20)
    monkeypatch.setattr("meshplane.store.snapshots.mesh_snapshot", refused)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    for query in (
        "",
        "?rt_page=2",
        "?q=page-1",
        "?service=vs-echo-backend.demos.svc.cluster.local",
    ):
        status, _, page = browser.call("GET", f"/console/meshes/demos{query}")
        assert status == 200, page
        assert 'data-testid="mesh-total">126<' in page
