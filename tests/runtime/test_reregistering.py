"""The runtime registers its endpoints again when the control plane's store went back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meshplane.runtime import processes
from meshplane.runtime.supervising import Replica, RuntimeOptions, Supervisor
from meshplane.runtime.workloads import Workload


class Revisions:
    """A control plane that answers the given revisions in turn (None: unreachable)."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)

    async def revision(self) -> int | None:
        return self.answers.pop(0)


def _replica(index: int) -> Replica:
    workload = Workload(
        name="echo",
        namespace="demos",
        labels={},
        command=("true",),
        env={},
        port=80,
        workdir=Path(),
    )
    spec = processes.ProcessSpec(f"echo-{index}", ["true"], {})
    app = processes.ManagedProcess(spec, lambda _n, _l: None, processes.Backoff(1.0, 1.0))
    return Replica(workload, index, 0, app, registered=True)


def test_a_revision_that_goes_back_marks_every_replica_for_registration() -> None:
    """12 → 14 → unreachable → 3: only the drop to 3 unregisters both replicas, with one line."""
    lines: list[tuple[str, str]] = []
    plane = Revisions(12, 14, None, 3, 4)
    supervisor = Supervisor(
        [],
        RuntimeOptions(),
        lambda name, line: lines.append((name, line)),
        plane,  # type: ignore[arg-type]
    )
    supervisor.replicas = [_replica(0), _replica(1)]

    async def rounds() -> list[list[bool]]:
        seen = []
        for _ in range(5):
            await supervisor._check_store()  # one probe round's first step
            seen.append([r.registered for r in supervisor.replicas])
        return seen

    assert asyncio.run(rounds()) == [
        [True, True],
        [True, True],
        [True, True],
        [False, False],
        [False, False],
    ]
    assert lines == [
        (
            "runtime",
            "the control plane's store went back from revision 14 to 3: registering every "
            "replica again",
        )
    ]
