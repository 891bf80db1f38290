"""The model-driven fuzzer, bounded: seeded requests, no 5xx, named 4xx, no change on refusal."""

from __future__ import annotations

import pytest

from meshplane.testing import ControlPlane
from meshplane.testing.fuzzing import Fuzzer

REQUESTS = 3000


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> ControlPlane:
    """One in-process control plane for the whole fuzz run."""
    with ControlPlane(tmp_path_factory.mktemp("fuzz") / "data") as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_requests_break_no_invariant(plane: ControlPlane, seed: int) -> None:
    """1,500 seeded requests per seed: every answer keeps all three invariants."""
    report = Fuzzer(plane.client().transport, seed).run(REQUESTS // 2)
    assert report.requests == REQUESTS // 2
    assert report.server_errors == 0
    assert report.findings == []
    # The run reached the service, not only the validator: creates succeeded and were found.
    assert report.statuses[200] > 0
    assert report.statuses[404] > 0


def test_the_same_seed_sends_the_same_requests() -> None:
    """Two fuzzers with one seed build identical requests (a failure can be replayed)."""
    first, second = Fuzzer(None, 7), Fuzzer(None, 7)  # type: ignore[arg-type]
    for _ in range(50):
        a, b = first.request(), second.request()
        assert (a[0].name, *a[1:]) == (b[0].name, *b[1:])


class _Broken:
    """A transport whose server answers every request with ``answer``, bumping the revision."""

    def __init__(self, status: int, body: bytes, writes: bool) -> None:
        self.status, self.body, self.writes, self.revision = status, body, writes, 0

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if path == "/healthz":
            return 200, b'{"status": "ok", "revision": %d}' % self.revision
        self.revision += int(self.writes)
        return self.status, self.body


def test_each_invariant_can_fail() -> None:
    """A 500, an unnamed BadRequest and a refusal that writes are each reported per request."""
    server_error = _Broken(
        500, b'{"__type": "InternalServerErrorException", "message": "x"}', False
    )
    report = Fuzzer(server_error, 3).run(5)  # type: ignore[arg-type]
    assert (report.server_errors, [f.invariant for f in report.findings]) == (5, ["no 5xx"] * 5)
    unnamed = _Broken(400, b'{"__type": "BadRequestException", "message": "nope"}', True)
    report = Fuzzer(unnamed, 3).run(2)  # type: ignore[arg-type]
    assert [f.invariant for f in report.findings] == [
        "4xx names a field and rule",
        "rejected changes nothing",
    ] * 2
