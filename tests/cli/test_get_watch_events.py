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


def _node(directory: Path, name: str) -> Path:
    """A VirtualNode manifest named ``name`` in demos (its own awsName and DNS name)."""
    path = directory / f"{name}.yaml"
    text = (ECHO / "vn-echo-backend-blue.yaml").read_text()
    path.write_text(text.replace("vn-echo-backend-blue", name))
    return path


def _arn(name: str) -> str:
    return f"arn:aws:appmesh:us-west-2:123456789012:mesh/demos/virtualNode/{name}"


def test_get_watch_rows_keep_the_first_tables_widths_and_widen_only_to_fit(
    tmp_path: Path,
) -> None:
    """`get vn -w`: a later, shorter row is padded to the first table's columns (kubectl's
    layout); a longer one widens NAME and ARN, and the rows after it keep the wider widths."""
    first = _copy(
        tmp_path / "first", "namespace.yaml", "demos-mesh.yaml", "vn-echo-backend-blue.yaml"
    )
    long_name = "vn-echo-backend-blue-canary"
    short, long = _node(tmp_path, "vn-a"), _node(tmp_path, long_name)

    def row(name: str, widths: tuple[int, int], arn: str, active: str) -> re.Pattern[str]:
        cells = f"{name.ljust(widths[0])}  {arn.ljust(widths[1])}  {active.ljust(6)}  "
        return re.compile(re.escape(cells) + r"\d+s$")

    def settled(out: int, buffer: bytearray, name: str, before: tuple[int, int]) -> str:
        """The row of ``name`` once active; rows before its status was written (no ARN yet,
        not active: -w prints every modification) are laid out with the widths ``before``."""
        pending = row(name, before, "", "False")
        while pending.match(line := _line(out, buffer)):
            pass
        return line

    with ControlPlane(tmp_path / "data") as plane:
        plane.apply(first)
        command = [
            *(sys.executable, "-m", "meshplane.cli.main"),
            *("get", "vn", "-n", "demos", "-w", "--server", plane.endpoint),
        ]
        env = {**os.environ, **_env(plane)}
        blue = (len("vn-echo-backend-blue"), len(_arn("vn-echo-backend-blue")))
        with subprocess.Popen(command, stdout=subprocess.PIPE, env=env) as watcher:
            assert watcher.stdout is not None
            out, buffer = watcher.stdout.fileno(), bytearray()
            try:
                header = _line(out, buffer)
                assert header == f"{'NAME'.ljust(blue[0])}  {'ARN'.ljust(blue[1])}  ACTIVE  AGE"
                name = "vn-echo-backend-blue"
                assert row(name, blue, _arn(name), "True").match(_line(out, buffer))
                plane.apply(short)
                line = settled(out, buffer, "vn-a", blue)
                assert row("vn-a", blue, _arn("vn-a"), "True").match(line), line
                plane.apply(long)
                line = settled(out, buffer, long_name, (len(long_name), blue[1]))
                wider = (len(long_name), len(_arn(long_name)))
                assert row(long_name, wider, _arn(long_name), "True").match(line), line
                plane.client().call(
                    "DELETE", "/meshplane/v1/objects/virtualnode/vn-a", query={"namespace": "demos"}
                )
                line = _line(out, buffer)
                assert row("vn-a", wider, _arn("vn-a"), "True").match(line), line
            finally:
                watcher.send_signal(signal.SIGINT)
                code = watcher.wait(timeout=30)
            assert (code, bytes(buffer)) == (0, b"")
