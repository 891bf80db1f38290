"""Console: time from a weight change applied through the API to the page showing it.

A control plane with the console (in-process, ``meshplane.testing``), the walkthrough's
mesh applied, one fake Envoy following the frontend, and Debian's chromium (Playwright)
logged in on the demos page. Each of ``CHANGES`` rounds rewrites vr-echo-backend.yaml's
weights and applies it through the manifests API; a MutationObserver in the page stamps
``Date.now()`` when the blue weight's text becomes the new value, so the number is measured
in the browser (same machine clock as the ``time.time()`` taken before the apply): apply
request + store commit + sync pass + event stream + fragment fetch + DOM swap.

Run: ``python -m bench.console_latency`` (needs ``/usr/bin/chromium``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from meshplane.console import Console
from meshplane.console.credentials import GeneratedKey
from meshplane.testing import ControlPlane, FakeAdsClient

CHANGES = 20
CHROMIUM = "/usr/bin/chromium"
ECHO = Path(__file__).resolve().parents[1] / "examples" / "echo"
KEY = GeneratedKey("MPCONBENCH000000001", "bench-secret")
FRONTEND = "mesh/demos/virtualNode/vn-echo-frontend-blue"
BLUE = "weight-vr-echo-backend-vrr-echo-backend-vn-echo-backend-blue"
WATCH = """
(expected) => { window.meshplaneSeen = new Promise((resolve) => {
  const seen = () => document.querySelector('[data-testid="BLUE"]')?.textContent === expected;
  if (seen()) { resolve(Date.now()); return; }
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); resolve(Date.now()); }
  });
  observer.observe(document.getElementById("live"), {childList: true, subtree: true});
}); }
""".replace("BLUE", BLUE)


def _follow(port: int, credential: str, stop: threading.Event) -> None:
    async def run() -> None:
        async with FakeAdsClient(port, FRONTEND, credential=credential) as envoy:
            following = asyncio.create_task(envoy.follow())
            while not stop.is_set():
                await asyncio.to_thread(stop.wait, 1.0)
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    asyncio.run(run())


def _weighted(manifest: str, blue: int, green: int) -> str:
    """``manifest`` with its two ``weight:`` values replaced by ``blue`` and ``green``."""
    weights = iter((blue, green))
    return re.sub(r"weight: \d+", lambda _: f"weight: {next(weights)}", manifest)


def main() -> None:
    """Print p50/p99/max of apply → weight visible in the page over ``CHANGES`` changes."""
    if not Path(CHROMIUM).exists():
        print(f"console latency: skipped ({CHROMIUM} is not installed; `make chromium`)")
        return
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        manifests = work / "manifests"
        manifests.mkdir()
        for manifest in ECHO.glob("*.yaml"):
            if manifest.name != "workloads.yaml":
                shutil.copy(manifest, manifests)
        router = manifests / "vr-echo-backend.yaml"
        with ControlPlane(work / "data", mounts=[Console(KEY).mount]) as plane:
            plane.apply(manifests)
            stop = threading.Event()
            # Auth is on: the fake Envoy shows its node's stream token, as a real one would.
            credential = plane.proxy_credential(FRONTEND)
            envoy = threading.Thread(
                target=_follow, args=(plane.xds_port, credential, stop), daemon=True
            )
            envoy.start()
            plane.wait_for_state(FRONTEND, "SYNCED")
            seconds = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = browser.new_page()
                page.goto(f"{plane.endpoint}/console/login")
                page.fill("input[name=access_key_id]", KEY.access_key_id)
                page.fill("input[name=secret_access_key]", KEY.secret_access_key)
                page.click("button[type=submit]")
                page.goto(f"{plane.endpoint}/console/meshes/demos")
                page.wait_for_selector("body.connected")
                text = router.read_text(encoding="utf-8")
                for change in range(CHANGES):
                    blue = 99 - change
                    router.write_text(_weighted(text, blue, 100 - blue), encoding="utf-8")
                    page.evaluate(WATCH, str(blue))  # arms the observer; returns at once
                    started = time.time()
                    plane.apply(router)
                    seen_ms = page.evaluate("() => window.meshplaneSeen")
                    seconds.append(seen_ms / 1000 - started)
                browser.close()
            stop.set()
            envoy.join(timeout=30)
    ms = sorted(s * 1000 for s in seconds)
    print(f"console: apply -> weight visible in the page, {CHANGES} changes (measured in chromium)")
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    print(f"  p50 {statistics.median(ms):.1f} ms   p99 {p99:.1f} ms   max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
    sys.exit(0)
