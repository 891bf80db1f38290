"""The feed's waker: consumers wait for the revision to pass a number; any thread may notify."""

from __future__ import annotations

import asyncio
import threading

from meshplane.store.waking import Waker


def test_wait_returns_at_once_when_the_revision_is_already_past() -> None:
    """A consumer that fell behind is not made to wait for the next commit."""
    waker = Waker()
    waker.notify(3)
    assert asyncio.run(waker.wait(1)) == 3
    assert waker.revision == 3


def test_a_notification_from_another_thread_wakes_the_waiter_with_the_newest_revision() -> None:
    """Two commits before the waiter runs are one wake-up carrying the newer revision."""
    waker = Waker()

    async def scenario() -> int:
        waiting = asyncio.create_task(waker.wait(0))
        await asyncio.sleep(0)  # let the waiter register before the writer thread runs

        def writer() -> None:
            waker.notify(1)
            waker.notify(2)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        return await waiting

    assert asyncio.run(scenario()) == 2


def test_older_or_equal_notifications_are_ignored() -> None:
    """The revision only grows: a late notification of an older one does not move it back."""
    waker = Waker()
    waker.notify(5)
    waker.notify(4)
    waker.notify(5)
    assert waker.revision == 5


def test_a_cancelled_waiter_does_not_block_later_ones() -> None:
    """Cancelling a wait leaves the waker usable; the next waiter is woken normally."""
    waker = Waker()

    async def scenario() -> int:
        first = asyncio.create_task(waker.wait(0))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert first.cancelled()
        second = asyncio.create_task(waker.wait(0))
        await asyncio.sleep(0)
        waker.notify(7)
        return await second

    assert asyncio.run(scenario()) == 7


def test_bumps_from_many_threads_are_each_counted_and_wake_the_waiter() -> None:
    """bump() (the SQLite store's count of manifest-object commits) adds exactly one per call,
    from any thread, and wakes a waiter past the count it had seen."""
    waker = Waker()

    async def scenario() -> int:
        waiting = asyncio.create_task(waker.wait(0))
        await asyncio.sleep(0)  # let the waiter register before the writer threads run

        def writer() -> None:
            for _ in range(1000):
                waker.bump()

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return await waiting

    assert asyncio.run(scenario()) == 4000
    assert waker.revision == 4000
