"""The blue-green walkthrough end to end: splits, shifts under load, and a rejected config.

One ``meshplane serve`` and one ``meshplane up -f examples/echo --server URL`` serve
the whole module: requests enter at the published frontend, cross its sidecar,
the frontend app, its egress listener and a backend's sidecar, exactly as the
walkthrough's curl loop did. Every test first sets the route it needs, so the
tests do not depend on their order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .harness import Serve, Up, apply_weights, session
from .traffic import (
    BLUE,
    CONVERGE,
    FRONTEND,
    FRONTEND_NODE,
    GREEN,
    PROXIES,
    Load,
    Plane,
    appmesh,
    envoy_counters,
    poll,
    route_spec,
    sample,
    update_route,
)

pytestmark = pytest.mark.integration

SHIFTS = ((100, 0), (50, 50), (0, 100), (50, 50))
"""The weight cycle of the shift test: 100/0 → 50/50 → 0/100 → 50/50 → 100/0 …"""
OBSERVE = 3.0
"""Seconds the rejected route is watched for resends while nothing changes."""
PER_CONFIG = 150
"""Requests that must finish on each config before the next change (both clients together)."""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Up]]:
    """The control plane and the walkthrough's workloads, shared by the module."""
    yield from session(tmp_path_factory.mktemp("walkthrough"))


@pytest.fixture(scope="module")
def client(walkthrough: tuple[Serve, Up]) -> Any:
    """boto3 App Mesh client for the module's control plane."""
    return appmesh(walkthrough[0].url, walkthrough[0].data_dir)


def test_applied_100_0_sends_every_request_to_backend_1_0(walkthrough: tuple[Serve, Up]) -> None:
    """vr-echo-backend.yaml applied at 100/0: 200 of 200 answers come from backend 1.0."""
    serve, up = walkthrough
    apply_weights(up.directory, serve, 100, 0)
    Plane(serve.url, serve.data_dir).wait_converged()
    assert sample(up.port, 200) == {"1.0": 200}


def test_applied_50_50_splits_within_five_sigma(walkthrough: tuple[Serve, Up]) -> None:
    """Re-applied at 50/50: of 400 answers each version gets 200 within 5 sigma (sigma = 10)."""
    serve, up = walkthrough
    output = apply_weights(up.directory, serve, 50, 50)
    assert "virtualrouter.appmesh.k8s.aws/vr-echo-backend configured" in output
    Plane(serve.url, serve.data_dir).wait_converged()
    seen = sample(up.port, 400)
    sigma = math.sqrt(400 * 0.5 * 0.5)
    assert sorted(seen) == ["1.0", "2.0"]
    assert sum(seen.values()) == 400
    for version, count in seen.items():
        assert abs(count - 200) <= 5 * sigma, f"{version}: {count} of 400 ({dict(seen)})"


def test_boto3_update_route_0_100_sends_every_request_to_backend_2_0(
    walkthrough: tuple[Serve, Up], client: Any
) -> None:
    """boto3 update_route to 0/100 on the same server: 200 of 200 answers come from 2.0."""
    serve, up = walkthrough
    update_route(client, route_spec({BLUE: 0, GREEN: 100}))
    Plane(serve.url, serve.data_dir).wait_converged()
    assert sample(up.port, 200) == {"2.0": 200}


def test_weight_shifts_under_load_fail_no_request(
    walkthrough: tuple[Serve, Up], client: Any
) -> None:
    """20 shifts through 100/0, 50/50, 0/100 under 2 keep-alive clients: zero failures."""
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    update_route(client, route_spec({BLUE: 100, GREEN: 0}))
    plane.wait_converged()
    load = Load(up.port)
    with load.running():
        load.wait_for_more(PER_CONFIG)
        for shift in range(1, 21):
            blue, green = SHIFTS[shift % len(SHIFTS)]
            update_route(client, route_spec({BLUE: blue, GREEN: green}))
            plane.wait_converged()
            load.wait_for_more(PER_CONFIG)
    print(f"weight shifts under load: {load.summary()}")
    assert dict(load.failures) == {}, load.summary()
    assert load.ok >= 21 * PER_CONFIG
    assert sorted(load.versions) == ["1.0", "2.0"]


def test_adding_and_removing_a_target_under_load_fails_no_request(
    walkthrough: tuple[Serve, Up], client: Any
) -> None:
    """10 round trips of the route between [blue] and [blue, green] under load: zero failures.

    Adding green adds its cluster to the frontend's CDS (and removing it removes
    it), so this exercises the ACK-gated make-before-break ordering, not only RDS.
    """
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    alone, both = route_spec({BLUE: 1}), route_spec({BLUE: 50, GREEN: 50})
    update_route(client, alone)
    plane.wait_converged()
    clusters: dict[str, set[str]] = {"alone": set(), "both": set()}
    load = Load(up.port)
    with load.running():
        load.wait_for_more(PER_CONFIG)
        for _ in range(10):
            for name, spec in (("both", both), ("alone", alone)):
                update_route(client, spec)
                plane.wait_converged()
                clusters[name].add(plane.proxies()[FRONTEND]["types"]["Cluster"]["acked"])
                load.wait_for_more(PER_CONFIG)
    print(f"target add/remove under load: {load.summary()}")
    assert dict(load.failures) == {}, load.summary()
    assert load.ok >= 21 * PER_CONFIG
    assert sorted(load.versions) == ["1.0", "2.0"]
    # One cluster set per route shape, and they differ: the target really came and went.
    assert len(clusters["alone"]) == 1
    assert len(clusters["both"]) == 1
    assert clusters["alone"] != clusters["both"]


def test_rejected_route_is_reported_not_resent_and_traffic_stays_on_last_good(
    walkthrough: tuple[Serve, Up], client: Any
) -> None:
    """An invalid RE2 header regex: Envoy NACKs once, the NACK is shown, traffic keeps 100/0."""
    serve, up = walkthrough
    plane = Plane(serve.url, serve.data_dir)
    update_route(client, route_spec({BLUE: 100, GREEN: 0}))
    plane.wait_converged()
    before = plane.proxies()[FRONTEND]["types"]["RouteConfiguration"]
    good = before["acked"]
    admin = up.sidecar_admin(FRONTEND_NODE)
    rejected_before = envoy_counters(admin, "update_rejected")

    # The API judges regexes with RE2 itself, but not the program size of Unicode classes
    # (the binding measures them far larger than Envoy does), so this one passes the API
    # and Envoy refuses it: still the way to see a NACK end to end.
    bad = route_spec(
        {BLUE: 0, GREEN: 100}, headers=[{"name": "x-canary", "match": {"regex": "\\pL{20}"}}]
    )
    update_route(client, bad)
    plane.wait_converged(rejected=FRONTEND)

    def rejected() -> dict[str, Any] | None:
        state: dict[str, Any] = plane.proxies()[FRONTEND]["types"]["RouteConfiguration"]
        return state if state["nacks"] > before["nacks"] else None

    state = poll(rejected, CONVERGE, "the frontend's NACK of the route")
    assert state["nacks"] == before["nacks"] + 1
    assert state["lastNack"] == (
        "regex '\\pL{20}' RE2 program size of 144 > max program size of 100 set for the error "
        "level threshold. Increase configured max program size if necessary."
    )
    assert state["acked"] == good
    assert state["sent"] != good
    rejected_version = state["sent"]

    # Nothing changes now: the rejected version must not be resent (each resend would be
    # NACKed again), while traffic keeps being served on the last good config (100/0).
    # An observation window, not a wait: it proves an absence, so it has to last a while.
    rounds, window_end = 0, time.monotonic() + OBSERVE
    while rounds < 10 or time.monotonic() < window_end:
        rounds += 1
        assert sample(up.port, 20) == {"1.0": 20}
        proxies = plane.proxies()
        now = proxies[FRONTEND]["types"]["RouteConfiguration"]
        assert (now["nacks"], now["sent"], now["acked"]) == (state["nacks"], rejected_version, good)
        for key in PROXIES:
            if key != FRONTEND:
                assert all(t["nacks"] == 0 for t in proxies[key]["types"].values()), proxies[key]

    # Envoy's own counters agree: it was offered the bad response exactly once. That one
    # RDS response carried the ingress and egress route configurations, so both of their
    # subscriptions count the rejection; no other type was rejected.
    rds = {name for name in rejected_before if ".rds." in name}
    assert len(rds) == 2, rejected_before
    assert envoy_counters(admin, "update_rejected") == {
        name: count + (name in rds) for name, count in rejected_before.items()
    }

    # A good update is accepted: every type ACKed again, and traffic follows it.
    update_route(client, route_spec({BLUE: 0, GREEN: 100}))
    plane.wait_converged()
    after = plane.proxies()[FRONTEND]["types"]["RouteConfiguration"]
    assert after["acked"] == after["sent"]
    assert after["nacks"] == before["nacks"] + 1
    assert sample(up.port, 50) == {"2.0": 50}
