"""The README's first command: `meshplane demo` runs the walkthrough on real Envoy and passes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_shifts_live_traffic_with_each_weight_change() -> None:
    """The demo exits 0; its table shows versions 1, 2, 3 and the splits it observed."""
    done = subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"│\s+(\d+)/(\d+) │\s+(\d) │\s+(-|\d+ ms) │\s+(\d+) │\s+(\d+) │", done.stdout)
    assert [(blue, green, version) for blue, green, version, *_ in rows] == [
        ("100", "0", "1"),
        ("50", "50", "2"),
        ("0", "100", "3"),
    ]
    first, half, last = rows
    assert (first[4], first[5]) == ("100", "0")
    assert int(half[4]) + int(half[5]) == 200
    assert 0 < int(half[5]) < 200
    assert (last[4], last[5]) == ("0", "100")
    assert "demo passed" in done.stdout


def _children_running_up(parent: int) -> list[int]:
    """Live child processes of ``parent`` that run ``meshplane up``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"up" in argv and b"meshplane.cli.main" in argv:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_during_the_demo_stops_meshplane_up() -> None:
    """Ctrl-C while the demo waits for the mesh stops the `meshplane up` it started."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "meshplane.cli.main", "demo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    up: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not up:
            assert demo.poll() is None
            assert time.monotonic() < deadline
            up = _children_running_up(demo.pid)
            time.sleep(0.05)
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
        assert [pid for pid in up if _alive(pid)] == []
    finally:
        for pid in up:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        demo.kill()
        demo.wait()
