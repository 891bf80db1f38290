"""One process per data dir: a second ``serve`` or ``up`` exits naming the holder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshplane import client
from meshplane.store import locking, refusals

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "echo"


def _serve(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meshplane.cli.main",
                "serve",
                "--data-dir",
                str(data_dir),
                "--api-port",
                "0",
                "--xds-port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _endpoint(log: Path, process: subprocess.Popen[bytes]) -> str:
    """The API endpoint the server printed once ready."""
    deadline = time.monotonic() + 60
    while not (found := re.search(r"serving the App Mesh API at (\S+)", log.read_text())):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return found.group(1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_a_second_serve_exits_naming_the_first_which_keeps_serving(tmp_path: Path) -> None:
    """Serve B on A's data dir exits 1 with one line naming A's pid; A still takes writes."""
    data = tmp_path / "data"
    first = _serve(data, tmp_path / "a.log")
    try:
        endpoint = _endpoint(tmp_path / "a.log", first)
        second = _serve(data, tmp_path / "b.log")
        assert second.wait(timeout=60) == 1
        lines = (tmp_path / "b.log").read_text().splitlines()
        assert lines == [
            f"error: data dir {data} is in use by pid {first.pid} (meshplane serve --data-dir "
            f"{data} --api-port 0 --xds-port 0); stop that process or use another --data-dir"
        ]
        plane = client.connect(endpoint, trust_env=False)
        assert plane.health().revision == 0
        appmesh = client.appmesh(endpoint, credentials_file=data / "credentials")
        appmesh.create_mesh(meshName="after")
        assert [m["meshName"] for m in appmesh.list_meshes()["meshes"]] == ["after"]
        assert first.poll() is None
    finally:
        _stop(first)
    assert (data / locking.LOCK_FILE).stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o777 == 0o700


def test_up_refuses_a_data_dir_that_serve_holds(tmp_path: Path) -> None:
    """`meshplane up` on a served data dir exits 1 with the holder's line and starts nothing."""
    data = tmp_path / "data"
    first = _serve(data, tmp_path / "a.log")
    try:
        _endpoint(tmp_path / "a.log", first)
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "meshplane.cli.main",
                "up",
                "-f",
                str(EXAMPLE),
                "--api-port",
                "0",
                "--xds-port",
                "0",
                "--data-dir",
                str(data),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "400"},
            check=False,
        )
        assert up.returncode == 1, up.stdout + up.stderr
        assert f"error: data dir {data} is in use by pid {first.pid} (meshplane serve" in up.stdout
        assert first.poll() is None
    finally:
        _stop(first)


def test_the_lock_is_free_again_once_its_holder_is_killed(tmp_path: Path) -> None:
    """kill -9 of the holder frees the data dir: the kernel drops a flock with its process."""
    data = tmp_path / "data"
    first = _serve(data, tmp_path / "a.log")
    _endpoint(tmp_path / "a.log", first)
    with pytest.raises(refusals.DataDirLocked, match=f"in use by pid {first.pid} "):
        locking.acquire(data)
    first.kill()
    first.wait(timeout=30)
    with locking.acquire(data) as held:
        assert (data / locking.LOCK_FILE).read_text().split(" ", 1)[0] == str(os.getpid())
        assert held.fd >= 0


def test_an_inherited_descriptor_of_another_open_file_is_not_trusted(tmp_path: Path) -> None:
    """A descriptor number that is not the locked open file does not let a second holder in."""
    data = tmp_path / "data"
    with locking.acquire(data, environ={}) as held:
        other = os.open(data / locking.LOCK_FILE, os.O_RDONLY)
        try:
            with pytest.raises(refusals.DataDirLocked):
                locking.acquire(data, environ={locking.INHERITED_ENV: str(other)})
            inherited = locking.acquire(data, environ={locking.INHERITED_ENV: str(held.fd)})
            assert inherited.fd == held.fd
            holder = (data / locking.LOCK_FILE).read_text().split(" ", 1)[0]
            assert holder == str(os.getpid())
        finally:
            os.close(other)


def test_serve_refuses_a_data_dir_that_up_holds_for_its_own_control_plane(tmp_path: Path) -> None:
    """`up` takes the lock itself (its child serve inherits it): another serve names `up`."""
    data = tmp_path / "data"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshplane.cli.main",
            "up",
            "-f",
            str(EXAMPLE),
            "--api-port",
            "0",
            "--xds-port",
            "0",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        lock = data / locking.LOCK_FILE
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().startswith(f"{up.pid} ")):
            assert up.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = _serve(data, tmp_path / "b.log")
        assert second.wait(timeout=60) == 1
        (line,) = (tmp_path / "b.log").read_text().splitlines()
        assert line.startswith(
            f"error: data dir {data} is in use by pid {up.pid} (meshplane up -f "
        )
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0
