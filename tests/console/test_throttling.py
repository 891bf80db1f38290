"""The console's login throttle: failures per address over a sliding 60 s window."""

from __future__ import annotations

from meshplane.console import throttling


def test_the_fifth_failure_blocks_until_the_oldest_leaves_the_window() -> None:
    """Four failures leave the address free; the fifth blocks it for what remains of the
    first one's minute; other addresses are not affected; success forgets."""
    now = [0.0]
    throttle = throttling.LoginThrottle(lambda: now[0])
    for second in (0.0, 10.0, 20.0, 30.0):
        now[0] = second
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is None
    now[0] = 40.0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 20.0
    assert throttle.retry_after("10.0.0.2") is None
    now[0] = 60.0
    assert throttle.retry_after("10.0.0.1") is None  # the failure at 0 s left the window
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is None


def test_the_table_forgets_the_oldest_address_past_its_bound() -> None:
    """With TRACKED addresses remembered, one more evicts the least recently failed."""
    now = [0.0]
    throttle = throttling.LoginThrottle(lambda: now[0])
    for _ in range(5):
        throttle.failed("first")
    for index in range(throttling.TRACKED):
        throttle.failed(f"other-{index}")
    assert throttle.retry_after("first") is None
