"""Console: page load time with a mesh at ten times App Mesh's quotas, measured in the browser.

The mesh of :mod:`bench.mesh_scale` (2,000 virtual nodes with 2 backends each, 2,000 virtual
services, 500 routers with 10 routes each weighting two nodes: 9,501 resources) is written
through the service layer before the control plane serves, then Debian's chromium
(Playwright) logs in and loads each page ``--loads`` times. The number is the browser's
navigation timing (request sent → ``load`` event: server render, transfer, parse and layout
of the whole page), with the page size, and beside it the same page fetched without a
browser (the server's share: render and transfer on loopback).

``--before REV`` measures side by side in one run: the tree of git revision ``REV``
(``git archive``) and this tree each serve the same mesh from a process of their own
(``--serve``; this bench's code, the other revision's ``meshplane``), and every load
alternates between the two, so both see the same machine load. Pages that only a paged
console has (a filter, a later page, one service's graph) are measured on this tree alone
when ``REV`` predates paging. ``--proxies N`` connects N fake Envoys (each SYNCED) to each
server first, so the pages' proxy sections and sync states cost what they do in a served
mesh. The server column is the browser's own request → first byte.

Run: ``python -m bench.console_pageload [--before 0395047] [--loads 20] [--proxies 1000]``
(needs ``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from playwright.sync_api import BrowserContext, sync_playwright

from bench.mesh_scale import MESH, NODES, ROUTERS, ROUTES_PER_ROUTER, SERVICES, _node, _route
from meshplane import app, settings
from meshplane.console import Console
from meshplane.console.credentials import GeneratedKey
from meshplane.model import kinds
from meshplane.testing import FakeAdsClient

LOADS = 20
CHROMIUM = "/usr/bin/chromium"
KEY_ID, SECRET = "MPCONBENCH000000002", "bench-secret"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NAVIGATION = (
    "(() => { const n = performance.getEntriesByType('navigation')[0];"
    " return [n.duration, n.responseStart - n.requestStart]; })()"
)
"""The browser's load time and its time to the first byte (the server's share, seen from it)."""
ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    ("meshes list", "/console/", True),
    ("mesh page", f"/console/meshes/{MESH}", True),
    ("mesh page, filter", f"/console/meshes/{MESH}?q=rt-07", False),
    ("mesh page, routes p.40", f"/console/meshes/{MESH}?rt_page=40", False),
    ("mesh page, 1 service", f"/console/meshes/{MESH}?service=vs-0000.local", False),
)
"""(label, path, measured on both trees): the last three only when both trees page."""


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


async def _connect(plane: app.ControlPlane, port: int, proxies: int) -> list[asyncio.Task[None]]:
    """``proxies`` fake Envoys following nodes vn-0000…, each SYNCED before this returns."""
    clients = []
    for index in range(proxies):
        client = FakeAdsClient(
            port, f"mesh/{MESH}/virtualNode/{_node(index % NODES)[0]}", str(index)
        )
        await client.__aenter__()
        clients.append(client)
    tasks = [asyncio.create_task(client.follow()) for client in clients]
    # Checked twice a second: waking at every ACK would build every view thousands of times.
    async with asyncio.timeout(1800):
        while sum(view["state"] == "SYNCED" for view in plane.views.proxies()) < proxies:
            await asyncio.sleep(0.5)
    return tasks


async def _serve(proxies: int) -> None:
    """``--serve``: build the mesh, serve it with the console, print the endpoint, wait for EOF."""
    with tempfile.TemporaryDirectory() as tmp:
        config = settings.load(
            environ={},
            data_dir=Path(tmp),
            api_port=0,
            xds_port=0,
            quotas=settings.Quotas().scaled(10),
            # The fake Envoys stand for sidecars only to give the page proxies to show.
            xds_auth=False,
        )
        plane = app.build(config)
        began = time.perf_counter()
        written = _build(plane)
        print(f"wrote {written} resources in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        web_console = Console(GeneratedKey(KEY_ID, SECRET))
        async with app.running(plane, [web_console.mount]) as running:
            began = time.perf_counter()
            following = await _connect(plane, running.xds_port, proxies)
            if proxies:
                took = time.perf_counter() - began
                print(f"{proxies} proxies synced in {took:.1f} s", file=sys.stderr)
            print(f"ENDPOINT http://127.0.0.1:{running.api_port}", flush=True)
            await asyncio.to_thread(sys.stdin.read)  # the measuring process closes it when done
            for task in following:
                task.cancel()


@contextlib.contextmanager
def _server(label: str, source: Path, proxies: int) -> Iterator[tuple[str, str]]:
    """A ``--serve`` process whose ``meshplane`` is the one under ``source``: (label, endpoint)."""
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{ROOT}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.console_pageload", "--serve", "--proxies", str(proxies)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        text=True,
    )
    try:
        stdout: IO[str] = process.stdout  # type: ignore[assignment]  # piped above
        line = stdout.readline()
        if not line.startswith("ENDPOINT "):
            raise RuntimeError(f"{label}: the server did not start ({line!r})")
        yield label, line.split()[1]
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=60)


def _log_in(context: BrowserContext, endpoint: str) -> None:
    page = context.new_page()
    page.goto(f"{endpoint}/console/login")
    page.fill("input[name=access_key_id]", KEY_ID)
    page.fill("input[name=secret_access_key]", SECRET)
    page.click("button[type=submit]")
    page.wait_for_url(f"{endpoint}/console/")
    page.close()


def _measure(servers: list[tuple[str, str]], loads: int, paged: bool) -> dict[tuple[str, str], Any]:
    """Per (page, tree): browser durations, fetch durations (ms) and the HTML size."""
    found: dict[tuple[str, str], Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        # One context per server: cookies ignore the port, so the sessions must not share one.
        contexts = {label: browser.new_context() for label, _ in servers}
        for label, endpoint in servers:
            _log_in(contexts[label], endpoint)
        tabs = {label: contexts[label].new_page() for label, _ in servers}
        for page_label, path, on_both in PAGES:
            chosen = servers if on_both or paged else servers[-1:]
            # A fresh session per page: the old tree's loads outlast a 15-minute session.
            for label, endpoint in chosen:
                _log_in(contexts[label], endpoint)
            runs: dict[str, tuple[list[float], list[float], list[float], int]] = {
                label: ([], [], [], 0) for label, _ in chosen
            }
            for _ in range(loads):
                for label, endpoint in chosen:  # alternate: both trees see the same load
                    browser_ms, first_byte_ms, fetch_ms, _size = runs[label]
                    answer = tabs[label].goto(f"{endpoint}{path}", wait_until="load", timeout=0)
                    if answer is None or answer.status != 200:
                        raise RuntimeError(f"{path}: {answer.status if answer else 'no answer'}")
                    if tabs[label].url != f"{endpoint}{path}":  # sent to the login form
                        raise RuntimeError(f"{path}: ended at {tabs[label].url}")
                    loaded, first_byte = tabs[label].evaluate(NAVIGATION)
                    browser_ms.append(float(loaded))
                    first_byte_ms.append(float(first_byte))
                    cookie = "; ".join(
                        f"{c['name']}={c['value']}" for c in contexts[label].cookies()
                    )
                    began = time.perf_counter()
                    request = urllib.request.Request(
                        f"{endpoint}{path}", headers={"Cookie": cookie}
                    )
                    with DIRECT.open(request, timeout=600) as answered:
                        if answered.geturl() != f"{endpoint}{path}":
                            raise RuntimeError(f"{path}: fetched {answered.geturl()}")
                        size = len(answered.read())
                    fetch_ms.append((time.perf_counter() - began) * 1000)
                    runs[label] = (browser_ms, first_byte_ms, fetch_ms, size)
            for label, run in runs.items():
                found[(page_label, label)] = run
        browser.close()
    return found


def _quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main(before: str | None = None, loads: int = LOADS, proxies: int = 0) -> None:
    """Serve the mesh from this tree (and ``before``'s), measure, print one row per page."""
    if not Path(CHROMIUM).exists():
        print(f"console page loads: skipped ({CHROMIUM} is not installed; `make chromium`)")
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers: list[tuple[str, str]] = []
        paged = True
        if before is not None:
            archive = Path(tmp) / "before.tar"
            subprocess.run(
                ["git", "archive", "--output", str(archive), before, "src"], cwd=ROOT, check=True
            )
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / "before", filter="data")
            source = Path(tmp) / "before" / "src"
            paged = (source / "meshplane" / "console" / "listing.py").exists()
            servers.append(stack.enter_context(_server(f"{before}", source, proxies)))
        servers.append(stack.enter_context(_server("this tree", ROOT / "src", proxies)))
        results = _measure(servers, loads, paged)
    print(
        "browser: navigation start → load event; server: the browser's request sent → first "
        "byte; fetch: the same page without a browser"
    )
    print(
        f"{'page':<24}{'tree':<11}{'browser p50':>12}{'p99':>9}{'server p50':>12}{'p99':>9}"
        f"{'fetch p50':>11}{'p99':>9}  HTML"
    )
    for (page_label, label), (browser_ms, first_byte_ms, fetch_ms, size) in results.items():
        print(
            f"{page_label:<24}{label:<11}{statistics.median(browser_ms):10.1f}ms"
            f"{_quantile(browser_ms, 99):7.1f}ms{statistics.median(first_byte_ms):10.1f}ms"
            f"{_quantile(first_byte_ms, 99):7.1f}ms{statistics.median(fetch_ms):9.1f}ms"
            f"{_quantile(fetch_ms, 99):7.1f}ms  {size / 1024:.0f} KiB ({loads} loads)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a git revision measured side by side with this tree")
    parser.add_argument("--loads", type=int, default=LOADS, help="loads per page and tree")
    parser.add_argument(
        "--proxies", type=int, default=0, help="fake Envoys connected (SYNCED) before loading"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(_serve(arguments.proxies))
    else:
        main(arguments.before, arguments.loads, arguments.proxies)
