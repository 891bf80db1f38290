"""The manual deadline timer: deadlines fire in order, only when advanced, never once disarmed."""

from __future__ import annotations

import asyncio

from meshplane.kit.timers import LoopTimer, ManualTimer


def test_deadlines_fire_in_order_only_when_time_reaches_them() -> None:
    """advance() runs due callbacks earliest first; a disarmed one never runs."""

    async def scenario() -> list[str]:
        timer = ManualTimer(start=100.0)
        fired: list[str] = []
        timer.call_at(110.0, lambda: fired.append("late"))
        timer.call_at(105.0, lambda: fired.append("early"))
        disarm = timer.call_at(107.0, lambda: fired.append("disarmed"))
        disarm()
        assert timer.armed() == [105.0, 110.0]
        timer.advance(4.0)
        assert fired == []
        timer.advance(6.0)
        assert timer.now() == 110.0
        assert timer.armed() == []
        return fired

    assert asyncio.run(scenario()) == ["early", "late"]


def test_next_deadline_wakes_when_something_arms_one() -> None:
    """A test can wait for code under test to arm its deadline, without polling."""

    async def scenario() -> float:
        timer = ManualTimer()
        waiting = asyncio.create_task(timer.next_deadline())
        await asyncio.sleep(0)
        assert not waiting.done()
        timer.call_at(3.5, lambda: None)
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) == 3.5


def test_the_loop_timer_reads_the_loop_clock_and_disarms() -> None:
    """LoopTimer is loop.time() and loop.call_at; its cancel keeps a callback from running."""

    async def scenario() -> list[str]:
        timer = LoopTimer()
        loop = asyncio.get_running_loop()
        assert timer.now() <= loop.time()
        fired: list[str] = []
        done = asyncio.Event()
        timer.call_at(timer.now(), lambda: (fired.append("due"), done.set()))
        timer.call_at(timer.now(), lambda: fired.append("disarmed"))()
        await asyncio.wait_for(done.wait(), 5)
        return fired

    assert asyncio.run(scenario()) == ["due"]
