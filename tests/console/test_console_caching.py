"""What a console page costs: read once per store revision, only its own proxies' views built."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_console_browser import BACKEND, FRONTEND, Envoys
from test_console_http import KEY, Browser, _admin, _form_token
from test_console_paging import paged_routers

from meshplane.console import Console, assets, caching, reading
from meshplane.console.sessions import COOKIE
from meshplane.sync.proxyviews import ProxyViews
from meshplane.testing import ControlPlane

GREEN = "mesh/demos/virtualNode/vn-echo-backend-green"
WEIGHT = 'data-testid="weight-vr-page-55-rt-page-55-vn-echo-backend-blue">'


@pytest.fixture
def console() -> Console:
    return Console(KEY)


@pytest.fixture
def plane(tmp_path: Path, console: Console) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path / "data", mounts=[console.mount]) as running:
        running.apply(paged_routers(tmp_path / "manifests"))
        yield running


@pytest.fixture
def envoys(plane: ControlPlane) -> Iterator[Envoys]:
    fakes = Envoys(plane)
    yield fakes
    fakes.close()


def _weight(page: str) -> str:
    return page[page.index(WEIGHT) + len(WEIGHT) :].split("<", 1)[0]


def test_recent_keeps_the_last_answers_and_computes_a_missing_one_once() -> None:
    """A kept key is not computed again; past the size the least recently used goes."""
    computed: list[str] = []
    recent: caching.Recent[str] = caching.Recent(size=2)

    def answer(key: str) -> str:
        return recent.get(key, lambda: computed.append(key) or key.upper())

    assert [answer("a"), answer("b"), answer("a"), answer("c"), answer("b")] == list("ABACB")
    assert computed == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    assert len(recent) == 2


def test_a_mesh_page_is_read_once_per_store_revision_and_a_write_shows_at_once(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three loads at one revision read the store once; the load after a write reads it
    again and shows the new weight."""
    reads: list[str] = []
    original = reading.read

    def counted(store: Any, mesh: str, view: Any) -> Any:
        reads.append(mesh)
        return original(store, mesh, view)

    monkeypatch.setattr("meshplane.console.reading.read", counted)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    pages = [browser.call("GET", "/console/meshes/demos?rt_page=2")[2] for _ in range(3)]
    assert [_weight(page) for page in pages] == ["100", "100", "100"]
    assert reads == ["demos"]
    plane.appmesh().update_route(
        meshName="demos",
        virtualRouterName="vr-page-55",
        routeName="rt-page-55",
        spec={
            "httpRoute": {
                "match": {"prefix": "/"},
                "action": {
                    "weightedTargets": [
                        {"virtualNode": "vn-echo-backend-blue", "weight": 25},
                        {"virtualNode": "vn-echo-backend-green", "weight": 75},
                    ]
                },
            }
        },
    )
    assert _weight(browser.call("GET", "/console/meshes/demos?rt_page=2")[2]) == "25"
    assert reads == ["demos", "demos"]


def test_a_kept_page_carries_each_sessions_own_form_token(
    plane: ControlPlane, console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two principals' sessions read one rendering of the page, each with its own token,
    and each token posts its session's edit."""
    editor = plane.client().create_credentials(
        "editor",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "appmesh:*", "Resource": "*"}],
        },
    )
    reads: list[str] = []
    original = reading.read
    monkeypatch.setattr(
        "meshplane.console.reading.read",
        lambda store, mesh, view: reads.append(mesh) or original(store, mesh, view),
    )
    sessions = []
    for key_id, secret in (_admin(plane), (editor["accessKeyId"], editor["secretAccessKey"])):
        browser = Browser(plane)
        browser.login(key_id, secret)
        token = _form_token(browser.call("GET", "/console/meshes/demos?q=page-55")[2])
        cookie = (browser.cookie or "").removeprefix(f"{COOKIE}=")
        assert token == console.sessions.form_token(cookie)
        sessions.append((browser, token))
    assert reads == ["demos"]
    assert sessions[0][1] != sessions[1][1]
    for (browser, token), blue in zip(sessions, (10, 20), strict=True):
        form = {
            "router": "vr-page-55",
            "route": "rt-page-55",
            "weight:vn-echo-backend-blue": str(blue),
            "weight:vn-echo-backend-green": str(100 - blue),
            "token": token,
        }
        status, _, _ = browser.call(
            "POST",
            "/console/meshes/demos/weights",
            urllib.parse.urlencode(form),
            {"Origin": browser.origin},
        )
        assert status == 303
    assert _weight(sessions[0][0].call("GET", "/console/meshes/demos?q=page-55")[2]) == "20"


def test_static_files_are_linked_by_digest_and_kept_only_under_it(plane: ControlPlane) -> None:
    """Pages link console.css?v=<digest>; that URL may be kept a year, any other not at all."""
    browser = Browser(plane)
    _, _, login = browser.call("GET", "/console/login")
    css = assets.asset("console.css")
    assert css is not None
    assert f'<link rel="stylesheet" href="/console/static/console.css?v={css.digest}">' in login
    status, headers, text = browser.call("GET", css.url)
    assert (status, headers["cache-control"]) == (200, "public, max-age=31536000, immutable")
    assert headers["content-type"].startswith("text/css")
    assert text == css.data.decode()
    _, headers, _ = browser.call("GET", "/console/static/console.css?v=0123")
    assert headers["cache-control"] == "no-store"
    assert browser.call("GET", "/console/static/other.css")[0] == 404


def test_a_mesh_page_builds_the_views_of_its_shown_proxies_only(
    plane: ControlPlane, envoys: Envoys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of two, the mesh page asks for the views of its two proxies and never for
    every proxy's; the second page shows the third."""
    for node_id in (FRONTEND, BACKEND, GREEN):
        envoys.connect(node_id)
        plane.wait_for_state(node_id, "SYNCED")
    asked: list[list[str]] = []
    original = ProxyViews.views_of

    def views_of(self: ProxyViews, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        asked.append(list(keys))
        return original(self, asked[-1])

    def refused(self: ProxyViews) -> list[dict[str, Any]]:
        raise AssertionError("every proxy's view was built")

    monkeypatch.setattr(ProxyViews, "views_of", views_of)
    monkeypatch.setattr(ProxyViews, "proxies", refused)
    monkeypatch.setattr("meshplane.console.listing.PAGE_SIZE", 2)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, first = browser.call("GET", "/console/meshes/demos?fragment=1")
    _, _, second = browser.call("GET", "/console/meshes/demos?px_page=2&fragment=1")
    assert asked == [[BACKEND, GREEN], [FRONTEND]]
    assert re.findall(r'data-testid="state-([^"]+)">', first) == [BACKEND, GREEN]
    assert re.findall(r'data-testid="state-([^"]+)">', second) == [FRONTEND]
    assert 'data-testid="range-px">1\u20132 of 3<' in first


def test_the_meshes_list_counts_every_proxy_and_shows_a_page_of_them(
    plane: ControlPlane, envoys: Envoys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three SYNCED proxies are counted; with pages of two the list shows two, then one."""
    for node_id in (FRONTEND, BACKEND, GREEN):
        envoys.connect(node_id)
        plane.wait_for_state(node_id, "SYNCED")
    monkeypatch.setattr("meshplane.console.listing.PAGE_SIZE", 2)
    browser = Browser(plane)
    browser.login(KEY.access_key_id, KEY.secret_access_key)
    _, _, first = browser.call("GET", "/console/?fragment=1")
    _, _, second = browser.call("GET", "/console/?px_page=2&fragment=1")
    summary = re.findall(r"state-(\w+)\">\w+</span> (\d+)", first.split('class="summary">')[1])
    assert summary == [("synced", "3"), ("stale", "0"), ("nacked", "0"), ("disconnected", "0")]
    assert re.findall(r'data-testid="state-([^"]+)">', first) == [BACKEND, GREEN]
    assert re.findall(r'data-testid="state-([^"]+)">', second) == [FRONTEND]
    assert 'href="/console/?px_page=2#section-px"' in first
