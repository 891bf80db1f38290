"""One loop wake-up per burst of grpc.aio completions, and the stream's inbox."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any

from test_xds_protocol import run, serving

from meshplane.xds import polling
from meshplane.xds.lifecycle import _Inbox


def test_the_coalesced_reader_takes_all_but_one_byte_then_runs_grpcs_reader() -> None:
    """Five bytes waiting: four are taken, grpc's reader reads the fifth, nothing is left."""
    reader, writer = socket.socketpair()
    with reader, writer:
        writer.sendall(b"11111")
        seen: list[bytes] = []
        polling._Coalesced(reader, lambda: seen.append(reader.recv(16)))()
        assert seen == [b"1"]
        assert _left(reader) == b""


def _left(reader: socket.socket) -> bytes:
    """What is still waiting on ``reader``, without blocking."""
    reader.setblocking(False)
    try:
        return reader.recv(16)
    except BlockingIOError:
        return b""


def test_one_waiting_byte_is_left_to_grpcs_reader() -> None:
    """A single completion: nothing is taken before grpc's reader reads its byte."""
    reader, writer = socket.socketpair()
    with reader, writer:
        writer.sendall(b"1")
        seen: list[bytes] = []
        polling._Coalesced(reader, lambda: seen.append(reader.recv(16)))()
        assert seen == [b"1"]
        assert _left(reader) == b""


def test_a_started_server_wraps_grpcs_reader_once() -> None:
    """After start the loop's grpc.aio reader is the coalesced one; wrapping again is a no-op."""

    async def scenario() -> None:
        async with serving():
            loop = asyncio.get_running_loop()
            assert polling.coalesce_wakeups(loop) is True
            selector = loop._selector  # type: ignore[attr-defined]
            wrapped = [
                key
                for key in selector.get_map().values()
                if isinstance(key.data[0] and key.data[0]._callback, polling._Coalesced)
            ]
            assert len(wrapped) == 1

    run(scenario)


def test_a_loop_without_grpc_is_left_alone() -> None:
    """No grpc.aio reader on a fresh loop: nothing is wrapped, and the answer says so."""

    async def scenario() -> bool:
        return polling.coalesce_wakeups(asyncio.get_running_loop())

    assert asyncio.run(scenario()) is False


def _finished(step: Coroutine[Any, Any, object]) -> object:
    """Resume ``step`` once more; what it returned (it must not wait again)."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("still waiting")


def test_the_inbox_keeps_order_and_frees_a_slot_per_request_taken() -> None:
    """Two request slots: full after two requests, free again once one is taken, FIFO kept."""

    async def scenario() -> list[object]:
        inbox = _Inbox(2)
        inbox.put_request("r1")
        inbox.put_nowait("snapshot")
        inbox.put_request("r2")
        assert inbox.full() is True
        room = inbox.room()
        waited = room.send(None)  # driven by hand: it waits on its future
        assert isinstance(waited, asyncio.Future)
        assert not waited.done()
        taken = [await inbox.get()]
        assert waited.done() is True
        assert _finished(room) is None
        assert inbox.full() is False
        taken.append(await inbox.get())  # the snapshot took no slot
        inbox.put_request("r3")
        assert inbox.full() is True
        taken += [await inbox.get(), await inbox.get()]
        return taken

    assert asyncio.run(scenario()) == ["r1", "snapshot", "r2", "r3"]


def test_a_waiting_get_wakes_on_the_next_event() -> None:
    """get() on an empty inbox returns the event put after it began waiting."""

    async def scenario() -> object:
        inbox = _Inbox(4)
        get = inbox.get()
        waited = get.send(None)
        assert isinstance(waited, asyncio.Future)
        assert not waited.done()
        inbox.put_nowait("end")
        assert waited.done() is True
        return _finished(get)

    assert asyncio.run(scenario()) == "end"
