"""One managed process: prefixed logs, restart with backoff, and a stop that leaves nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import pytest

from meshplane.runtime import status
from meshplane.runtime.processes import Backoff, ManagedProcess, ProcessSpec, State, describe_exit

from .conftest import alive, eventually

pytestmark = pytest.mark.integration

FAST = Backoff(initial=0.2, maximum=0.4, reset_after=60.0)


class Lines:
    """A log sink that keeps every (name, line)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, name: str, line: str) -> None:
        self.seen.append((name, line))

    def of(self, name: str) -> list[str]:
        return [line for who, line in self.seen if who == name]


def _python(name: str, code: str) -> ProcessSpec:
    return ProcessSpec(name, [sys.executable, "-c", code], dict(os.environ))


def test_backoff_doubles_to_its_maximum() -> None:
    """Delays 0.5, 1, 2, 4, 8, 10, 10 with the defaults."""
    assert [Backoff().delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_exit_descriptions() -> None:
    """Exit codes and signals read as people say them."""
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_output_lines_are_passed_on_with_the_process_name() -> None:
    """stdout and stderr lines reach the sink, named; the console form is ``name | line``."""
    lines = Lines()
    code = (
        "import sys, time\n"
        "print('one', flush=True)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "time.sleep(60)"
    )
    process = ManagedProcess(_python("web-0", code), lines, FAST)

    async def scenario() -> None:
        run = asyncio.create_task(process.run())
        await eventually(lambda: len(lines.of("web-0")) == 2, what="two lines")
        await process.stop(grace=5)
        await run

    asyncio.run(scenario())
    assert lines.seen == [("web-0", "one"), ("web-0", "two")]
    assert status.prefixed("web-0", "one") == "web-0 | one"
    assert process.state is State.STOPPED
    assert process.restarts == 0


def test_stop_kills_the_whole_process_group() -> None:
    """A child's own child dies with it; no pid survives the stop."""
    lines = Lines()
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(os.getpid(), child.pid, flush=True)\n"
        "time.sleep(60)"
    )
    process = ManagedProcess(_python("forker-0", code), lines, FAST)
    pids: list[int] = []

    async def scenario() -> None:
        run = asyncio.create_task(process.run())
        await eventually(lambda: bool(lines.of("forker-0")), what="the pids")
        pids.extend(int(p) for p in lines.of("forker-0")[0].split())
        assert process.pid == pids[0]
        assert all(alive(pid) for pid in pids)
        await process.stop(grace=5)
        await run

    asyncio.run(scenario())
    assert [alive(pid) for pid in pids] == [False, False]
    assert process.pid is None


def test_a_process_ignoring_sigterm_is_killed_after_the_grace() -> None:
    """SIGTERM first; SIGKILL once the grace is over, and the sink is told."""
    lines = Lines()
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)"
    )
    process = ManagedProcess(_python("stubborn-0", code), lines, FAST)

    async def scenario() -> int:
        run = asyncio.create_task(process.run())
        await eventually(lambda: bool(lines.of("stubborn-0")), what="the pid")
        pid = int(lines.of("stubborn-0")[0])
        await process.stop(grace=0.5)
        await run
        return pid

    pid = asyncio.run(scenario())
    assert not alive(pid)
    assert lines.of("stubborn-0")[1:] == ["still running 0s after SIGTERM; sending SIGKILL"]
    assert process.last_exit == -9


def test_a_crashing_process_is_restarted_with_backoff() -> None:
    """Each exit is reported with the delay; the delay doubles up to the maximum."""
    lines = Lines()
    process = ManagedProcess(_python("crash-0", "import sys; sys.exit(3)"), lines, FAST)

    async def scenario() -> None:
        run = asyncio.create_task(process.run())
        await eventually(lambda: process.restarts >= 3, what="three restarts")
        await process.stop(grace=5)
        await run

    asyncio.run(scenario())
    assert lines.of("crash-0")[:3] == [
        "exit code 3; restarting in 0.2s",
        "exit code 3; restarting in 0.4s",
        "exit code 3; restarting in 0.4s",
    ]


def test_a_killed_process_comes_back_with_a_new_pid() -> None:
    """SIGKILL from outside: the supervisor starts it again."""
    lines = Lines()
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"
    process = ManagedProcess(_python("victim-0", code), lines, FAST)

    async def scenario() -> tuple[int, int]:
        run = asyncio.create_task(process.run())
        await eventually(lambda: len(lines.of("victim-0")) == 1, what="first start")
        first = int(lines.of("victim-0")[0])
        os.kill(first, 9)
        await eventually(lambda: len(lines.of("victim-0")) == 3, what="restart")
        second = int(lines.of("victim-0")[2])
        await process.stop(grace=5)
        await run
        return first, second

    first, second = asyncio.run(scenario())
    assert lines.of("victim-0")[1] == "signal SIGKILL; restarting in 0.2s"
    assert first != second
    assert process.restarts == 1
    assert [alive(first), alive(second)] == [False, False]


def test_a_missing_program_is_reported_and_retried() -> None:
    """An argv that cannot be executed is an exit like any other, logged with the reason."""
    lines = Lines()
    spec = ProcessSpec("ghost-0", ["/nonexistent/app"], {})
    process = ManagedProcess(spec, lines, FAST)

    async def scenario() -> None:
        run = asyncio.create_task(process.run())
        await eventually(lambda: process.restarts >= 1, what="a retry")
        await process.stop()
        await run

    asyncio.run(scenario())
    assert lines.of("ghost-0")[:2] == [
        "cannot start /nonexistent/app: No such file or directory",
        "exit code 127; restarting in 0.2s",
    ]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root, Linux and setpriv (a child switching to another uid)",
)
@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (None, ["sh: 1: cannot create /dev/stdout: Permission denied", "exit 2"]),
        (1337, ["to /dev/stdout", "exit 0"]),
    ],
)
def test_a_child_that_drops_root_opens_dev_stdout_once_its_pipe_is_given_to_it(
    owner: int | None, expected: list[str]
) -> None:
    """uid 1337 cannot reopen root's 0600 output pipe as /dev/stdout unless it owns the pipe."""
    lines = Lines()
    argv = ["setpriv", "--reuid=1337", "--regid=1337", "--clear-groups", "sh", "-c"]
    argv += ["echo to /dev/stdout > /dev/stdout; echo exit $?; sleep 60"]
    spec = ProcessSpec("envoy", argv, dict(os.environ), output_owner=owner)
    process = ManagedProcess(spec, lines, FAST)

    async def scenario() -> None:
        run = asyncio.create_task(process.run())
        await eventually(lambda: any(line.startswith("exit") for line in lines.of("envoy")))
        await process.stop(grace=5)
        await run

    asyncio.run(scenario())
    assert lines.of("envoy") == expected
