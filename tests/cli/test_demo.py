"""The README's first command: `meshplane demo` runs the walkthrough on real Envoy and passes."""

from __future__ import annotations

import re
import subprocess
import sys

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
