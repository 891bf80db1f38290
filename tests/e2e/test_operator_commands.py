"""The operator's views of the running walkthrough: stats, ``top``, ``proxy-status``, console.

One ``meshplane serve`` and one ``meshplane up`` serve the module, as in
``test_walkthrough``; traffic is real (keep-alive clients through the published frontend,
the frontend's Envoy, the backends' Envoys), and every number is read from Envoy's stats.
The console test drives Debian's chromium with Playwright (``failure.png`` in its tmp dir
when it fails); its waits are ``expect(...)`` with a timeout, never sleeps.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_sync
from playwright.sync_api import expect

from meshplane import client

from .harness import Serve, Up, admin_env, apply_weights, session
from .traffic import BLUE, GREEN, PROXIES, Load, Plane

pytestmark = pytest.mark.integration

FRONTEND_NODE = "vn-echo-frontend-blue"
CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 20_000
"""Playwright's bound on each expectation (labels change every second)."""
LIVE = re.compile(r"^[1-9][0-9.]* rps · 100% ok · p50 [0-9.]+ ms · p99 [0-9.]+ ms$")
"""A label of a target that gets traffic, all of it answered."""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Up]]:
    """The control plane and the walkthrough's workloads, shared by the module."""
    yield from session(tmp_path_factory.mktemp("operator"))


def _meshplane(serve: Serve, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", *args, "--server", serve.url],
        env=admin_env(serve),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _top(serve: Serve, up: Up) -> dict[tuple[str, str], dict[str, Any]]:
    """``top --once -o json`` while traffic flows: rows by (kind, node)."""
    load = Load(up.port, threads=2)
    with load.running():
        load.wait_for_more(50)  # traffic flows before the first reading
        done = _meshplane(serve, "top", "--once", "--interval", "2", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.failures == {}, load.summary()
    answer = json.loads(done.stdout)
    assert answer["seconds"] >= 2
    return {(row["kind"], row["name"]): row for row in answer["rows"]}


def test_top_shows_the_weighted_split_and_follows_a_shift(walkthrough: tuple[Serve, Up]) -> None:
    """At 100/0 only blue gets traffic (from 1 caller, 100 % success, p50/p99 known); at
    0/100 only green does; each backend node's own row agrees; the frontend received it all."""
    serve, up = walkthrough
    for blue, green, busy, idle in ((100, 0, BLUE, GREEN), (0, 100, GREEN, BLUE)):
        apply_weights(up.directory, serve, blue, green)
        Plane(serve.url, serve.data_dir).wait_converged()
        rows = _top(serve, up)
        target = rows[("target", busy)]
        assert (target["mesh"], target["proxies"], target["success"]) == ("demos", 1, 100.0)
        assert target["requests"] > 0
        assert target["rps"] > 0
        assert target["p50"] is not None
        assert target["p99"] is not None
        assert target["p50"] <= target["p99"]
        assert rows.get(("target", idle), {"requests": 0})["requests"] == 0
        node = rows[("node", busy)]
        assert (node["proxies"], node["success"]) == (1, 100.0)
        assert node["requests"] > 0
        assert rows.get(("node", idle), {"requests": 0})["requests"] == 0
        frontend = rows[("node", FRONTEND_NODE)]
        assert frontend["success"] == 100.0
        assert frontend["requests"] > 0


def test_proxy_status_and_the_control_plane_name_each_sidecars_stats_listener(
    walkthrough: tuple[Serve, Up],
) -> None:
    """proxy-status -o json gives every sidecar a loopback stats address, and
    /meshplane/v1/proxies/stats reads that Envoy's stats (its own node id in them)."""
    serve, _ = walkthrough
    done = _meshplane(serve, "proxy-status", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    proxies = {p["key"]: p for p in json.loads(done.stdout)["proxies"]}
    assert sorted(proxies) == sorted(PROXIES)
    addresses = {p["stats"] for p in proxies.values()}
    assert len(addresses) == 3
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    signer = client.Signer.from_file(serve.data_dir / "credentials", "us-west-2")
    plane = client.MeshplaneClient(client.Transport(serve.url, signer=signer, trust_env=False))
    for key in PROXIES:
        text = plane.proxy_stats(key)
        assert "envoy_server_live{} 1" in text.splitlines()
    table = _meshplane(serve, "proxy-status")
    assert " STATS " in table.stdout
    for address in addresses:
        assert address in table.stdout


def test_console_topology_shows_live_traffic_that_moves_and_follows_a_shift(
    walkthrough: tuple[Serve, Up], tmp_path: Path
) -> None:
    """While traffic flows the route's edge to blue shows a non-zero rps at 100 % with p50/p99,
    its numbers change, green shows none; after 0/100 green carries it and blue drops to 0."""
    serve, up = walkthrough
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    apply_weights(up.directory, serve, 100, 0)
    Plane(serve.url, serve.data_dir).wait_converged()
    # A first start prints a console-only key (the credentials file did not exist yet).
    login = re.search(r"login: (MPCON\w+) / (\S+)", serve.log.read_text())
    assert login is not None, serve.log.read_text()
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{serve.url}/console/login")
            page.fill("input[name=access_key_id]", login[1])
            page.fill("input[name=secret_access_key]", login[2])
            page.click("button[type=submit]")
            page.goto(f"{serve.url}/console/meshes/demos")
            expect(page.get_by_test_id("topology")).to_have_count(1)
            blue = page.locator('[data-traffic="target/demos/vn-echo-backend-blue"]')
            green = page.locator('[data-traffic="target/demos/vn-echo-backend-green"]')
            load = Load(up.port, threads=2)
            with load.running():
                expect(blue).to_have_text(LIVE, timeout=WAIT_MS)
                first = blue.text_content()
                expect(blue).not_to_have_text(first or "", timeout=WAIT_MS)
                expect(blue).to_have_text(LIVE, timeout=WAIT_MS)
                assert green.text_content() in {"no traffic", "0 rps"}
                apply_weights(up.directory, serve, 0, 100)
                expect(green).to_have_text(LIVE, timeout=WAIT_MS)
                expect(blue).to_have_text("0 rps", timeout=WAIT_MS)
            assert load.failures == {}, load.summary()
            page.screenshot(path=str(tmp_path / "topology.png"), full_page=True)
        except BaseException:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _logs(up: Up, *args: str) -> list[str]:
    """Plain lines of ``meshplane logs ARGS`` for up's data dir (it ran in its directory)."""
    done = subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", "logs", *args],
        cwd=up.directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout.splitlines()


def test_logs_prints_what_up_printed_for_each_app_and_envoy(walkthrough: tuple[Serve, Up]) -> None:
    """`meshplane logs W` is the app's own output (the lines up printed as `W-0 | …`), and
    `-c envoy` its sidecar's; nothing of the other replica's or container's."""
    _, up = walkthrough
    app = _logs(up, "echo-frontend-blue")
    assert len(app) == 1, app
    assert re.fullmatch(
        r"echo-frontend 2\.0 listening on 127\.0\.0\.1:\d+, backend http://vs-echo-backend:80 "
        r"via proxy http://127\.0\.0\.1:\d+",
        app[0],
    ), app
    printed = up.log.read_text().splitlines()
    assert f"echo-frontend-blue-0 | {app[0]}" in printed
    green = _port_of(up, "echo-backend-green-0")
    assert _logs(up, "echo-backend-green") == [f"echo-backend 2.0 listening on {green}"]
    for line in _logs(up, "echo-backend-blue", "-c", "envoy"):
        assert f"echo-backend-blue-0 envoy | {line}" in printed


def _port_of(up: Up, replica: str) -> str:
    """``127.0.0.1:<app port>`` of ``replica``, from the line up printed for it."""
    for line in up.log.read_text().splitlines():
        if line.startswith(f"{replica} | echo-backend ") and " listening on " in line:
            return line.rsplit(" ", 1)[1]
    raise AssertionError(f"up printed no listening line for {replica}")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_logs_follow_shows_a_crash_and_the_restart_as_they_happen(
    walkthrough: tuple[Serve, Up],
) -> None:
    """`logs -f` of blue's backend (idle at 0/100) prints, after its app is SIGKILLed, the
    supervisor's restart line and the new process's first line; Ctrl-C ends it with 0."""
    _, up = walkthrough
    apply_weights(up.directory, walkthrough[0], 0, 100)
    pids = [p for p in up.processes() if _environ(p).get("HOSTNAME") == "echo-backend-blue-0"]
    app = [p for p in pids if Path(f"/proc/{p}/cmdline").read_bytes().find(b"echo_backend") >= 0]
    assert len(app) == 1, pids
    command = [sys.executable, "-m", "meshplane.cli.main", "logs", "echo-backend-blue", "-f"]
    with subprocess.Popen(command, cwd=up.directory, stdout=subprocess.PIPE) as follower:
        assert follower.stdout is not None
        try:
            first = follower.stdout.readline().decode()
            assert first.startswith("echo-backend 1.0 listening on 127.0.0.1:"), first
            os.kill(app[0], signal.SIGKILL)
            assert follower.stdout.readline().decode() == "signal SIGKILL; restarting in 0.5s\n"
            again = follower.stdout.readline().decode()
            assert again.startswith("echo-backend 1.0 listening on 127.0.0.1:"), again
        finally:
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=60) == 0


STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)")
"""A ``logs --timestamps`` line: RFC 3339 in UTC with nanoseconds, a space, the line."""


def test_logs_previous_is_the_run_before_the_restart_and_timestamps_when_each_line_came(
    walkthrough: tuple[Serve, Up],
) -> None:
    """Blue's backend app SIGKILLed: `logs --previous` is the run that died (its lines and the
    supervisor's restart line), `logs` the new run alone; `--timestamps` prefixes each line
    with the time up wrote it (in order, the restart line between the kill and the restart);
    `--previous` of a container that never restarted is one line, exit 1."""
    _, up = walkthrough
    apply_weights(up.directory, walkthrough[0], 0, 100)
    pids = [p for p in up.processes() if _environ(p).get("HOSTNAME") == "echo-backend-blue-0"]
    app = [p for p in pids if Path(f"/proc/{p}/cmdline").read_bytes().find(b"echo_backend") >= 0]
    assert len(app) == 1, pids
    before = _logs(up, "echo-backend-blue")
    assert before, "the running app printed its listening line"
    command = [sys.executable, "-m", "meshplane.cli.main", "logs", "echo-backend-blue", "-f"]
    with subprocess.Popen(command, cwd=up.directory, stdout=subprocess.PIPE) as follower:
        assert follower.stdout is not None
        try:
            assert follower.stdout.readline().decode().rstrip("\n") == before[-1]
            killed_at = datetime.datetime.now(datetime.UTC)
            os.kill(app[0], signal.SIGKILL)
            died = follower.stdout.readline().decode().rstrip("\n")
            assert re.fullmatch(r"signal SIGKILL; restarting in \d+\.\ds", died), died
            again = follower.stdout.readline().decode().rstrip("\n")
            assert again.startswith("echo-backend 1.0 listening on 127.0.0.1:"), again
            restarted_at = datetime.datetime.now(datetime.UTC)
        finally:
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=60) == 0
    assert _logs(up, "echo-backend-blue", "--previous") == [*before, died]
    assert _logs(up, "echo-backend-blue") == [again]
    stamped = [
        STAMPED.fullmatch(line) for line in _logs(up, "echo-backend-blue", "-p", "--timestamps")
    ]
    assert all(stamped), stamped
    assert [m.group(2) for m in stamped if m] == [*before, died]
    times = [datetime.datetime.fromisoformat(m.group(1)[:26] + "+00:00") for m in stamped if m]
    assert times == sorted(times)
    assert killed_at - datetime.timedelta(milliseconds=1) <= times[-1] <= restarted_at
    done = subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", "logs", "echo-backend-green", "--previous"],
        cwd=up.directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        'error: previous terminated app container of replica 0 of "echo-backend-green" not '
        "found (it has not restarted since `up` started it)\n"
    )


def test_analyze_live_warns_of_a_node_no_workload_of_up_runs(
    walkthrough: tuple[Serve, Up], tmp_path: Path
) -> None:
    """With up's three workloads running (their Envoys connected, replicas registered)
    `analyze` finds nothing; a VirtualNode applied that no workload selects is one
    unselected-node warning (exit 0); deleted, nothing again."""
    serve, _ = walkthrough
    done = _meshplane(serve, "analyze")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "0 error(s), 0 warning(s)\n")
    lonely = tmp_path / "vn-lonely.yaml"
    lonely.write_text(
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
        "metadata: {name: vn-lonely, namespace: demos}\n"
        "spec:\n  awsName: vn-lonely\n  podSelector: {matchLabels: {app: lonely}}\n"
        "  listeners: [{portMapping: {port: 80, protocol: http}}]\n"
        "  serviceDiscovery: {dns: {hostname: lonely}}\n"
    )
    assert _meshplane(serve, "apply", "-f", str(lonely)).returncode == 0
    try:
        done = _meshplane(serve, "analyze")
        assert (done.returncode, done.stderr) == (0, "0 error(s), 1 warning(s)\n")
        assert done.stdout == (
            "WARNING unselected-node  virtualnode/vn-lonely: no Envoy has connected as it and "
            "no replica is registered for it, while 3 other node(s) of mesh demos run: no "
            "workload selects it, so it gets no endpoints and its callers get 503\n"
        )
    finally:
        assert _meshplane(serve, "delete", "-f", str(lonely)).returncode == 0
    done = _meshplane(serve, "analyze")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "0 error(s), 0 warning(s)\n")
