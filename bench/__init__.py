"""meshplane's benchmarks: runnable modules that print their figures and ratios side by side.

Run one with ``python -m bench.<name>`` or all with ``python -m bench``. Each is
bounded in requests and time, drives a real ``meshplane serve`` process on a free
loopback port, and quotes medians and p99 rather than means.
"""
