"""What every ADS stream does, whichever protocol it speaks: one inbox, admission, gates.

A stream — state of the world (:class:`~meshplane.xds.stream.AdsStream`) or incremental
(:class:`~meshplane.xds.delta.DeltaStream`) — serves one Envoy on one task, driven by a
single inbox of events: requests read from the proxy, new snapshots from the cache, gate
deadlines, and a revocation or an end. Its state needs no locks and every decision is
made in a well-defined order. :class:`StreamLifecycle` is that loop and what both kinds
share around it; a subclass says what a request and a snapshot mean on its wire and
which make-before-break step comes next (:meth:`StreamLifecycle._next_step`).

Hostile proxies are bounded here (any local process can open a stream): a Node larger
than :data:`MAX_NODE_BYTES` ends the stream before anything is recorded
(:class:`~meshplane.xds.roles.InvalidNode`), and at most :data:`INBOX_REQUESTS` requests
wait in the inbox (past that the reader stops reading, and gRPC's flow control pushes
back on the sender). Admission by the authenticator comes before the stream is recorded,
watched or answered, so a refused stream leaves no trace on the board and receives
nothing. A gate that outlives ``ack_timeout`` is recorded and the walk goes on, so a
silent proxy cannot wedge the stream; a NACK during a step abandons the walk (the proxy
keeps its last good config).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from meshplane.kit.timers import Cancel, LoopTimer, Timer
from meshplane.xds.roles import (
    AsyncStreamAuthenticator,
    InvalidNode,
    SnapshotSource,
    StreamAuthenticator,
    StreamCallbacks,
    StreamRefused,
)
from meshplane.xds.snapshot import Snapshot

END = object()
"""Inbox event: the proxy closed the stream (or the server asked it to end)."""
DEADLINE = object()
"""Inbox event: the current gate's deadline passed (:meth:`StreamLifecycle._advance` sees it)."""

MAX_NODE_BYTES = 64 * 1024
"""The largest serialized Node (id, cluster, metadata) a proxy may announce; App Mesh
sidecars announce well under 2 KiB."""
INBOX_REQUESTS = 64
"""Requests read from a proxy and not yet handled; Envoy has at most one per type in flight."""
NACK_LOG_INTERVAL = 10.0
"""Seconds between two logged NACKs of one type on one stream (the others are counted)."""

Writer = Callable[[bytes], Awaitable[None]]
"""Writes one serialized (delta) DiscoveryResponse to the proxy."""


@dataclasses.dataclass
class Gate:
    """The condition a make-before-break step waits for before the next one."""

    step: str
    ready: Callable[[], bool]
    nacks_at_start: dict[str, int]
    deadline: float


Step = Callable[[], Awaitable[Gate | None]]
"""One make-before-break step: it sends, and returns what the next step waits for."""


class _Inbox:
    """The stream's events in arrival order, read by its one task; requests are counted.

    What ``asyncio.Queue`` plus a ``Semaphore`` did, for one reader and one writer of
    requests: every request and snapshot of every stream of a push passes here, and
    the queue's general bookkeeping (getter and putter lists, task counts, a
    coroutine per semaphore acquire) was a few microseconds per event. Requests take
    a slot (:meth:`room`, :meth:`put_request`) and give it back when taken
    (:meth:`get`); snapshots and deadlines need none (the cache coalesces snapshots,
    and there is one deadline at a time).
    """

    def __init__(self, requests: int) -> None:
        """Hold at most ``requests`` requests at once (:meth:`room` waits past that)."""
        self._events: collections.deque[object] = collections.deque()
        self._requests: collections.deque[bool] = collections.deque()
        """Per event held: whether it is a request (it frees a slot when taken)."""
        self._held = 0
        self._limit = requests
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None

    def put_nowait(self, event: object) -> None:
        """Add an event that needs no slot (a snapshot, a deadline, the end)."""
        self._events.append(event)
        self._requests.append(False)
        self._wake_getter()

    def put_request(self, request: object) -> None:
        """Add a request; call only once :meth:`room` returned."""
        self._held += 1
        self._events.append(request)
        self._requests.append(True)
        self._wake_getter()

    def full(self) -> bool:
        """Whether every request slot is taken (then :meth:`room` waits)."""
        return self._held >= self._limit

    async def room(self) -> None:
        """Return once a request may be added (at once, unless the slots are full)."""
        while self._held >= self._limit:
            putter = self._putter = asyncio.get_running_loop().create_future()
            try:
                await putter
            finally:
                self._putter = None

    async def get(self) -> object:
        """The oldest event, waiting for one if there is none."""
        while not self._events:
            getter = self._getter = asyncio.get_running_loop().create_future()
            try:
                await getter
            finally:
                self._getter = None
        if self._requests.popleft():
            self._held -= 1
            putter = self._putter
            if putter is not None and not putter.done():
                putter.set_result(None)
        return self._events.popleft()

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)


class StreamLifecycle:
    """One stream's inbox loop, admission, gates and NACK logging (subclassed per protocol)."""

    LABEL = "SotW"
    """How logs name this kind of stream (its protocol)."""

    def __init__(
        self,
        *,
        cache: SnapshotSource,
        board: StreamCallbacks,
        requests: AsyncIterator[Any],
        write: Writer,
        ack_timeout: float,
        logger: logging.Logger,
        timer: Timer | None = None,
        authenticator: StreamAuthenticator | AsyncStreamAuthenticator | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Serve ``requests`` from ``cache``, reporting to ``board``.

        ``timer`` runs the make-before-break deadlines (the event loop's by default).
        ``authenticator`` (none: admit everyone) judges the first request's node and the
        stream's gRPC ``metadata``; its refusal ends :meth:`run` with the StreamRefused,
        and so does an :class:`AsyncStreamAuthenticator`'s later revocation.
        """
        self._cache = cache
        self._board = board
        self._requests = requests
        self._write = write
        self._ack_timeout = ack_timeout
        self._log = logger
        self._timer: Timer = timer or LoopTimer()
        self._authenticator = authenticator
        self._metadata = dict(metadata or {})
        self._inbox = _Inbox(INBOX_REQUESTS)
        self._key: str | None = None
        self._unwatch: Callable[[], None] | None = None
        self._release: Callable[[], None] | None = None
        self._gate: Gate | None = None
        self._disarm: Cancel | None = None
        self._armed_for: float | None = None
        """When the armed deadline timer fires (at most one is armed; see :meth:`_set_gate`)."""
        self._nonces = 0
        self._nack_logged: dict[str, tuple[float, int]] = {}
        """Per type URL: when a NACK was last logged, and how many were not logged since."""

    # -- what a protocol defines ---------------------------------------------------

    async def _on_request(self, request: Any) -> None:
        raise NotImplementedError

    async def _on_snapshot(self, snapshot: Snapshot) -> None:
        raise NotImplementedError

    def _next_step(self) -> Step | None:
        """The next make-before-break step to run (``None``: nothing to walk)."""
        raise NotImplementedError

    def _abandon_walk(self) -> None:
        """A NACK during a step: drop the walk's remaining steps."""
        raise NotImplementedError

    def _nacks(self, type_url: str) -> int:
        """How many NACKs of ``type_url`` this stream has received."""
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Process events until the proxy closes the stream (or the task is cancelled)."""
        reader = asyncio.create_task(self._read())
        try:
            while True:
                event = await self._inbox.get()
                if event is END:
                    return
                if isinstance(event, StreamRefused):
                    raise event
                if isinstance(event, Snapshot):
                    await self._on_snapshot(event)
                elif event is not DEADLINE:  # a deadline is handled by _advance
                    await self._on_request(event)
                await self._advance()
        finally:
            reader.cancel()
            self._set_gate(None)
            if self._disarm is not None:
                self._disarm()
                self._disarm = self._armed_for = None
            if self._unwatch is not None:
                self._unwatch()
            if self._release is not None:
                self._release()
            if self._key is not None:
                self._board.record_disconnected(self._key)
                self._log.info("xds: %s disconnected (%s)", self._key, self.LABEL)

    def close(self) -> None:
        """Ask :meth:`run` to end the stream cleanly (used when the server stops)."""
        self._inbox.put_nowait(END)

    def revoke(self, refusal: StreamRefused) -> None:
        """End the stream with ``refusal``'s status: its credential no longer holds."""
        self._inbox.put_nowait(refusal)

    async def _read(self) -> None:
        try:
            inbox = self._inbox
            async for request in self._requests:
                if inbox.full():  # no coroutine per request when there is room
                    await inbox.room()
                inbox.put_request(request)
        except Exception as exc:  # the transport failed: the proxy is gone either way
            self._log.debug("xds: %s stream %s read ended: %r", self.LABEL, self._key, exc)
        finally:
            self._inbox.put_nowait(END)

    async def _admit(self, node: Any) -> str:
        """Check and admit the first request's ``node``; its key, now watched in the cache."""
        size = node.ByteSize()
        if size > MAX_NODE_BYTES:
            raise InvalidNode(
                f"the Node is {size} bytes; meshplane accepts at most {MAX_NODE_BYTES} "
                "(node id, cluster and metadata)"
            )
        key = self._cache.node_hash(node)
        if isinstance(self._authenticator, AsyncStreamAuthenticator):
            self._release = await self._authenticator.admit_stream(
                key, node, self._metadata, self.revoke
            )
        elif self._authenticator is not None:
            self._authenticator.admit(key, node, self._metadata)
        self._key = key
        self._unwatch = self._cache.watch(key, self._inbox.put_nowait)
        return key

    def _log_nack(self, key: str, type_url: str, version: str, message: str) -> None:
        """Log a NACK unless one of this type was logged less than the interval ago."""
        now = self._timer.now()
        last, skipped = self._nack_logged.get(type_url, (None, 0))
        if last is not None and now - last < NACK_LOG_INTERVAL:
            self._nack_logged[type_url] = (last, skipped + 1)
            return
        self._nack_logged[type_url] = (now, 0)
        more = f" ({skipped} more NACKs of this type not logged)" if skipped else ""
        self._log.warning("xds: %s NACKed %s %s: %s%s", key, type_url, version, message, more)

    # -- make-before-break gates ---------------------------------------------------

    def _set_gate(self, gate: Gate | None) -> None:
        """Make ``gate`` the current one, its deadline watched by the timer (None: no gate).

        A stream passes a gate per step of every push, nearly always long before its
        deadline, so the timer is not armed and cancelled each time (a timer handle per
        stream per push, most of them cancelled, was allocation and heap work for every
        stream): one stays armed, and when it fires it hands the current gate's deadline
        to the inbox if it passed, or re-arms for it. Deadlines only grow (``now`` plus
        the same ``ack_timeout``), so the armed one is never later than the gate's.
        """
        self._gate = gate
        if gate is not None and self._armed_for is None:
            self._arm(gate.deadline)

    def _arm(self, when: float) -> None:
        self._armed_for = when
        self._disarm = self._timer.call_at(when, self._deadline_fired)

    def _deadline_fired(self) -> None:
        self._disarm = self._armed_for = None
        gate = self._gate
        if gate is None:
            return
        if self._timer.now() >= gate.deadline:
            self._inbox.put_nowait(DEADLINE)
        else:
            self._arm(gate.deadline)

    def _gate_on(self, step: str, ready: Callable[[], bool], *types: str) -> Gate:
        """A gate for ``step`` that opens when ``ready()`` (a NACK of ``types`` ends the walk)."""
        return Gate(
            step=step,
            ready=ready,
            nacks_at_start={t: self._nacks(t) for t in types},
            deadline=self._timer.now() + self._ack_timeout,
        )

    def _passed_gate(self) -> bool:
        """Whether the walk may go on past the current gate (cleared when it may)."""
        gate = self._gate
        if gate is None:
            return True
        nacked = [t for t, n in gate.nacks_at_start.items() if self._nacks(t) > n]
        if nacked:
            self._log.warning(
                "xds: %s rejected %s during step %r; keeping its last good config",
                self._key,
                ", ".join(nacked),
                gate.step,
            )
            self._abandon_walk()
        elif not gate.ready():
            if self._timer.now() < gate.deadline:
                return False
            assert self._key is not None
            self._board.record_gate_timeout(self._key)
            self._log.warning(
                "xds: %s no ACK for step %r within %.1fs; going on",
                self._key,
                gate.step,
                self._ack_timeout,
            )
        self._set_gate(None)
        return True

    async def _advance(self) -> None:
        """Run make-before-break steps as far as their gates allow."""
        while self._passed_gate():
            step = self._next_step()
            if step is None:
                return
            self._set_gate(await step())
