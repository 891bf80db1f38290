"""``meshplane up`` follows workloads.yaml: only a Workload added, changed or removed is touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import APPS, alive, free_port, wait_until

pytestmark = pytest.mark.integration

DEADLINE = 60.0


def _workload(name: str, version: str, publish: int | None = None) -> str:
    document = (
        "apiVersion: meshplane.dev/v1alpha1\n"
        "kind: Workload\n"
        f"metadata: {{name: {name}, namespace: demos, labels: {{app: {name}}}}}\n"
        "spec:\n"
        '  command: ["{python}", "echo_backend.py"]\n'
        f'  env: {{VERSION: "{version}"}}\n'
        "  port: 80\n"
    )
    return document + (f"  publish: 127.0.0.1:{publish}\n" if publish else "")


def _write(directory: Path, *documents: str) -> None:
    """Replace workloads.yaml whole, as an editor saving the file does."""
    staged = directory / "workloads.yaml.new"
    staged.write_text("---\n".join(documents))
    staged.replace(directory / "workloads.yaml")


def _replicas(directory: Path) -> dict[str, int]:
    """Replica name (its HOSTNAME) → pid, for every app running in ``directory``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != str(directory):
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        names = [v[len(b"HOSTNAME=") :] for v in environ if v.startswith(b"HOSTNAME=")]
        if names and alive(int(entry.name)):
            found[names[0].decode()] = int(entry.name)
    return found


class Up:
    """`meshplane up` on a directory holding only workloads.yaml (no sidecars)."""

    def __init__(self, directory: Path) -> None:
        """Start `up` with its log next to the directory (so it is not a workloads file)."""
        argv = [sys.executable, "-m", "meshplane.cli.main", "up", "-f", str(directory)]
        argv += ["--api-port", "0", "--xds-port", "0", "--data-dir", str(directory / "data")]
        self.log = directory.parent / "up.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def output(self) -> list[str]:
        """Every line `up` printed so far."""
        return self.log.read_text().splitlines()

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A directory with the echo backend app and a workloads file of a and b."""
    directory = tmp_path / "mesh"
    directory.mkdir()
    shutil.copy(APPS / "echo_backend.py", directory / "echo_backend.py")
    _write(directory, _workload("a", "1"), _workload("b", "1"))
    return directory


def test_adding_changing_and_removing_touch_only_that_workload(directory: Path) -> None:
    """b changed restarts b, c added starts c, b removed stops b; a keeps its pid throughout."""
    up = Up(directory)
    try:
        wait_until(lambda: set(_replicas(directory)) == {"a-0", "b-0"}, DEADLINE, "a and b")
        first = _replicas(directory)

        _write(directory, _workload("a", "1"), _workload("b", "2"), _workload("c", "1"))

        def restarted_and_added() -> bool:
            now = _replicas(directory)
            return set(now) == {"a-0", "b-0", "c-0"} and now["b-0"] != first["b-0"]

        wait_until(restarted_and_added, DEADLINE, "b restarted and c started")
        second = _replicas(directory)
        assert second["a-0"] == first["a-0"]
        assert not alive(first["b-0"])
        assert b"VERSION=2" in Path(f"/proc/{second['b-0']}/environ").read_bytes().split(b"\0")

        _write(directory, _workload("a", "1"), _workload("c", "1"))
        wait_until(lambda: set(_replicas(directory)) == {"a-0", "c-0"}, DEADLINE, "b stopped")
        assert _replicas(directory) == {"a-0": first["a-0"], "c-0": second["c-0"]}

        (directory / "workloads.yaml").write_text("kind: Workload\nmetadata: {}\n")
        wait_until(
            lambda: any("workloads.yaml not reloaded" in line for line in up.output()),
            DEADLINE,
            "the broken file to be reported",
        )
        assert _replicas(directory) == {"a-0": first["a-0"], "c-0": second["c-0"]}
    finally:
        code = up.stop()
    assert code == 0, "\n".join(up.output())
    lines = up.output()
    assert "workloads | b: changed: restarted" in lines
    assert "workloads | c: added: started" in lines
    assert "workloads | b: removed from the workloads file: stopped" in lines
    assert _replicas(directory) == {}


def test_a_changed_publish_address_moves_the_published_port(directory: Path) -> None:
    """Changing a's publish: stops forwarding on the old port and answers on the new one."""
    old, new = free_port(), free_port()
    _write(directory, _workload("a", "1", publish=old), _workload("b", "1"))
    up = Up(directory)
    try:
        wait_until(
            lambda: _accepts(old) and set(_replicas(directory)) == {"a-0", "b-0"},
            DEADLINE,
            "a published and b running",
        )
        b = _replicas(directory)["b-0"]
        _write(directory, _workload("a", "1", publish=new), _workload("b", "1"))
        wait_until(lambda: _accepts(new) and not _accepts(old), DEADLINE, "the port to move")
        assert _replicas(directory)["b-0"] == b
    finally:
        code = up.stop()
    assert code == 0, "\n".join(up.output())


def _accepts(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
