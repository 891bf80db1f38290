"""Heavy request work runs on worker threads, never on the event loop that serves everyone.

One client's 3 MB request (JSON parsing, validating a large spec, the store's
fsync) used to run on the loop that also serves every other API client, the
sync stage and xDS, so everyone waited for it. Requests that write, and every
manifest operation, now run on a small pool of worker threads; the loop only
moves bytes. The store is thread-safe (one lock around its connection) and its
change feed wakes loop waiters thread-safely. Manifest operations keep their
own single worker so they stay serial, as they were on the loop (a converge
reads, decides and writes across several transactions).

Reads (``GET``) stay on the loop: they are a few SQLite reads and a small JSON
dump, cheaper than the hop to a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from meshplane.api.screening import Screen

T = TypeVar("T")

WORKERS = 4
"""Worker threads for App Mesh writes: the store serialises writes, so more would only wait."""
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another wants it (Python's default is 5 ms).

A worker thread parsing a large body holds the GIL; the loop, each time it wakes
(every socket read and write), waits for the worker to yield it. At 5 ms each of
those waits alone would break the latency budget of other clients' requests."""


class Offload:
    """The worker pools of one API application."""

    def __init__(self) -> None:
        """Create the pools (threads start on first use)."""
        self._writes = concurrent.futures.ThreadPoolExecutor(
            WORKERS, thread_name_prefix="meshplane-api"
        )
        self._manifests = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="meshplane-manifests"
        )
        self.screen = Screen()
        """Large bodies are parsed in a process first (:mod:`meshplane.api.screening`)."""
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)

    async def write(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` on a write worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writes, functools.partial(work, *args))

    async def manifest(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` on the manifest worker, after every earlier manifest operation."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._manifests, functools.partial(work, *args))

    def shutdown(self) -> None:
        """Wait for running work, then stop the threads."""
        self._writes.shutdown(wait=True)
        self._manifests.shutdown(wait=True)
        self.screen.shutdown()


OFFLOAD_KEY = web.AppKey("offload", Offload)


def install(app: web.Application) -> Offload:
    """Give ``app`` its pools, shut down with the application."""
    offload = Offload()
    app[OFFLOAD_KEY] = offload

    async def stop(_app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, offload.shutdown)

    app.on_cleanup.append(stop)
    return offload
