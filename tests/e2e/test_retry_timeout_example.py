"""examples/retry-timeout end to end: retries and timeouts as the caller's sidecar applies them.

Every request enters the published front, which relays it through its sidecar to the flaky
backend; the backend counts the attempts per key, so each test reads how many tries the
sidecar made and what it answered after them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .examples import STARTUP, ExampleSession
from .traffic import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSession]:
    """The example running; stopped (and checked to leave nothing) after the module."""
    session = ExampleSession(tmp_path_factory.mktemp("retry-example"), "retry-timeout", ("front",))
    try:
        poll(lambda: session.answers("front", "/count?key=up"), STARTUP, "the front and backend")
        yield session
    finally:
        code = session.stop()
    assert code == 0, session.log.read_text()
    assert session.leftovers() == set()


def _call(mesh: ExampleSession, path: str) -> tuple[int, object]:
    """(status, decoded JSON body or the raw text) of one request through the front."""
    status, body = mesh.get("front", path)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def _attempts(mesh: ExampleSession, key: str) -> int:
    status, body = _call(mesh, f"/count?key={key}")
    assert status == 200, body
    assert isinstance(body, dict)
    return int(body["attempts"])


def test_default_policy_retries_503_twice(mesh: ExampleSession) -> None:
    """No retryPolicy: two 503s are retried away; three are not; a 500 is not retried at all."""
    assert _call(mesh, "/fail?key=d1&times=2") == (200, {"key": "d1", "attempt": 3})
    assert _call(mesh, "/fail?key=d2&times=9") == (503, {"key": "d2", "attempt": 3})
    assert _attempts(mesh, "d2") == 3
    assert _call(mesh, "/fail?key=d3&times=9&code=500") == (500, {"key": "d3", "attempt": 1})
    assert _attempts(mesh, "d3") == 1


def test_route_policy_retries_server_errors_three_times(mesh: ExampleSession) -> None:
    """maxRetries 3 on server-error: three 500s are retried away; a fourth reaches the caller."""
    assert _call(mesh, "/retry/fail?key=r1&times=3&code=500") == (200, {"key": "r1", "attempt": 4})
    assert _call(mesh, "/retry/fail?key=r2&times=9&code=500") == (
        500,
        {"key": "r2", "attempt": 4},
    )
    assert _attempts(mesh, "r2") == 4


def test_route_timeout_cuts_a_slow_answer(mesh: ExampleSession) -> None:
    """perRequest 1 s: a 3 s answer becomes Envoy's 504; a quick one passes."""
    assert _call(mesh, "/slow/delay?key=s1&ms=3000") == (504, "upstream request timeout")
    assert _call(mesh, "/slow/delay?key=s2&ms=50") == (200, {"key": "s2", "attempt": 1})


def test_default_timeout_is_fifteen_seconds(mesh: ExampleSession) -> None:
    """No timeout on the route: 3 s passes (the 1 s route would cut it), 16 s meets the 15 s cap."""
    assert _call(mesh, "/delay?key=t1&ms=3000") == (200, {"key": "t1", "attempt": 1})
    assert _call(mesh, "/delay?key=t2&ms=16000") == (504, "upstream request timeout")
