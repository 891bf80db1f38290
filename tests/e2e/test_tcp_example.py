"""examples/tcp end to end: a TCP backend reached through the caller's sidecar, weights shifted.

`meshplane up` gives the front's sidecar a loopback port for its TCP backend and announces it
in MESHPLANE_BACKEND_ECHO_TCP_SVC_CLUSTER_LOCAL_ADDR; every request to the published front
opens a fresh TCP connection there, so each one follows the router's current weights.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .examples import STARTUP, ExampleSession
from .traffic import CONVERGE, poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSession]:
    """The example running; stopped (and checked to leave nothing) after the module."""
    session = ExampleSession(tmp_path_factory.mktemp("tcp-example"), "tcp", ("front",))
    try:
        poll(lambda: session.answers("front", "/hello"), STARTUP, "the front through its sidecar")
        yield session
    finally:
        code = session.stop()
    assert code == 0, session.log.read_text()
    assert session.leftovers() == set()


def _weights(session: ExampleSession, v1: int, v2: int) -> Path:
    """Rewrite the copy's router.yaml to ``v1``/``v2`` (its two weights, in order)."""
    router = session.workdir / "router.yaml"
    weights = iter((v1, v2))
    text, count = re.subn(r"weight: \d+", lambda _: f"weight: {next(weights)}", router.read_text())
    assert count == 2, "router.yaml should weight exactly v1 then v2"
    router.write_text(text)
    return router


def _versions(session: ExampleSession, count: int) -> collections.Counter[str]:
    """``count`` requests through the front, counted by the echo version that answered."""
    seen: collections.Counter[str] = collections.Counter()
    for index in range(count):
        status, body = session.get("front", f"/n{index}")
        assert status == 200, body
        version, _, word = body.partition(":")
        assert word == f"n{index}"
        seen[version] += 1
    return seen


def test_tcp_backend_answers_through_its_announced_port(tcp: ExampleSession) -> None:
    """At 100/0 every connection reaches echo-v1, which echoes the line it got."""
    assert tcp.get("front", "/hello") == (200, "v1:hello")
    assert _versions(tcp, 20) == {"v1": 20}


def test_shifting_weights_moves_new_connections(tcp: ExampleSession) -> None:
    """0/100 sends every new connection to echo-v2; 50/50 reaches both versions."""
    tcp.apply(_weights(tcp, 0, 100))
    poll(lambda: tcp.answers("front", "/x") == "v2:x", CONVERGE, "connections to reach echo-v2")
    assert _versions(tcp, 20) == {"v2": 20}
    tcp.apply(_weights(tcp, 50, 50))
    poll(lambda: set(_versions(tcp, 10)) == {"v1", "v2"}, CONVERGE, "both versions to answer")
