"""A real ``meshplane serve`` process for the store's fault tests: started, found, stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def serve(
    data_dir: Path, log: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``meshplane serve`` on free ports with its output in ``log``; (process, API URL)."""
    command = [sys.executable, "-m", "meshplane.cli.main", "serve", "--data-dir", str(data_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--api-port", "0", "--xds-port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"serving the App Mesh API at (\S+)", log.read_text())):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)  # polling the banner while the server binds, not a timing guess
    return process, found.group(1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, and the exit code must be 0."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
