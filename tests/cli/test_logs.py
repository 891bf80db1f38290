"""``meshplane logs``: a replica's app or Envoy output from the data dir, --tail, -f, errors."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from meshplane.cli import following
from meshplane.runtime import logfiles

MESHPLANE = [sys.executable, "-m", "meshplane.cli.main"]


def _run(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MESHPLANE, "logs", *argv, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir as `up` leaves it: web (app+envoy, 2 replicas) and a gateway (envoy only)."""
    for workload, replica, container, text in (
        ("web", 0, "app", "web 0 starting\nweb 0 listening on 127.0.0.1:4000\n"),
        ("web", 0, "envoy", "[warning] envoy 0\n"),
        ("web", 1, "app", "web 1 listening\n"),
        ("gw", 0, "envoy", "[warning] gateway\n"),
    ):
        path = logfiles.path(tmp_path, workload, replica, container)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_logs_prints_the_apps_output_of_the_first_replica(data_dir: Path) -> None:
    """With no -c and no --replica: replica 0's app, whole."""
    done = _run(data_dir, "web")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "web 0 starting\nweb 0 listening on 127.0.0.1:4000\n"


def test_logs_picks_container_replica_and_tail(data_dir: Path) -> None:
    """-c envoy, --replica 1 and --tail 1 each choose what is printed."""
    assert _run(data_dir, "web", "-c", "envoy").stdout == "[warning] envoy 0\n"
    assert _run(data_dir, "web", "--replica", "1").stdout == "web 1 listening\n"
    assert _run(data_dir, "web", "--tail", "1").stdout == "web 0 listening on 127.0.0.1:4000\n"
    assert _run(data_dir, "web", "--tail", "0").stdout == ""


def test_a_gateways_logs_are_its_envoys(data_dir: Path) -> None:
    """A gateway has no app: no -c prints its Envoy; -c app says to use -c envoy."""
    assert _run(data_dir, "gw").stdout == "[warning] gateway\n"
    done = _run(data_dir, "gw", "-c", "app")
    assert done.returncode == 1
    assert done.stderr == (
        'error: replica 0 of "gw" has no app container '
        "(a gateway has only its Envoy: use -c envoy)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("nope",), 'workload "nope" has no logs in {logs}; workloads: gw, web'),
        (("web", "--replica", "5"), 'workload "web" has no replica 5; replicas: 0, 1'),
        (("web", "-c", "sidecar"), "-c must be app or envoy, got 'sidecar'"),
        (
            ("web", "--replica", "1", "-c", "envoy"),
            'replica 1 of "web" has no envoy container (no VirtualNode selects it, so it runs '
            "without a sidecar)",
        ),
    ],
)
def test_a_wrong_name_is_one_line_saying_what_exists(
    data_dir: Path, argv: tuple[str, ...], message: str
) -> None:
    """Each mistake exits 1 with one line naming the choices there are."""
    done = _run(data_dir, *argv)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"error: {message.format(logs=data_dir / 'logs')}\n"


def test_no_logs_dir_says_which_data_dir_to_pass(tmp_path: Path) -> None:
    """A data dir `up` never ran with: one line naming the logs dir and --data-dir."""
    done = _run(tmp_path, "web")
    assert done.returncode == 1
    assert done.stderr == (
        f"error: no logs in {tmp_path / 'logs'}: `meshplane up` keeps them there "
        "(pass the --data-dir it ran with)\n"
    )


def _line(stream: int, buffer: bytearray) -> bytes:
    """The next line the process prints (30 s bound, so a hang fails instead of blocking)."""
    while b"\n" not in buffer:
        ready, _, _ = select.select([stream], [], [], 30)
        assert ready, f"no line within 30 s; so far {bytes(buffer)!r}"
        chunk = os.read(stream, 4096)
        assert chunk, f"the output ended; so far {bytes(buffer)!r}"
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def test_follow_prints_new_lines_across_rotation_and_a_restart_until_ctrl_c(
    data_dir: Path,
) -> None:
    """-f prints the file, then each appended line, the new file after a rotation, the file
    begun again after a restart; SIGINT (Ctrl-C) ends it with exit 0."""
    path = logfiles.path(data_dir, "web", 0, "app")
    command = [*MESHPLANE, "logs", "web", "-f", "--tail", "1", "--data-dir", str(data_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        out, buffer = process.stdout.fileno(), bytearray()
        try:
            assert _line(out, buffer) == b"web 0 listening on 127.0.0.1:4000"
            with path.open("ab") as handle:
                handle.write(b"appended\n")
            assert _line(out, buffer) == b"appended"
            log = logfiles.LogFile(path, max_bytes=12)  # begins the file again: a restart
            log.write("restarted")
            assert _line(out, buffer) == b"restarted"
            log.write("rotated away")  # passes 12 bytes: restarted -> .1, a new file
            assert _line(out, buffer) == b"rotated away"
            log.write("and again")
            log.close()
            assert _line(out, buffer) == b"and again"
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
        assert process.stderr is not None
        assert (code, process.stderr.read()) == (0, b"")


def test_timestamps_are_stripped_unless_asked_and_previous_reads_the_run_before(
    tmp_path: Path,
) -> None:
    """A file up wrote (stamped lines): plain logs prints the lines, --timestamps the stored
    times too; --previous (-p) prints app.previous.log; a line cut between two reads of -f is
    printed whole once the rest arrives."""
    times = iter([1_764_612_220_000_000_001, 1_764_612_221_000_000_002, 1_764_612_222_000_000_003])
    log = logfiles.LogFile(logfiles.path(tmp_path, "web", 0, "app"), clock=lambda: next(times))
    log.write("first run")
    log.restarted()
    log.write("second run")
    log.close()
    assert _run(tmp_path, "web").stdout == "second run\n"
    assert _run(tmp_path, "web", "--timestamps").stdout == (
        "2025-12-01T18:03:41.000000002Z second run\n"
    )
    assert _run(tmp_path, "web", "--previous").stdout == "first run\n"
    assert _run(tmp_path, "web", "-p", "--timestamps").stdout == (
        "2025-12-01T18:03:40.000000001Z first run\n"
    )
    done = _run(tmp_path, "web", "-c", "envoy", "--previous")
    assert (done.returncode, done.stderr) == (
        1,
        'error: replica 0 of "web" has no envoy container (no VirtualNode selects it, so it '
        "runs without a sidecar)\n",
    )
    lines = following.Lines(timestamps=False)
    assert lines.feed(b"2025-12-01T18:03:40.000000001Z hel") == b""
    assert lines.feed(b"lo\nnext") == b"hello\n"
    assert lines.rest() == b"next"
