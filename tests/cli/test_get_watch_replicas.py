"""`get -w` against replica A hears every change to the shared PostgreSQL store, whichever
replica wrote it: label-only and status-only updates included (two real `meshplane serve`)."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
pytestmark = pytest.mark.integration


def _line(stream: int, buffer: bytearray) -> str:
    """The next line the watcher prints (30 s bound, so a hang fails instead of blocking)."""
    while b"\n" not in buffer:
        ready, _, _ = select.select([stream], [], [], 30)
        assert ready, f"no line within 30 s; so far {bytes(buffer)!r}"
        chunk = os.read(stream, 4096)
        assert chunk, f"the output ended; so far {bytes(buffer)!r}"
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


def _meshplane(server: object, *args: str) -> None:
    """Run a meshplane command against ``server`` as its administrator; it must succeed."""
    done = subprocess.run(
        [str(BIN / "meshplane"), *args, "--server", server.url],  # type: ignore[attr-defined]
        env=server.cli_env(),  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_get_watch_on_one_replica_prints_label_and_status_changes_written_through_another(
    tmp_path: Path, start_server: object, postgres_url: str
) -> None:
    """Watchers on A: when B labels demos `mesh=demos`, `get ns -o wide -w` prints demos with
    it and `get vn -w` prints blue active (its status); when B adds `team=blue`, which moves
    no store revision, demos is printed again; nothing else is printed."""
    env = {"MESHPLANE_STORE": postgres_url}
    a = start_server(env)  # type: ignore[operator]
    b = start_server(env)  # type: ignore[operator]
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in ("demos-mesh.yaml", "vn-echo-backend-blue.yaml"):
        shutil.copy(ECHO / name, manifests / name)
    # The namespace without its mesh label: blue waits for a mesh to select it.
    (manifests / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demos\n"
    )
    _meshplane(b, "apply", "-f", str(manifests))

    def watch(*args: str) -> subprocess.Popen[bytes]:
        command = [str(BIN / "meshplane"), "get", *args, "-w", "--server", a.url]  # type: ignore[attr-defined]
        return subprocess.Popen(command, stdout=subprocess.PIPE, env=a.cli_env())  # type: ignore[attr-defined]

    with watch("ns", "-o", "wide") as namespaces, watch("vn", "-n", "demos") as nodes:
        _follow(b, namespaces, nodes)
        assert [w.wait(timeout=30) for w in (namespaces, nodes)] == [0, 0]
        assert (namespaces.stdout.read(), nodes.stdout.read()) == (b"", b"")  # type: ignore[union-attr]


def _follow(b: object, namespaces: subprocess.Popen[bytes], nodes: subprocess.Popen[bytes]) -> None:
    """Both watchers' first tables, B's label, and the rows it makes them print; then Ctrl-C."""
    try:
        assert namespaces.stdout is not None
        assert nodes.stdout is not None
        ns_out, ns_buffer = namespaces.stdout.fileno(), bytearray()
        vn_out, vn_buffer = nodes.stdout.fileno(), bytearray()
        assert _line(ns_out, ns_buffer).split() == ["NAME", "STATUS", "AGE", "LABELS"]
        assert re.fullmatch(r"demos  Active  \d+s +<none>", _line(ns_out, ns_buffer))
        assert _line(vn_out, vn_buffer).split() == ["NAME", "ARN", "ACTIVE", "AGE"]
        waiting = _line(vn_out, vn_buffer)
        assert re.fullmatch(r"vn-echo-backend-blue {2,}False   \d+s", waiting), waiting

        _meshplane(b, "label", "namespace", "demos", "mesh=demos")
        assert re.fullmatch(r"demos  Active  \d+s +mesh=demos", line := _line(ns_out, ns_buffer)), (
            line
        )
        arn = "arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualNode/vn-echo-backend-blue"
        # Its twin is written before its status: a row of that moment may come first.
        while re.fullmatch(
            r"vn-echo-backend-blue +(arn:\S+ +)?False +\d+s", line := _line(vn_out, vn_buffer)
        ):
            pass
        assert re.fullmatch(rf"vn-echo-backend-blue  {re.escape(arn)}  True    \d+s", line), line

        # A label nothing selects on: no App Mesh resource changes, the store revision stays.
        revision = b.revision()  # type: ignore[attr-defined]
        _meshplane(b, "label", "namespace", "demos", "team=blue")
        line = _line(ns_out, ns_buffer)
        assert re.fullmatch(r"demos  Active  \d+s +mesh=demos,team=blue", line), line
        assert b.revision() == revision  # type: ignore[attr-defined]
    finally:
        for watcher in (namespaces, nodes):
            watcher.send_signal(signal.SIGINT)
