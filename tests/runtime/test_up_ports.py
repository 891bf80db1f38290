"""``meshplane up``'s ports: ``--server`` tells the xDS port; a taken or silent port is one line."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import free_port

pytestmark = pytest.mark.integration


def _up(directory: Path, *flags: str) -> list[str]:
    """``meshplane up -f directory`` with ``flags``; an empty workloads file is written."""
    (directory / "workloads.yaml").write_text("", encoding="utf-8")
    return [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(directory), *flags]


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A plain socket listening on a free loopback port (nothing answers HTTP there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken


def test_up_with_server_learns_the_xds_port_the_server_bound(
    tmp_path: Path, start_server: Any
) -> None:
    """`up --server URL` without --xds-port prints the port `serve` announced, then stops."""
    server = start_server()
    announced = re.search(r"xDS:\s+127\.0\.0\.1:(\d+)", server.log_path.read_text())
    assert announced is not None
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    up = subprocess.Popen(
        _up(manifests, "--server", server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server.cli_env(),
    )
    try:
        assert up.stdout is not None
        expected = f"xds | sidecars connect to port {announced.group(1)}, as {server.url} reports"
        seen = []
        for line in up.stdout:  # ends (and the assertion below fails) if `up` exits first
            seen.append(line.rstrip("\n"))
            if seen[-1] == expected:
                break
        assert seen[-1:] == [expected], seen
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 0, rest
    assert "Traceback" not in rest


def test_up_with_a_server_that_does_not_answer_is_one_line_and_exit_1(
    tmp_path: Path, listening: socket.socket
) -> None:
    """`up --server URL` where nothing answers HTTP: exit 1 with one error line."""
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    done = subprocess.run(
        _up(tmp_path, "--server", url), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"error: the control plane at {url} is not healthy"]
    assert done.stderr == ""


def test_up_with_a_server_port_closed_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """`up --server URL` on a closed port (connection refused): exit 1 with one error line."""
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        _up(tmp_path, "--server", url), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"error: the control plane at {url} is not healthy"]


@pytest.mark.parametrize("flag", ["--api-port", "--xds-port"])
def test_up_refuses_to_start_its_control_plane_on_a_taken_port(
    tmp_path: Path, listening: socket.socket, flag: str
) -> None:
    """A port another socket listens on: `up` exits 1 naming it and starts nothing."""
    port = listening.getsockname()[1]
    other = "--xds-port" if flag == "--api-port" else "--api-port"
    done = subprocess.run(
        _up(tmp_path, flag, str(port), other, "0", "--data-dir", str(tmp_path / "data")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert not (tmp_path / "data" / "credentials").exists()
