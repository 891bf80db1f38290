"""Console: page load time with a mesh at ten times App Mesh's quotas, measured in the browser.

The mesh of :mod:`bench.mesh_scale` (2,000 virtual nodes with 2 backends each, 2,000 virtual
services, 500 routers with 10 routes each weighting two nodes: 9,501 resources) is written
through the service layer before the control plane serves, then Debian's chromium
(Playwright) logs in and loads the meshes list and the mesh's page ``LOADS`` times each. The
number is the browser's navigation timing (request sent → ``load`` event: server render,
transfer, parse and layout of the whole page), with the page size, and beside it the same
page fetched without a browser (the server's share); the topology of a mesh
this large is a sentence, not a picture (``topology.MAX_BOXES``).

Run: ``python -m bench.console_pageload`` (needs ``/usr/bin/chromium``).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from bench.mesh_scale import MESH, NODES, ROUTERS, ROUTES_PER_ROUTER, SERVICES, _node, _route
from meshplane import app, settings
from meshplane.console import Console
from meshplane.console.credentials import GeneratedKey
from meshplane.model import kinds

LOADS = 5
CHROMIUM = "/usr/bin/chromium"
KEY = GeneratedKey("MPCONBENCH000000002", "bench-secret")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NAVIGATION = "performance.getEntriesByType('navigation')[0].duration"


def _build(plane: app.ControlPlane) -> int:
    """Write the mesh through the service layer; the number of resources written."""
    create = plane.services.resources.create
    create(kinds.MESH, MESH, MESH, {})
    for index in range(NODES):
        name, spec = _node(index)
        create(kinds.VIRTUAL_NODE, MESH, name, spec)
    listeners = {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}
    for router in range(ROUTERS):
        create(kinds.VIRTUAL_ROUTER, MESH, f"vr-{router:03d}", listeners)
        for index in range(ROUTES_PER_ROUTER):
            spec = _route(router, index)
            create(kinds.ROUTE, MESH, f"rt-{index:02d}", spec, parent=f"vr-{router:03d}")
    for index in range(SERVICES):
        if index < ROUTERS:
            provider: dict[str, Any] = {"virtualRouter": {"virtualRouterName": f"vr-{index:03d}"}}
        else:
            provider = {"virtualNode": {"virtualNodeName": f"vn-{index % NODES:04d}"}}
        create(kinds.VIRTUAL_SERVICE, MESH, f"vs-{index:04d}.local", {"provider": provider})
    return 1 + NODES + ROUTERS * (1 + ROUTES_PER_ROUTER) + SERVICES


def _measure(endpoint: str) -> dict[str, tuple[list[float], int]]:
    """Per page: navigation durations (ms) over ``LOADS`` loads, and the HTML size."""
    found: dict[str, tuple[list[float], int]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        page.goto(f"{endpoint}/console/login")
        page.fill("input[name=access_key_id]", KEY.access_key_id)
        page.fill("input[name=secret_access_key]", KEY.secret_access_key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{endpoint}/console/")
        for label, path in (("meshes list", "/console/"), ("mesh page", f"/console/meshes/{MESH}")):
            durations = []
            size = 0
            for _ in range(LOADS):
                answer = page.goto(f"{endpoint}{path}", wait_until="load", timeout=600_000)
                if answer is None or answer.status != 200:
                    raise RuntimeError(f"{path}: {answer.status if answer else 'no answer'}")
                size = len(answer.body())
                durations.append(float(page.evaluate(NAVIGATION)))
            found[label] = (durations, size)
            # The server's share: the same page fetched without a browser, with the session.
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
            fetches = []
            for _ in range(LOADS):
                began = time.perf_counter()
                request = urllib.request.Request(f"{endpoint}{path}", headers={"Cookie": cookie})
                with DIRECT.open(request, timeout=600) as answered:
                    answered.read()
                fetches.append((time.perf_counter() - began) * 1000)
            found[f"{label} (server)"] = (fetches, size)
        browser.close()
    return found


async def _run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = settings.load(
            environ={},
            data_dir=Path(tmp),
            api_port=0,
            xds_port=0,
            quotas=settings.Quotas().scaled(10),
        )
        plane = app.build(config)
        began = time.perf_counter()
        written = _build(plane)
        print(f"wrote {written} resources in {time.perf_counter() - began:.1f} s")
        web_console = Console(KEY)
        async with app.running(plane, [web_console.mount]) as running:
            endpoint = f"http://127.0.0.1:{running.api_port}"
            results = await asyncio.to_thread(_measure, endpoint)
    for label, (durations, size) in results.items():
        print(
            f"{label:<21} load p50 {statistics.median(durations):7.1f} ms  "
            f"min {min(durations):7.1f}  max {max(durations):7.1f}  "
            f"({LOADS} loads, {size / 1024:.0f} KiB HTML)"
        )


if __name__ == "__main__":
    asyncio.run(_run())
