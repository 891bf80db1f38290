"""The README's first command: `meshplane demo` runs the walkthrough and says it passed."""

from __future__ import annotations

import subprocess
import sys


def test_demo_passes_and_reports_each_weight_shift() -> None:
    """The demo exits 0 and prints versions 1, 2, 3 with the weights it set."""
    done = subprocess.run(
        [sys.executable, "-m", "meshplane.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "version 1, weights {'vn-echo-backend-blue': 100, 'vn-echo-backend-green': 0}" in out
    assert "version 2, weights {'vn-echo-backend-blue': 50, 'vn-echo-backend-green': 50}" in out
    assert "version 3, weights {'vn-echo-backend-blue': 0, 'vn-echo-backend-green': 100}" in out
    assert "demo passed" in out
