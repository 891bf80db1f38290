"""``meshplane up`` as users run it: a control plane, the workloads, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import APPS, free_port, wait_until

pytestmark = pytest.mark.integration

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answer(port: int) -> dict[str, str] | None:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            return dict(json.loads(answer.read()))
    except OSError:
        return None


def _up_argv(directory: Path) -> list[str]:
    """`meshplane up -f directory` on free ports, its store inside ``directory``."""
    return [
        sys.executable,
        "-m",
        "meshplane.cli.main",
        "up",
        "-f",
        str(directory),
        "--api-port",
        "0",
        "--xds-port",
        "0",
        "--data-dir",
        str(directory / "data"),
    ]


def _session(directory: Path) -> list[int]:
    """Processes whose command line names ``directory`` or which run in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if str(directory) in cmdline or cwd == str(directory):
                found.append(int(entry.name))
    return sorted(found)


def test_up_runs_the_workloads_and_sigterm_leaves_nothing(tmp_path: Path) -> None:
    """Published replicas answer; SIGTERM exits 0 and no process of the session survives."""
    shutil.copy(APPS / "echo_backend.py", tmp_path / "echo_backend.py")
    published = free_port()
    (tmp_path / "workloads.yaml").write_text(
        "apiVersion: meshplane.dev/v1alpha1\n"
        "kind: Workload\n"
        "metadata: {name: echo-backend-blue, namespace: demos, labels: {app: blue}}\n"
        "spec:\n"
        '  command: ["{python}", "echo_backend.py"]\n'
        '  env: {VERSION: "1.0"}\n'
        "  port: 80\n"
        "  replicas: 2\n"
        f"  publish: 127.0.0.1:{published}\n"
    )
    up = subprocess.Popen(
        _up_argv(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: _answer(published) is not None, timeout=60, what="the published port")
        assert _answer(published) == {"version": "1.0"}
        # up itself, the control plane (--data-dir) and two replicas (cwd)
        assert len(_session(tmp_path)) == 4
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 0, output
    assert _session(tmp_path) == []
    assert _answer(published) is None
    lines = output.splitlines()
    assert any(line.startswith("control-plane | meshplane ") for line in lines)
    assert any(
        line.startswith("echo-backend-blue-1 | echo-backend 1.0 listening") for line in lines
    )
    assert "stopping: workloads, sidecars, control plane…" in lines


def test_a_manifest_that_is_not_utf8_is_one_error_line_and_leaves_nothing(tmp_path: Path) -> None:
    """A Latin-1 manifest: `up` exits 1 naming the directory, and no process survives."""
    (tmp_path / "workloads.yaml").write_text("", encoding="utf-8")
    (tmp_path / "mesh.yaml").write_bytes(b"kind: Mesh\nmetadata: {name: caf\xe9}\n")
    done = subprocess.run(
        _up_argv(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"error: a manifest in {tmp_path} is not UTF-8 text" in " ".join(done.stdout.split())
    assert "Traceback" not in done.stdout + done.stderr
    assert _session(tmp_path) == []
