"""`meshplane get events [--for KIND/NAME]` and `meshplane get KIND -w` against a real server."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from meshplane.cli.main import cli
from meshplane.testing import ControlPlane

ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
WAITING = (
    "VirtualNode demos/vn-echo-backend-blue not found; VirtualNode demos/vn-echo-backend-green "
    "not found"
)


def _copy(directory: Path, *names: str) -> Path:
    directory.mkdir()
    for name in names:
        shutil.copy(ECHO / name, directory / name)
    return directory


def _env(plane: ControlPlane) -> dict[str, str]:
    return {"AWS_SHARED_CREDENTIALS_FILE": str(plane.credentials_file), "AWS_PROFILE": "meshplane"}


def test_get_events_lists_type_reason_object_message_age(tmp_path: Path) -> None:
    """A router waiting for its nodes: its Warning event in the namespace, with -A (and the
    NAMESPACE column), with --for vr/NAME; another namespace has none; a bad --for is one line."""
    alone = _copy(tmp_path / "alone", "namespace.yaml", "demos-mesh.yaml", "vr-echo-backend.yaml")
    runner = CliRunner()
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(alone)

        def get(*args: str) -> tuple[int, list[str], str]:
            done = runner.invoke(cli, ["get", *args, "--server", plane.endpoint], env=_env(plane))
            return done.exit_code, done.stdout.splitlines(), done.stderr

        row = re.compile(
            r"^Warning   Waiting   virtualrouter/vr-echo-backend   "
            + re.escape(WAITING)
            + r"   \d+s$"
        )
        for args in (
            ("events", "-n", "demos"),
            ("events", "-n", "demos", "--for", "vr/vr-echo-backend"),
        ):
            code, lines, err = get(*args)
            assert (code, err, len(lines)) == (0, "", 2)
            assert lines[0].split() == ["TYPE", "REASON", "OBJECT", "MESSAGE", "AGE"]
            assert row.match(lines[1]), lines[1]
        code, lines, err = get("events", "-A")
        assert (code, err) == (0, "")
        assert lines[0].split() == ["NAMESPACE", "TYPE", "REASON", "OBJECT", "MESSAGE", "AGE"]
        assert lines[1].startswith("demos       Warning   Waiting   virtualrouter/vr-echo-backend")
        assert get("events") == (0, [], "No events found in default namespace.\n")
        assert get("events", "--for", "vr") == (1, [], "error: --for must be KIND/NAME, got 'vr'\n")


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


def test_get_watch_prints_the_table_then_a_row_per_change_until_ctrl_c(tmp_path: Path) -> None:
    """`get vn -w`: the header and blue's row; applying green prints green's row alone (no
    header, not blue again); deleting blue prints blue once more (after any further row of
    green's, whose status may still be written); SIGINT ends it with 0."""
    first = _copy(
        tmp_path / "first", "namespace.yaml", "demos-mesh.yaml", "vn-echo-backend-blue.yaml"
    )
    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(first)
        command = [
            *(sys.executable, "-m", "meshplane.cli.main"),
            *("get", "vn", "-n", "demos", "-w", "--server", plane.endpoint),
        ]
        env = {**os.environ, **_env(plane)}
        with subprocess.Popen(command, stdout=subprocess.PIPE, env=env) as watcher:
            assert watcher.stdout is not None
            out, buffer = watcher.stdout.fileno(), bytearray()
            try:
                assert _line(out, buffer).split() == ["NAME", "ARN", "ACTIVE", "AGE"]
                assert _line(out, buffer).startswith("vn-echo-backend-blue ")
                plane.apply(ECHO / "vn-echo-backend-green.yaml")
                assert _line(out, buffer).startswith("vn-echo-backend-green ")
                plane.client().call(
                    "DELETE",
                    "/meshplane/v1/objects/virtualnode/vn-echo-backend-blue",
                    query={"namespace": "demos"},
                )
                # Green may be printed again first: its status can be written after the row
                # above was listed (the App Mesh object, then the manifest's status), and
                # -w prints every modification, as kubectl does. Nothing else may come.
                while (line := _line(out, buffer)).startswith("vn-echo-backend-green "):
                    pass
                assert line.startswith("vn-echo-backend-blue ")
            finally:
                watcher.send_signal(signal.SIGINT)
                code = watcher.wait(timeout=30)
            assert (code, bytes(buffer)) == (0, b"")
