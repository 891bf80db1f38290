"""The console in a real browser: Playwright drives Debian's chromium against a live plane.

The walkthrough's mesh (examples/echo) is applied through the manifests API; fake Envoys
(``FakeAdsClient.follow``) connect for the frontend and the blue backend on a loop of their
own. Waits are Playwright's ``expect(...)`` with a timeout, never sleeps. A failing test
leaves ``failure.png`` in its tmp dir.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_console_paging
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryResponse
from playwright import sync_api as playwright_sync
from playwright.sync_api import Page, expect

from meshplane.console import Console
from meshplane.console.credentials import GeneratedKey
from meshplane.envoy import resources
from meshplane.testing import ControlPlane, FakeAdsClient

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
KEY = GeneratedKey("MPCONBROWSER0000001", "browser-secret")
FRONTEND = "mesh/demos/virtualNode/vn-echo-frontend-blue"
BACKEND = "mesh/demos/virtualNode/vn-echo-backend-blue"
WAIT_MS = 10_000
"""Playwright's bound on each expectation (the change itself takes milliseconds)."""


class Envoys:
    """Fake Envoys on an event loop of their own thread, each following its node."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.port = plane.xds_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clients: list[FakeAdsClient] = []
        self.tasks: list[asyncio.Task[None]] = []

    def connect(
        self, node_id: str, reject: Callable[[DiscoveryResponse], str | None] = lambda _: None
    ) -> None:
        token = self.plane.proxy_credential(node_id)

        async def start() -> None:
            client = FakeAdsClient(self.port, node_id, credential=token)
            await client.__aenter__()
            self.clients.append(client)
            self.tasks.append(asyncio.create_task(client.follow(reject)))

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)

    def close(self) -> None:
        async def stop() -> None:
            for task in self.tasks:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            for client in self.clients:
                await client.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def walkthrough(directory: Path) -> Path:
    """The walkthrough's manifests (not the local-mode Workloads) copied into ``directory``."""
    directory.mkdir()
    for manifest in sorted(ECHO.glob("*.yaml")):
        if manifest.name != "workloads.yaml":
            shutil.copy(manifest, directory / manifest.name)
    return directory


def set_weights(manifests: Path, blue: int, green: int) -> Path:
    """Rewrite vr-echo-backend.yaml's two weights, as the walkthrough's edit does."""
    path = manifests / "vr-echo-backend.yaml"
    weights = iter((blue, green))
    path.write_text(
        re.sub(r"weight: \d+", lambda _: f"weight: {next(weights)}", path.read_text()),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path / "data", mounts=[Console(KEY).mount]) as running:
        running.apply(walkthrough(tmp_path / "manifests"))
        yield running


@pytest.fixture
def envoys(plane: ControlPlane) -> Iterator[Envoys]:
    fakes = Envoys(plane)
    yield fakes
    fakes.close()


@pytest.fixture
def page() -> Iterator[Page]:
    """A chromium page of its own browser (tests wrap their steps in screenshot_on_failure)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        opened = context.new_page()
        yield opened
        context.close()
        browser.close()


@contextlib.contextmanager
def screenshot_on_failure(page: Page, tmp_path: Path) -> Iterator[None]:
    """Save the page as ``failure.png`` in the test's tmp dir if the block raises."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise


def log_in(page: Page, plane: ControlPlane) -> None:
    page.goto(f"{plane.endpoint}/console/")
    expect(page).to_have_url(f"{plane.endpoint}/console/login")
    page.fill("input[name=access_key_id]", KEY.access_key_id)
    page.fill("input[name=secret_access_key]", KEY.secret_access_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{plane.endpoint}/console/")


def test_login_renders_the_mesh_and_a_weight_change_shows_live(
    plane: ControlPlane, envoys: Envoys, page: Page, tmp_path: Path
) -> None:
    """Log in, open demos, apply 50/50 through the API: the page shows it without a reload."""
    with screenshot_on_failure(page, tmp_path):
        envoys.connect(FRONTEND)
        plane.wait_for_state(FRONTEND, "SYNCED")
        log_in(page, plane)
        page.click("text=demos")
        expect(page.get_by_test_id("mesh-name")).to_have_text("demos")
        blue = page.get_by_test_id("weight-vr-echo-backend-vrr-echo-backend-vn-echo-backend-blue")
        green = page.get_by_test_id("weight-vr-echo-backend-vrr-echo-backend-vn-echo-backend-green")
        expect(blue).to_have_text("100")
        expect(green).to_have_text("0")
        expect(page.get_by_test_id(f"state-{FRONTEND}")).to_have_text("SYNCED")
        expect(page.locator("body.connected")).to_have_count(1)
        plane.apply(set_weights(tmp_path / "manifests", 50, 50))
        expect(blue).to_have_text("50", timeout=WAIT_MS)
        expect(green).to_have_text("50", timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "mesh.png"), full_page=True)


def test_a_nacked_proxy_shows_envoys_message(
    plane: ControlPlane, envoys: Envoys, page: Page, tmp_path: Path
) -> None:
    """A proxy that rejects its listeners turns NACKED on the open page, with the text."""
    with screenshot_on_failure(page, tmp_path):
        log_in(page, plane)
        page.goto(f"{plane.endpoint}/console/meshes/demos")
        expect(page.get_by_test_id("mesh-name")).to_have_text("demos")
        message = "Proto constraint validation failed: <port> out of range"

        def reject(response: DiscoveryResponse) -> str | None:
            return message if response.type_url == resources.LISTENER else None

        envoys.connect(BACKEND, reject)
        expect(page.get_by_test_id(f"state-{BACKEND}")).to_have_text("NACKED", timeout=WAIT_MS)
        expect(page.get_by_test_id(f"proxy-{BACKEND}").locator("li.nack")).to_have_text(
            f"Listener: {message}"
        )


def test_a_wrong_secret_stays_on_the_login_page(
    plane: ControlPlane, page: Page, tmp_path: Path
) -> None:
    """The form says why and sets no session."""
    with screenshot_on_failure(page, tmp_path):
        page.goto(f"{plane.endpoint}/console/login")
        page.fill("input[name=access_key_id]", KEY.access_key_id)
        page.fill("input[name=secret_access_key]", "nope")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_have_text(
            "Unknown access key id or wrong secret access key."
        )
        assert page.context.cookies() == []


def _log_in_as(page: Page, plane: ControlPlane, key_id: str, secret: str) -> None:
    page.goto(f"{plane.endpoint}/console/login")
    page.fill("input[name=access_key_id]", key_id)
    page.fill("input[name=secret_access_key]", secret)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{plane.endpoint}/console/")


def _edit(page: Page, blue: int, green: int) -> None:
    form = page.get_by_test_id("edit-vr-echo-backend-vrr-echo-backend")
    page.locator("details.edit summary").click()
    form.locator('input[name="weight:vn-echo-backend-blue"]').fill(str(blue))
    form.locator('input[name="weight:vn-echo-backend-green"]').fill(str(green))
    form.locator("button[type=submit]").click()


def test_a_principal_allowed_to_update_routes_edits_weights_and_a_denied_one_sees_why(
    plane: ControlPlane, page: Page, tmp_path: Path
) -> None:
    """The administrator submits 30/70 and the page shows it (so does the API); a principal
    that may only describe gets the refusal on the page and the weights stay 30/70."""
    keys = configparser.ConfigParser(interpolation=None)
    keys.read(plane.credentials_file)
    admin = keys["meshplane"]
    reader = plane.client().create_credentials(
        "reader",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "appmesh:Describe*", "Resource": "*"}],
        },
    )
    blue = page.get_by_test_id("weight-vr-echo-backend-vrr-echo-backend-vn-echo-backend-blue")
    green = page.get_by_test_id("weight-vr-echo-backend-vrr-echo-backend-vn-echo-backend-green")
    with screenshot_on_failure(page, tmp_path):
        _log_in_as(page, plane, admin["aws_access_key_id"], admin["aws_secret_access_key"])
        page.goto(f"{plane.endpoint}/console/meshes/demos")
        expect(blue).to_have_text("100")
        _edit(page, 30, 70)
        expect(page).to_have_url(f"{plane.endpoint}/console/meshes/demos")
        expect(blue).to_have_text("30", timeout=WAIT_MS)
        expect(green).to_have_text("70", timeout=WAIT_MS)
        route = plane.appmesh().describe_route(
            meshName="demos", virtualRouterName="vr-echo-backend", routeName="vrr-echo-backend"
        )["route"]
        targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
        assert [(t["virtualNode"], t["weight"]) for t in targets] == [
            ("vn-echo-backend-blue", 30),
            ("vn-echo-backend-green", 70),
        ]
        page.click("header button[type=submit]")  # log out
        _log_in_as(page, plane, reader["accessKeyId"], reader["secretAccessKey"])
        page.goto(f"{plane.endpoint}/console/meshes/demos")
        _edit(page, 100, 0)
        expect(page.get_by_role("alert")).to_have_text(
            "reader may not appmesh:UpdateRoute on arn:aws:appmesh:us-west-2:123456789012:"
            "mesh/demos/virtualRouter/vr-echo-backend/route/vrr-echo-backend: "
            "no statement allows it"
        )
        expect(blue).to_have_text("30")
        expect(green).to_have_text("70")
        page.screenshot(path=str(tmp_path / "denied.png"), full_page=True)


@pytest.fixture
def paged_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """The walkthrough plus 60 routers with a route each: 61 routers and routes, two pages."""
    with ControlPlane(tmp_path / "data", mounts=[Console(KEY).mount]) as running:
        running.apply(test_console_paging.paged_routers(tmp_path / "manifests"))
        yield running


def _names(page: Page, section: str) -> list[str]:
    """The first column of a section's table, as the browser shows it."""
    table = page.locator(f"#section-{section} ~ table").first
    return table.locator("tbody tr td:first-child").all_inner_texts()


def test_the_next_page_shows_the_next_names(
    paged_plane: ControlPlane, page: Page, tmp_path: Path
) -> None:
    """Routers 1-50 of 61 on the first page; "next" shows the last 11, "previous" goes back."""
    with screenshot_on_failure(page, tmp_path):
        log_in(page, paged_plane)
        page.goto(f"{paged_plane.endpoint}/console/meshes/demos")
        expect(page.get_by_test_id("count-vr")).to_have_text("61")
        expect(page.get_by_test_id("range-vr")).to_have_text("1\u201350 of 61")
        assert _names(page, "vr") == ["vr-echo-backend"] + [f"vr-page-{i:02d}" for i in range(49)]
        page.get_by_test_id("next-vr").click()
        expect(page).to_have_url(
            f"{paged_plane.endpoint}/console/meshes/demos?vr_page=2#section-vr"
        )
        expect(page.get_by_test_id("range-vr")).to_have_text("51\u201361 of 61")
        assert _names(page, "vr") == [f"vr-page-{i:02d}" for i in range(49, 60)]
        expect(page.get_by_test_id("next-vr")).to_have_count(0)
        page.get_by_test_id("prev-vr").click()
        expect(page.get_by_test_id("range-vr")).to_have_text("1\u201350 of 61")


def test_the_filter_finds_a_route_by_name(
    paged_plane: ControlPlane, page: Page, tmp_path: Path
) -> None:
    """Typing rt-page-42 into the filter leaves that route alone in the routes section."""
    with screenshot_on_failure(page, tmp_path):
        log_in(page, paged_plane)
        page.goto(f"{paged_plane.endpoint}/console/meshes/demos")
        page.get_by_test_id("filter").fill("rt-page-42")
        page.get_by_test_id("filter").press("Enter")
        expect(page).to_have_url(f"{paged_plane.endpoint}/console/meshes/demos?q=rt-page-42")
        routes = page.locator("#live td.route")
        expect(routes).to_have_text(["rt-page-42"])
        expect(page.get_by_test_id("router-vr-page-42")).to_have_count(1)
        expect(page.get_by_test_id("count-rt")).to_have_text("61")
        expect(page.get_by_test_id("filter")).to_have_value("rt-page-42")


def test_a_weight_change_shows_live_on_a_paged_page(
    paged_plane: ControlPlane, page: Page, tmp_path: Path
) -> None:
    """On the second page of routes, applying 40/60 to rt-page-55 shows without a reload and
    the page stays the second page."""
    blue = page.get_by_test_id("weight-vr-page-55-rt-page-55-vn-echo-backend-blue")
    green = page.get_by_test_id("weight-vr-page-55-rt-page-55-vn-echo-backend-green")
    with screenshot_on_failure(page, tmp_path):
        log_in(page, paged_plane)
        page.goto(f"{paged_plane.endpoint}/console/meshes/demos?rt_page=2")
        expect(page.get_by_test_id("range-rt")).to_have_text("51\u201361 of 61")
        expect(blue).to_have_text("100")
        expect(page.locator("body.connected")).to_have_count(1)
        paged_plane.apply(test_console_paging.paged_routers(tmp_path / "manifests", 40, 60))
        expect(blue).to_have_text("40", timeout=WAIT_MS)
        expect(green).to_have_text("60", timeout=WAIT_MS)
        expect(page.get_by_test_id("range-rt")).to_have_text("51\u201361 of 61")
        assert page.url == f"{paged_plane.endpoint}/console/meshes/demos?rt_page=2"


def test_the_meshes_list_pages_its_proxies_and_keeps_their_counts_live(
    plane: ControlPlane, envoys: Envoys, page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of one proxy, the list counts both; a NACK shows on the first page and in
    the counts without a reload; "next" shows the other proxy alone."""
    monkeypatch.setattr("meshplane.console.listing.PAGE_SIZE", 1)
    message = "Proto constraint validation failed: <port> out of range"
    summary = page.locator("p.summary")
    with screenshot_on_failure(page, tmp_path):
        envoys.connect(FRONTEND)
        plane.wait_for_state(FRONTEND, "SYNCED")
        log_in(page, plane)
        expect(summary).to_have_text("SYNCED 1 STALE 0 NACKED 0 DISCONNECTED 0")
        expect(page.locator("body.connected")).to_have_count(1)
        envoys.connect(BACKEND, lambda r: message if r.type_url == resources.LISTENER else None)
        expect(summary).to_have_text("SYNCED 1 STALE 0 NACKED 1 DISCONNECTED 0", timeout=WAIT_MS)
        expect(page.get_by_test_id(f"state-{BACKEND}")).to_have_text("NACKED")
        expect(page.get_by_test_id(f"state-{FRONTEND}")).to_have_count(0)
        page.get_by_test_id("next-px").click()
        expect(page).to_have_url(f"{plane.endpoint}/console/?px_page=2#section-px")
        expect(page.get_by_test_id(f"state-{FRONTEND}")).to_have_text("SYNCED")
        expect(page.get_by_test_id(f"state-{BACKEND}")).to_have_count(0)
        expect(page.get_by_test_id("range-px")).to_have_text("2\u20132 of 2")
