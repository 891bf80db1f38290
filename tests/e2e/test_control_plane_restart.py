"""The control plane dies under load and comes back: Envoy carries on, then resyncs.

``meshplane up --server URL`` runs the walkthrough against a separate
``meshplane serve``; the test SIGKILLs that server (no shutdown code runs), keeps
sending traffic through the published frontend, restarts the server on the same
ports and data dir, and checks that every sidecar reconnects, runs the current
config again, and follows a new weight change.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Serve, Up, session
from .traffic import BLUE, GREEN, PROXIES, Load, Plane, appmesh, route_spec, sample, update_route

pytestmark = pytest.mark.integration

OUTAGE_REQUESTS = 300
"""Requests that must succeed while no control plane runs."""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Up]]:
    """The control plane and the walkthrough's workloads, for this module alone."""
    yield from session(tmp_path_factory.mktemp("restart"))


def test_killed_control_plane_keeps_traffic_and_restart_resyncs_every_envoy(
    walkthrough: tuple[Serve, Up],
) -> None:
    """SIGKILL serve: no request fails; restarted in place: all Envoys resync and follow 0/100."""
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    update_route(appmesh(serve.url, serve.data_dir), route_spec({BLUE: 100, GREEN: 0}))
    plane.wait_converged()
    envoys = {pid for pid, name in up.processes().items() if name == "envoy"}
    assert len(envoys) == 3

    load = Load(up.port)
    with load.running():
        load.wait_for_more(60)
        serve.kill()
        assert not plane.reachable()
        before_outage = load.answered
        load.wait_for_more(OUTAGE_REQUESTS)
        during_outage = load.answered - before_outage
        assert not plane.reachable(), "the control plane came back on its own"
        serve.start()
        plane.wait_converged()  # a fresh process: connected means reconnected
        load.wait_for_more(60)
    print(f"control plane killed and restarted under load: {load.summary()}")
    assert dict(load.failures) == {}, load.summary()
    assert during_outage >= OUTAGE_REQUESTS
    assert dict(load.versions) == {"1.0": load.ok}

    # The same sidecars reconnected (none was restarted) and all run the stored config.
    assert up.process is not None
    assert up.process.poll() is None, "meshplane up ended with its control plane"
    assert {pid for pid, name in up.processes().items() if name == "envoy"} == envoys
    proxies = plane.proxies()
    assert sorted(key for key, proxy in proxies.items() if proxy["connected"]) == sorted(PROXIES)
    for key in PROXIES:
        for type_name, state in proxies[key]["types"].items():
            assert (state["acked"], state["nacks"]) == (state["sent"], 0), (key, type_name)

    # The restarted control plane's changes are followed.
    update_route(appmesh(serve.url, serve.data_dir), route_spec({BLUE: 0, GREEN: 100}))
    plane.wait_converged()
    assert sample(up.port, 100) == {"2.0": 100}
