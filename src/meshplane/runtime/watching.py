"""Following the workloads file while ``meshplane up`` runs, as a Deployment edit is followed.

On Kubernetes, editing one Deployment rolls that Deployment's pods and no others. Locally
the workloads file holds every Deployment at once, so the runtime reads it again whenever
its bytes change and hands the new list to the supervisor, which starts, restarts or stops
only the workloads that differ (:meth:`~meshplane.runtime.supervising.Supervisor.update`).

The file is polled (its bytes, every ``interval`` seconds: it is small, and polling needs
no platform watcher and sees editors that replace the file). A file that no longer loads
is reported once and changes nothing: the running workloads stay as they were until the
file is fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from meshplane.runtime import processes
from meshplane.runtime.workloads import Workload, WorkloadError

Loader = Callable[[], list[Workload]]
"""Reads the workloads file (raising WorkloadError or OSError when it cannot)."""
Apply = Callable[[Sequence[Workload]], Awaitable[list[str]]]
"""Makes the runtime run the given workloads; returns one line per workload touched."""

SOURCE = "workloads"
"""The log prefix of what this module reports."""


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


async def follow(
    path: Path,
    load: Loader,
    apply: Apply,
    sink: processes.LogSink,
    interval: float = 0.5,
) -> None:
    """Apply every change of ``path`` until cancelled (the bytes read at start count as seen)."""
    seen = _read(path)
    while True:
        await asyncio.sleep(interval)
        now = _read(path)
        if now == seen:
            continue
        seen = now
        try:
            found = load()
        except (WorkloadError, OSError) as error:
            sink(SOURCE, f"{path.name} not reloaded, the running workloads are kept: {error}")
            continue
        try:
            lines = await apply(found)
        except OSError as error:  # e.g. a new publish address already taken
            sink(SOURCE, f"{path.name}: {error.strerror or error}")
            continue
        for line in lines or [f"{path.name} changed: no workload differs"]:
            sink(SOURCE, line)
