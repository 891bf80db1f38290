"""A ``meshplane up`` killed with SIGKILL cannot withdraw its endpoints; their leases do.

``meshplane serve`` runs with a 3-second endpoint lease; ``up --server URL`` runs the
walkthrough and renews its replicas' registrations. SIGKILL on ``up`` takes its apps
and sidecars with it (PR_SET_PDEATHSIG) but runs no withdrawal: the endpoints must
leave EDS once their leases run out. Every wait polls observed state with a deadline.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from meshplane import client

from .harness import STARTUP, Serve, Up
from .traffic import Plane, poll

pytestmark = pytest.mark.integration

NODES = ["vn-echo-backend-blue", "vn-echo-backend-green", "vn-echo-frontend-blue"]


def test_a_killed_up_leaves_no_endpoints_once_its_leases_run_out(tmp_path: Path) -> None:
    """After SIGKILL on up, EDS loses all three replicas' endpoints within a bounded wait
    and proxy-status shows no connected proxy."""
    serve = Serve(tmp_path, env={"MESHPLANE_ENDPOINT_LEASE_TTL": "3"})
    up = Up(tmp_path, serve)
    try:
        serve.start()
        signer = client.Signer.from_file(serve.data_dir / "credentials", "us-west-2")
        mp = client.MeshplaneClient(client.Transport(serve.url, trust_env=False, signer=signer))
        up.start()
        Plane(serve.url, serve.data_dir).wait_converged()
        registered = poll(
            lambda: sorted(mp.endpoints("demos")) == NODES and mp.endpoints("demos"),
            STARTUP,
            "all three replicas registered",
        )
        first = mp.health().revision
        started = mp.proxies()
        assert len(started.connected) == 3
        assert up.process is not None
        children = set(up.processes())
        up.process.send_signal(signal.SIGKILL)
        up.process.wait(timeout=30)
        poll(lambda: mp.endpoints("demos") == {}, 60, "the killed replicas' endpoints to expire")
        poll(lambda: not mp.proxies().connected, 60, "the killed sidecars to disconnect")
        assert all(len(items) == 1 for items in registered.values())
        assert mp.health().revision > first
        poll(lambda: not (children & up.leftovers()), 30, "up's children to die with it")
    finally:
        if up.process is not None and up.process.poll() is None:
            up.stop()
        if serve.process is not None and serve.process.poll() is None:
            serve.stop()
