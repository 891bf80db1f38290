"""One supervised child process: started in its own process group, logged, restarted, stopped.

Why process groups: an app may fork (a shell wrapper, a worker pool); signalling
the group reaches all of it, and after the leader exits the group is killed so
nothing is left behind. On Linux each child also gets ``PR_SET_PDEATHSIG``
(SIGKILL), so even a supervisor killed with SIGKILL takes its direct children
with it. Output (stdout and stderr merged) is split into lines and handed to a
sink with the process's name, which the runtime prints as ``name | line``.

A child that exits while it should be running is restarted after an
exponential backoff; a run that lasted ``reset_after`` seconds resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import enum
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LogSink = Callable[[str, str], None]
"""Receives (process name, one line of its output without the newline)."""

_LINE_LIMIT = 1 << 20  # past it, asyncio drops the buffered part of the line; never fatal
_PR_SET_PDEATHSIG = 1


class State(enum.Enum):
    """Where a managed process is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Restart delays: ``initial`` doubling up to ``maximum``; a long run resets them."""

    initial: float = 0.5
    maximum: float = 10.0
    reset_after: float = 10.0

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` (1-based) in a row."""
        return float(min(self.maximum, self.initial * 2 ** max(0, failures - 1)))


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """What to run: argv, the complete environment, the working directory."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path | None = None
    pass_fds: tuple[int, ...] = ()
    """Descriptors the child inherits (``up`` hands its data-dir lock to ``serve``)."""
    output_owner: int | None = None
    """The uid the child switches to (``setpriv``), given its output pipe before it starts.

    A pipe belongs to its creator with mode 0600, so a child that drops root could still write
    to its inherited stdout but not open ``/dev/stdout`` again (as Envoy's access logs do): it
    got "Permission denied" and Envoy rejected the listeners that log there.
    """


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``signal SIGKILL`` (asyncio reports signals as negative codes)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _preexec(output_owner: int | None = None) -> Callable[[], None] | None:
    """A preexec hook: Linux SIGKILLs the child when the supervisor dies.

    With ``output_owner`` the child's output pipe (its descriptor 1 by then) is handed to
    that uid too.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the hook only calls it

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if output_owner is not None:
            os.fchown(1, output_owner, output_owner)

    return hook


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _group_gone(pgid: int, deadline: float, clock: Callable[[], float]) -> None:
    """Wait (bounded) until no process of the group is left; signal delivery is asynchronous."""
    while _group_exists(pgid) and clock() < deadline:
        await asyncio.sleep(0.01)


class ManagedProcess:
    """Runs one :class:`ProcessSpec` until :meth:`stop`, restarting it when it dies."""

    def __init__(
        self,
        spec: ProcessSpec,
        sink: LogSink,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        """Nothing starts until :meth:`run` is awaited.

        ``on_restart`` is called before each restart's spawn (the log keeps the run that
        ended as the previous one).
        """
        self.spec = spec
        self.sink = sink
        self.on_restart = on_restart
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.state = State.PENDING
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()

    @property
    def name(self) -> str:
        """The log prefix."""
        return self.spec.name

    async def run(self) -> None:
        """Start the process and keep it running until :meth:`stop` is called."""
        failures = 0
        while not self._stopping.is_set():
            started = self.clock()
            code = await self._run_once()
            if self._stopping.is_set():
                break
            failures = 1 if self.clock() - started >= self.backoff.reset_after else failures + 1
            delay = self.backoff.delay(failures)
            self.state = State.BACKOFF
            self.sink(self.name, f"{describe_exit(code)}; restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if not self._stopping.is_set():
                self.restarts += 1
                if self.on_restart is not None:
                    self.on_restart()
        self.state = State.STOPPED

    async def _run_once(self) -> int:
        """One life of the process: spawn, pump its output, reap it and its group."""
        try:
            process = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(self.spec.env),
                cwd=self.spec.cwd,
                pass_fds=self.spec.pass_fds,
                start_new_session=True,  # its own process group, out of the terminal's Ctrl-C
                preexec_fn=_preexec(self.spec.output_owner),
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            self.sink(self.name, f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}")
            self.last_exit = 127
            return 127
        self._process, self.pid, self.state = process, process.pid, State.RUNNING
        if self._stopping.is_set():  # stop() raced with the spawn: it has barely begun
            _signal_group(process.pid, signal.SIGKILL)
        assert process.stdout is not None  # PIPE was requested
        pump = asyncio.create_task(self._pump(process.stdout))
        code = await process.wait()
        # The leader is gone; whatever it left in its group goes too, before we return.
        _signal_group(process.pid, signal.SIGKILL)
        await _group_gone(process.pid, deadline=self.clock() + 2.0, clock=self.clock)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pump, 2.0)
        self.last_exit, self.pid, self._process = code, None, None
        return code

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line past the limit: its buffered part is gone; go on
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                return
            self.sink(self.name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; no restart follows."""
        self._stopping.set()
        process = self._process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
        except TimeoutError:
            self.sink(self.name, f"still running {grace:.0f}s after SIGTERM; sending SIGKILL")
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
