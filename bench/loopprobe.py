"""A ``meshplane`` process whose event loop records its own stalls, for benchmarks.

``python -m bench.loopprobe STALLS_FILE serve ...`` runs the ``meshplane`` console
script's entry point unchanged, with one addition: the main thread's event loop runs
a timer every :data:`PERIOD` seconds, and every tick later than :data:`RECORD_AFTER`
appends ``<due> <lateness> <cpu>`` to ``STALLS_FILE``: ``time.monotonic`` seconds (the
clock every process on the machine shares), and the CPU seconds the whole server
process used since the tick before. A tick is late by as long as the loop could not
run anything: a callback that ran long, the loop thread waiting for the GIL, or the
process waiting for a core. That is what every other client waits, and unlike a
latency percentile it does not depend on how many samples happened to meet the stall.
The CPU figure tells the first two (the server busy) from the third (a neighbour).

The probe lives in the benchmark, not in meshplane, so any tree's server can be
measured the same way (``PYTHONPATH=<other tree>/src``). Its cost: one timer
callback per millisecond on the loop (a few microseconds each) and a thread that
appends the recorded lines to the file every :data:`FLUSH_EVERY` seconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
import traceback
from pathlib import Path

PERIOD = 0.001
RECORD_AFTER = 0.0005
"""Ticks later than this are recorded (epoll waits in whole milliseconds: idle ticks are
up to ~1 ms late, so smaller values only add lines)."""
FLUSH_EVERY = 0.1


class _Recorder:
    """Late ticks, appended to a file by a daemon thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._flush_forever, name="loopprobe", daemon=True).start()

    def record(self, due: float, lateness: float, cpu: float) -> None:
        with self.lock:
            self.pending.append(f"{due:.6f} {lateness:.6f} {cpu:.6f}\n")

    def flush(self) -> None:
        with self.lock:
            lines, self.pending = self.pending, []
        if lines:
            with self.path.open("a") as out:
                out.writelines(lines)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            self.flush()


def _tick(loop: asyncio.AbstractEventLoop, due: float, cpu: float, recorder: _Recorder) -> None:
    """Record how late this tick is, and the process's CPU time since the last one."""
    now, used = loop.time(), time.process_time()  # loop.time() is time.monotonic()
    if now - due > RECORD_AFTER:
        recorder.record(due, now - due, used - cpu)
    loop.call_at(now + PERIOD, _tick, loop, now + PERIOD, used, recorder)


def _trace_slow_callbacks(path: Path, threshold: float) -> None:
    """Diagnosis only: log every loop callback that ran longer than ``threshold`` seconds.

    Each line: start (monotonic), wall seconds, the loop thread's CPU seconds (wall
    beyond CPU is waiting: for the GIL, or for a core), and the callback's coroutine.
    A watchdog thread also writes the loop thread's stack once ``threshold`` into a
    callback, so what holds the loop is named, not just when.
    """
    run = asyncio.Handle._run
    main = threading.main_thread()
    current: list[float | None] = [None]

    def timed(handle: asyncio.Handle) -> None:
        if threading.current_thread() is not main:
            run(handle)
            return
        start, cpu = time.monotonic(), time.thread_time()
        current[0] = start
        try:
            run(handle)
        finally:
            current[0] = None
        wall = time.monotonic() - start
        if wall > threshold:
            used = time.thread_time() - cpu
            task = getattr(getattr(handle, "_callback", None), "__self__", None)
            what = repr(task.get_coro()) if isinstance(task, asyncio.Task) else repr(handle)
            with path.open("a") as out:
                out.write(f"{start:.6f} {wall * 1000:.2f}ms cpu {used * 1000:.2f}ms {what}\n")

    def watch() -> None:
        seen: float | None = None
        while True:
            time.sleep(threshold / 4)
            start = current[0]
            if start is None or start == seen or time.monotonic() - start < threshold:
                continue
            seen = start
            frame = sys._current_frames().get(main.ident or 0)
            stack = "".join(traceback.format_stack(frame)[-14:]) if frame else "?"
            with path.open("a") as out:
                out.write(f"STACK {start:.6f} at +{time.monotonic() - start:.4f}s\n{stack}\n")

    collecting: dict[str, float] = {}

    def collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting["start"] = time.monotonic()
            return
        took = time.monotonic() - collecting.get("start", time.monotonic())
        if took > threshold / 4:
            with path.open("a") as out:
                out.write(
                    f"GC {collecting['start']:.6f} gen {info['generation']} "
                    f"{took * 1000:.2f}ms on {threading.current_thread().name}\n"
                )

    gc.callbacks.append(collections)
    setattr(asyncio.Handle, "_run", timed)  # noqa: B010 - a diagnosis-only patch
    threading.Thread(target=watch, name="loopprobe-watch", daemon=True).start()


class _ProbedPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy; the first loop made on the main thread starts the probe."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.probed = False

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if not self.probed and threading.current_thread() is threading.main_thread():
            self.probed = True
            loop.call_soon(_tick, loop, loop.time(), time.process_time(), self.recorder)
        return loop


Stall = tuple[float, float, float]
"""A late tick: when it was due, how late it ran, the server's CPU seconds in between."""


def read_stalls(path: Path) -> list[Stall]:
    """The late ticks recorded so far (a torn last line is skipped)."""
    stalls = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:  # due, lateness, cpu
                stalls.append((float(parts[0]), float(parts[1]), float(parts[2])))
    return stalls


def longest(stalls: list[Stall], start: float, end: float, *, busy: bool = False) -> float:
    """The longest stall that overlaps ``[start, end]`` (0 if none was recorded).

    ``busy``: count only the part of each stall the server spent on CPU, ``min(lateness,
    CPU)``; on a loaded machine the rest is time the server waited for a core, which a
    neighbour caused, not the request.
    """
    return max(
        (
            min(lateness, cpu) if busy else lateness
            for due, lateness, cpu in stalls
            if due < end and due + lateness > start
        ),
        default=0.0,
    )


def main() -> None:
    """Install the probe, then run the ``meshplane`` console script with the other arguments."""
    recorder = _Recorder(Path(sys.argv[1]))
    slow = os.environ.get("LOOPPROBE_SLOW_CALLBACKS")  # seconds, e.g. 0.002
    if slow:
        _trace_slow_callbacks(Path(sys.argv[1] + ".slow"), float(slow))
    asyncio.set_event_loop_policy(_ProbedPolicy(recorder))
    sys.argv = ["meshplane", *sys.argv[2:]]
    from meshplane.cli.fastpath import main as meshplane  # noqa: PLC0415 - after the policy

    try:
        meshplane()
    finally:
        recorder.flush()


if __name__ == "__main__":
    main()
