"""The control plane restarts on an empty data dir under load: Envoys are held, traffic flows.

``meshplane up --server URL`` runs the walkthrough against a separate ``meshplane
serve``. The test SIGKILLs the server, moves its data dir away (the store is lost)
and starts it again on an empty one. Every sidecar reconnects naming the config it
runs; the new store knows no mesh ``demos``, so each proxy is HELD — given nothing,
it keeps serving — instead of being emptied. Re-applying the manifests brings the
mesh back; the frontend stays held until the runtime has registered its
backends' endpoints with the new store (never an empty cluster in between), and
every proxy is SYNCED again and follows a weight change. Not one request fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from .harness import Serve, Up, admin_env, session
from .traffic import BLUE, GREEN, PROXIES, Load, Plane, appmesh, poll, route_spec, update_route

pytestmark = pytest.mark.integration

HELD_REQUESTS = 300
"""Requests that must be answered while the proxies are held by an empty store."""
HELD = (
    "mesh demos is not in the store, which did not delete it; the proxy keeps the config it "
    "runs until the store has it again (re-apply) or it is deleted explicitly"
)


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Up]]:
    """The control plane and the walkthrough's workloads, for this module alone."""
    yield from session(tmp_path_factory.mktemp("storeloss"))


def _held(plane: Plane) -> dict[str, str] | None:
    """Every walkthrough proxy's (state, reason) once all are connected and HELD."""
    proxies = plane.proxies()
    found = {key: proxies[key] for key in PROXIES if key in proxies}
    if len(found) != len(PROXIES) or any(p["state"] != "HELD" for p in found.values()):
        return None
    return {key: str(p["held"]) for key, p in found.items()}


def test_an_empty_store_holds_every_envoy_and_a_reapply_syncs_them(
    walkthrough: tuple[Serve, Up],
) -> None:
    """Restart on an empty data dir: no request fails, HELD, then re-apply: SYNCED."""
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    load = Load(up.port)
    with load.running():
        load.wait_for_more(60)
        serve.kill()
        # The store is lost; the data dir's keys stay (credentials, proxy-credential key),
        # as when a wrong or empty store file is put in place of the right one.
        lost = serve.workdir / "lost-data"
        lost.mkdir()
        for part in serve.data_dir.glob("meshplane.db*"):
            part.rename(lost / part.name)
        serve.start()
        assert plane.revision() == 0
        held = poll(lambda: _held(plane), 60, "every proxy to reconnect and be HELD")
        assert held == dict.fromkeys(PROXIES, HELD)
        before = load.answered
        load.wait_for_more(HELD_REQUESTS)
        assert load.answered - before >= HELD_REQUESTS
        assert _held(plane) == held  # nothing was pushed to them meanwhile
        manifests = sorted(p for p in up.directory.glob("*.yaml") if p.name != "workloads.yaml")
        done = subprocess.run(
            [sys.executable, "-m", "meshplane.cli.main", "apply", "--server", serve.url]
            + [arg for path in manifests for arg in ("-f", str(path))],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=admin_env(serve),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        plane.wait_converged()
        load.wait_for_more(60)
    print(f"restarted on an empty store under load: {load.summary()}")
    # Not one request fails: held, the Envoys keep what they run; after the re-apply the
    # frontend stays held until its backends' endpoints are registered again, so it never
    # gets an empty (or DNS) cluster in between.
    assert dict(load.failures) == {}, load.summary()
    assert set(load.versions) == {"1.0"}

    proxies = plane.proxies()
    assert {key: proxies[key]["state"] for key in PROXIES} == dict.fromkeys(PROXIES, "SYNCED")
    update_route(appmesh(serve.url, serve.data_dir), route_spec({BLUE: 0, GREEN: 100}))
    plane.wait_converged()
    load = Load(up.port)
    with load.running():
        load.wait_for_more(100)
    assert dict(load.failures) == {}, load.summary()
    assert load.versions["2.0"] >= 1
